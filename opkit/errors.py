"""The one exception family of opkit.

Every failure a user can fix is an :class:`OpkitError` subclass. A message says
what went wrong, where (file:line when known), what was expected and what was
found, and how to fix it. The CLI prints :meth:`OpkitError.render` and exits
with :attr:`OpkitError.exit_code` (2 for usage errors, 1 for failures); it never
shows a traceback for these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a user's file."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class OpkitError(Exception):
    """Base class: a failure the user can act on. Exit code 1."""

    exit_code = 1

    def __init__(
        self,
        what: str,
        *,
        where: Location | str | None = None,
        expected: str | None = None,
        got: str | None = None,
        fix: str | None = None,
        details: str | None = None,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        self.expected = expected
        self.got = got
        self.fix = fix
        self.details = details

    def render(self) -> str:
        lines = [f"opkit: error: {self.what}"]
        if self.where:
            lines.append(f"  at:       {self.where}")
        if self.expected is not None:
            lines.append(f"  expected: {self.expected}")
        if self.got is not None:
            lines.append(f"  got:      {self.got}")
        if self.details:
            lines.extend("  " + ln for ln in self.details.rstrip().splitlines())
        if self.fix:
            lines.append(f"  fix:      {self.fix}")
        return "\n".join(lines)

    def __str__(self) -> str:  # so that pytest and logs show the whole message
        return self.render()


class UsageError(OpkitError):
    """The command was called wrongly (bad argument, no such file). Exit code 2."""

    exit_code = 2


class SpecError(UsageError):
    """An op spec is invalid: bad annotation, unknown dtype, bad name, duplicate op."""


class WorkspaceError(UsageError):
    """No workspace found, or a file that `opkit new` would create already exists."""


class ModelFileError(UsageError):
    """A model file given to verify/export lacks `model`/`example_inputs` or fails to import."""


class TemplateError(OpkitError):
    """A template referenced an undefined name or failed to render (a bug in opkit or its templates)."""


class ToolMissingError(OpkitError):
    """A tool opkit needs (cmake, ninja, a C++ compiler, ORT headers) is missing or too old."""


class RuntimeMissingError(UsageError):
    """A runtime was asked for (--runtime NAME) whose packages are not installed. Exit code 2."""


class HeadersError(ToolMissingError):
    """ONNX Runtime's C/C++ headers could not be obtained."""


class BuildError(OpkitError):
    """CMake configure or the compile/link of the op library failed."""


class ExportError(OpkitError):
    """torch.onnx export of a model failed, or produced a graph without the expected custom nodes."""


class AdoptionError(ExportError):
    """A spec's ``adopts=`` does not fit the original op: its parameters are not the op's arguments, or the model
    passes a value for an argument the spec leaves out."""


class NativeRunError(OpkitError):
    """Native code (the op library in ONNX Runtime) failed, crashed or timed out in a child process."""


class BackendUnsupportedError(OpkitError):
    """An op's signature cannot run on the chosen verify backend (e.g. float16 on the Python backend)."""


class ModelCheckError(OpkitError):
    """`opkit check` (or verify's check after export) found custom-domain nodes that do not match the specs."""


class LibraryVersionError(OpkitError):
    """A native op library was built for another version of the runtime that loads it (torch's C++ ABI is not
    stable across versions): refused before loading, naming both versions."""
