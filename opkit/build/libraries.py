"""Find the native libraries the specs declare (``libraries=``) for `opkit build`: include folder, library
folder (also the rpath, so that the op library loads from Python and from the C++ runner) and the name to link."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from opkit.errors import ToolMissingError
from opkit.spec.libraries import LIBRARIES
from opkit.spec.model import OpSpec


@dataclass(frozen=True)
class FoundLibrary:
    name: str
    include_dir: Path
    lib_dir: Path
    link_name: str  # -l<link_name>
    define: str
    version: str

    @property
    def library(self) -> Path:
        """The shared library file the op library links (its folder goes on the rpath)."""
        return self.lib_dir / f"lib{self.link_name}.so"


def find_library(name: str, needed_by: str = "") -> FoundLibrary:
    spec = LIBRARIES[name]
    try:
        mod = importlib.import_module(spec.module)
        include = Path(mod.get_include_dir())
        lib_dir = Path(mod.get_lib_dir())
        link = mod.get_library()
    except Exception as exc:  # not installed, or a broken install
        why = "not installed" if isinstance(exc, ImportError) else f"{type(exc).__name__}: {exc}"
        raise ToolMissingError(f"library {name!r} ({spec.pip}) is {why}",
                               where=needed_by or None, expected=f"the Python package {spec.pip}",
                               fix=f"pip install {spec.pip}") from None
    if not (lib_dir / f"lib{link}.so").is_file():
        raise ToolMissingError(f"library {name!r}: lib{link}.so is missing from {lib_dir}",
                               where=needed_by or None, fix=f"pip install --force-reinstall {spec.pip}")
    if not (include / spec.header).is_file():
        raise ToolMissingError(f"library {name!r}: {spec.header} is missing from {include}",
                               where=needed_by or None, fix=f"pip install --force-reinstall {spec.pip}")
    return FoundLibrary(name, include, lib_dir, link, spec.define, getattr(mod, "__version__", "?"))


def libraries_of(specs: list[OpSpec]) -> list[FoundLibrary]:
    """Every library the specs declare, found once each (in the order first declared)."""
    names: dict[str, str] = {}
    for s in specs:
        for n in s.libraries:
            names.setdefault(n, f"ops/{s.folder}/spec.py ({s.name})")
    return [find_library(n, where) for n, where in names.items()]


def cmake_defs(libraries: list[FoundLibrary]) -> dict[str, str]:
    """The -D entries the CMake fragment (templates/cpp/libraries.cmake.inc.j2) reads for each library."""
    from opkit.codegen.render import library_var

    defs: dict[str, str] = {}
    for lib in libraries:
        var = library_var(lib.name)
        defs[f"OPKIT_LIB_{var}_INCLUDE_DIR:PATH"] = str(lib.include_dir)
        defs[f"OPKIT_LIB_{var}_DIR:PATH"] = str(lib.lib_dir)
        defs[f"OPKIT_LIB_{var}_LIBRARY:FILEPATH"] = str(lib.library)
    return defs
