"""A workspace: a folder with ``ops/``. Its build folder holds everything generated."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from opkit.errors import WorkspaceError


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def ops_dir(self) -> Path:
        return self.root / "ops"

    @property
    def build_dir(self) -> Path:
        return Path(os.environ.get("OPKIT_BUILD_DIR") or self.root / "build")

    @property
    def generated_dir(self) -> Path:
        return self.build_dir / "generated"

    def variant_dir(self, variant: str) -> Path:
        return self.build_dir / variant

    def library_path(self, variant: str = "release") -> Path:
        return self.variant_dir(variant) / "lib" / "libopkit_ops.so"

    def op_folders(self) -> list[str]:
        if not self.ops_dir.is_dir():
            return []
        return sorted(p.name for p in self.ops_dir.iterdir()
                      if p.is_dir() and (p / "spec.py").is_file())

    def kernel_file(self, folder: str) -> Path:
        return self.ops_dir / folder / f"{folder}.cc"

    def spec_file(self, folder: str) -> Path:
        return self.ops_dir / folder / "spec.py"

    def rel(self, path: Path | str) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


def find_workspace(start: Path | str | None = None, explicit: Path | str | None = None) -> Workspace:
    """The nearest folder with ``ops/`` from `start` upward, or `explicit`."""
    if explicit is not None:
        root = Path(explicit).resolve()
        if not (root / "ops").is_dir():
            raise WorkspaceError(f"{root} is not an opkit workspace", expected="a folder with an ops/ subfolder",
                                 got="no ops/ folder", fix="run `opkit new MyOp` there to start one")
        return Workspace(root)
    here = Path(start or Path.cwd()).resolve()
    if here.is_file():
        here = here.parent
    for d in (here, *here.parents):
        if (d / "ops").is_dir():
            return Workspace(d)
    raise WorkspaceError(f"no opkit workspace at or above {here}", expected="a folder with an ops/ subfolder",
                         fix="cd into your workspace, pass --workspace DIR, or run `opkit new MyOp` to start one")


def start_workspace(ws: Workspace) -> list[Path]:
    """Make `ws` a workspace (ops/, CMakeLists.txt, .gitignore), creating only what is missing; the files
    created. `opkit new` and `opkit adopt` start one where there is none."""
    from opkit.codegen.render import render_workspace_files
    from opkit.codegen.writer import create_new

    created = []
    for rel, text in render_workspace_files().items():
        path = ws.root / rel
        if not path.exists():
            create_new(path, text)
            created.append(path)
    ws.ops_dir.mkdir(parents=True, exist_ok=True)
    return created
