"""Load every spec of a workspace, once, and cross-check them.

A spec file is imported as ``ops.<folder>.spec`` with the workspace root on sys.path, so
that a model's ``from ops.<folder>.spec import <op>`` gets the same module. When no spec file
changed since the last build, the cached OpSpecs are used and nothing is imported (no torch).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import sys
import traceback
from pathlib import Path

from opkit import __version__
from opkit.errors import OpkitError, SpecError
from opkit.build.workspace import Workspace
from opkit.spec.model import OpSpec, SourceLoc

CACHE_NAME = "specs.json"


def spec_hashes(ws: Workspace) -> dict[str, str]:
    return {f: hashlib.sha256(ws.spec_file(f).read_bytes()).hexdigest() for f in ws.op_folders()}


def _cache_path(ws: Workspace) -> Path:
    return ws.generated_dir / CACHE_NAME


def load_cached(ws: Workspace, hashes: dict[str, str]) -> list[OpSpec] | None:
    try:
        data = json.loads(_cache_path(ws).read_text())
    except (OSError, ValueError):
        return None
    if data.get("opkit_version") != __version__ or data.get("hashes") != hashes:
        return None
    try:
        return [OpSpec.from_dict(d) for d in data["specs"]]
    except Exception:
        return None


def cache_payload(specs: list[OpSpec], hashes: dict[str, str]) -> str:
    return json.dumps({"opkit_version": __version__, "hashes": hashes,
                       "specs": [s.to_dict() for s in specs]}, indent=1, sort_keys=True)


def add_to_path(ws: Workspace) -> None:
    root = str(ws.root)
    if root not in sys.path:
        sys.path.insert(0, root)


def import_ops(ws: Workspace) -> dict[str, object]:
    """Import every spec; return {folder: Op} with each Op's spec carrying its folder."""
    from opkit.spec.decorator import Op

    add_to_path(ws)
    found: dict[str, object] = {}
    for folder in ws.op_folders():
        path = ws.spec_file(folder)
        modname = f"ops.{folder}.spec"
        try:
            mod = sys.modules.get(modname)
            if mod is None or Path(getattr(mod, "__file__", "")).resolve() != path.resolve():
                mod = importlib.import_module(modname)
        except OpkitError:
            raise
        except SyntaxError as exc:
            raise SpecError(f"spec {ws.rel(path)} has a syntax error: {exc.msg}",
                            where=SourceLoc(str(path), exc.lineno or 0), fix="fix the Python syntax") from None
        except Exception as exc:
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
            line = frames[-1].lineno if frames else None
            raise SpecError(f"spec {ws.rel(path)} failed to import: {type(exc).__name__}: {exc}",
                            where=SourceLoc(str(path), line or 0),
                            fix="run `python " + ws.rel(path) + "` to see the full error") from None
        ops = [v for v in vars(mod).values() if isinstance(v, Op) and v.spec.loc
               and Path(v.spec.loc.file).resolve() == path.resolve()]
        if len(ops) != 1:
            raise SpecError(f"spec {ws.rel(path)} defines {len(ops)} ops", where=str(path),
                            expected="exactly one @opkit.op function per ops/<op>/spec.py",
                            got=", ".join(o.spec.name for o in ops) or "none",
                            fix="put each op in a folder of its own" if ops else
                            "decorate the reference function with @opkit.op(...)")
        op = ops[0]
        op.spec = dataclasses.replace(op.spec, folder=folder)
        found[folder] = op
    return found


def check(ws: Workspace, specs: list[OpSpec]) -> None:
    """Cross-checks that need all specs at once, or the workspace."""
    seen: dict[tuple[str, str], OpSpec] = {}
    adopters: dict[str, OpSpec] = {}
    versions: dict[str, tuple[int, OpSpec]] = {}
    for s in specs:
        key = (s.domain, s.name)
        if key in seen:
            raise SpecError(f"two ops named {s.name} in domain {s.domain}", where=s.loc,
                            got=f"also in {seen[key].loc}", fix="rename one of them, or use another domain")
        seen[key] = s
        if s.adopts and s.adopts in adopters:
            raise SpecError(f"two ops adopt {s.adopts}: {adopters[s.adopts].qualname} and {s.qualname}", where=s.loc,
                            got=f"also adopted in {adopters[s.adopts].loc}",
                            expected="one op per original op (each call of it becomes that op's node)",
                            fix="remove adopts= from one of them")
        if s.adopts:
            adopters[s.adopts] = s
        if s.domain in versions and versions[s.domain][0] != s.version:
            other = versions[s.domain][1]
            raise SpecError(f"domain {s.domain} has two opset versions", where=s.loc,
                            expected="one version per domain (ONNX imports a domain at one version)",
                            got=f"{s.name} version={s.version}, {other.name} version={other.version} ({other.loc})",
                            fix="give all ops of a domain the same version")
        versions.setdefault(s.domain, (s.version, s))
        if not s.folder.isidentifier():
            raise SpecError(f"op folder ops/{s.folder} is not a valid identifier", where=s.loc,
                            fix="rename the folder to snake_case letters, digits and underscores")


def load_specs(ws: Workspace, *, force_import: bool = False) -> tuple[list[OpSpec], dict[str, str], bool]:
    """All specs of the workspace: (specs, spec hashes, came_from_cache)."""
    hashes = spec_hashes(ws)
    if not force_import:
        cached = load_cached(ws, hashes)
        if cached is not None:
            return cached, hashes, True
    ops = import_ops(ws)
    specs = [ops[f].spec for f in sorted(ops)]
    check(ws, specs)
    return specs, hashes, False
