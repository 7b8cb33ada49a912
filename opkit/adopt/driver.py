"""The adopt pipeline: load the model -> discover untranslatable ops -> plan a spec for each -> name them ->
write the new ops (created once, never overwritten) -> a report."""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opkit import ui
from opkit.adopt.discover import Untranslatable, discover
from opkit.adopt.plan import Inexpressible, Plan, plan
from opkit.build.workspace import Workspace
from opkit.errors import UsageError
from opkit.spec.parse import CPP_KEYWORDS

# Folder names `opkit new` refuses too (they shadow modules a spec imports).
_TAKEN_WORDS = {"opkit", "ops", "torch", "onnx", "spec"}


@dataclass
class Outcome:
    found: Untranslatable
    status: str  # "created", "listed" (--list), "skipped" (already adopted), "rejected"
    name: str = ""  # the adopted op's qualname
    files: list[Path] = field(default_factory=list)
    note: str = ""
    reason: str = ""
    instead: str = ""


@dataclass
class Adopted:
    model: Path
    workspace: Workspace
    found: list[Untranslatable]
    outcomes: list[Outcome]
    started: list[Path] = field(default_factory=list)
    torch_version: str = ""

    @property
    def exit_code(self) -> int:
        return 1 if any(o.status == "rejected" for o in self.outcomes) else 0

    def _workspace_flag(self) -> str:
        """` --workspace DIR` when verify would not find this workspace from the model on its own."""
        from opkit.build.workspace import find_workspace
        from opkit.errors import WorkspaceError

        try:
            found = find_workspace(start=self.model.resolve().parent).root.resolve()
        except WorkspaceError:
            found = None
        return "" if found == self.workspace.root.resolve() else f" --workspace {self.workspace.root}"

    def render(self) -> str:
        ws = self.workspace
        if not self.found:
            return f"every op of {self.model} has an ONNX translation (torch {self.torch_version}): nothing to adopt"
        lines = [f"{len(self.found)} op(s) of {self.model} have no ONNX translation (torch {self.torch_version}):"]
        for f in self.found:
            n = len(f.calls)
            lines.append(f"  {f.name}: {n} call{'s' if n != 1 else ''}, first in {f.where}")
            lines.append(f"      {f.schema}")
        lines.append("")
        for p in self.started:
            lines.append(f"started a workspace: created {ws.rel(p)}")
        for o in self.outcomes:
            if o.status in ("created", "listed"):
                verb = "adopted" if o.status == "created" else "would adopt"
                lines.append(f"{verb} {o.found.name} as {o.name}" + (f" ({o.note})" if o.note else ""))
                lines.extend(f"  created {ws.rel(p)}" for p in o.files)
            elif o.status == "skipped":
                lines.append(f"skipped {o.found.name}: {o.note}")
            else:
                lines.append(f"NOT adopted {o.found.name}: {o.reason}")
                lines.append(f"  instead: {o.instead}")
        created = [o for o in self.outcomes if o.status == "created"]
        if any(o.status == "rejected" for o in self.outcomes):
            lines += ["", "The model exports only when every op listed has a translation: see NOT adopted above."]
        if created:
            model = str(self.model) + self._workspace_flag()
            pad = " " * len(" --backend python")
            lines += ["", "Next steps:",
                      f"  opkit verify {model} --backend python   # the unmodified model, each reference inside "
                      "ONNX Runtime (no kernel needed)",
                      "  write each kernel: " + ", ".join(ws.rel(o.files[1]) for o in created if len(o.files) > 1),
                      f"  opkit verify {model}{pad}   # with the native kernels"]
        return "\n".join(lines)


def _select(found: list[Untranslatable], wanted: list[str] | None) -> list[Untranslatable]:
    if not wanted:
        return found
    keys = {}
    for f in found:
        for k in (f.name, f"{f.namespace}::{f.op_name}.{f.overload}", f.op_name, f"{f.namespace}.{f.op_name}",
                  f"{f.namespace}.{f.op_name}.{f.overload}", str(f.target)):
            keys.setdefault(k, []).append(f)
    picked: list[Untranslatable] = []
    for w in wanted:
        if w not in keys:
            raise UsageError(f"--op {w}: the model calls no untranslatable op of that name",
                             expected="one of " + (", ".join(f.name for f in found) or "(none)"), got=w,
                             fix="name an op as the list shows it, e.g. --op " + (found[0].name if found else
                                                                                  "aten::cummax"))
        picked += [f for f in keys[w] if f not in picked]
    return [f for f in found if f in picked]


def _name(p: Plan, taken: dict[str, str]) -> str:
    """A CamelCase name whose folder no other op has; a note when it is not the plain one."""
    from opkit.adopt.scaffold import camel_name
    from opkit.spec.model import snake_case

    f = p.found
    plain = camel_name(f.namespace, f.op_name, f.overload)
    tries = [plain, camel_name(f.namespace, f.op_name, f.overload, with_namespace=True)]
    tries += [f"{tries[1]}{k}" for k in range(2, 100)]
    for name in tries:
        folder = snake_case(name)
        if folder.lower() not in taken and folder not in _TAKEN_WORDS and not keyword.iskeyword(folder) \
                and folder not in CPP_KEYWORDS:
            p.name = name
            taken[folder.lower()] = f.name
            if name == plain:
                return ""
            by = taken.get(snake_case(plain).lower(), "another op")
            return f"not {plain}: ops/{snake_case(plain)} is taken by {by}"
    raise UsageError(f"no free name for {f.name}")  # pragma: no cover - 100 collisions


def adopt(model_path: Path, ws: Workspace, *, domain: str, only: list[str] | None = None,
          list_only: bool = False) -> Adopted:
    with ui.step("importing torch and the model"):
        import torch

        from opkit.build.specs import add_to_path, import_ops
        from opkit.spec.decorator import registered_ops
        from opkit.spec.model import snake_case
        from opkit.verify.modelfile import load_model_file

        add_to_path(ws)
        mf = load_model_file(model_path, ws.root)
        existing = import_ops(ws) if ws.ops_dir.is_dir() else {}
    mf.model.eval()
    with ui.step("capturing the model (torch.export) and looking up every op in the ONNX exporter's registry"):
        found = discover(mf.model, mf.example_inputs, dynamic_shapes=mf.dynamic_shapes, model_path=model_path,
                         root=ws.root, ops=registered_ops())
    result = Adopted(model_path, ws, found, [], torch_version=torch.__version__.split("+")[0])
    selected = _select(found, only)
    adopted_by = {op.spec.adopts: op.spec for op in existing.values() if op.spec.adopts}
    taken = {f.lower(): f"ops/{f}" for f in ws.op_folders()}
    versions = {op.spec.domain: op.spec.version for op in existing.values()}
    for op in existing.values():  # an op's name is taken too, whatever its folder is called
        taken.setdefault(snake_case(op.spec.name).lower(), op.spec.qualname)
    plans: list[tuple[Plan, Outcome]] = []
    for f in selected:
        if f.name in adopted_by:
            s = adopted_by[f.name]
            result.outcomes.append(Outcome(f, "skipped", s.qualname, note=f"already adopted by ops/{s.folder}/spec.py "
                                           f"({s.qualname}); not written again"))
            continue
        try:
            p = plan(f)
        except Inexpressible as exc:
            result.outcomes.append(Outcome(f, "rejected", reason=exc.reason, instead=exc.instead))
            continue
        out = Outcome(f, "listed")
        out.note = _name(p, taken)
        plans.append((p, out))
        result.outcomes.append(out)
    if list_only or not plans:
        for p, out in plans:
            out.name = f"{domain}::{p.name}"
        return result
    _write(result, plans, ws, domain=domain, version=versions.get(domain, 1), model_path=model_path)
    return result


def _write(result: Adopted, plans: list[tuple[Plan, Any]], ws: Workspace, *, domain: str, version: int,
           model_path: Path) -> None:
    from opkit.adopt.scaffold import op_spec, spec_view
    from opkit.build.workspace import start_workspace
    from opkit.codegen.render import render_adopted_spec_file, render_kernel_file
    from opkit.codegen.writer import create_new

    rendered = []
    for p, out in plans:  # render everything first: nothing is written when one fails
        spec = op_spec(p, domain=domain, version=version)
        view = spec_view(p, spec, model_path=model_path, ws_root=ws.root, torch_version=result.torch_version)
        rendered.append((spec, out, render_adopted_spec_file(view), render_kernel_file(spec)))
    if not ws.ops_dir.is_dir():
        ui.info(f"starting a new workspace in {ws.root}")
    result.started = start_workspace(ws)
    for spec, out, spec_text, kernel_text in rendered:
        op_dir = ws.ops_dir / spec.folder
        if op_dir.exists():  # appeared since the names were chosen: never overwrite
            out.status, out.note = "skipped", f"ops/{spec.folder} exists; not written"
            continue
        op_dir.mkdir(parents=True)
        spec_path, kernel_path = op_dir / "spec.py", op_dir / f"{spec.folder}.cc"
        create_new(spec_path, spec_text)
        create_new(kernel_path, kernel_text)
        out.status, out.name, out.files = "created", spec.qualname, [spec_path, kernel_path]
