"""MkDocs hooks (mkdocs.yml `hooks:`): the parts of the docs that are read from the code, so they cannot rot.

- `<!-- opkit:usage COMMAND -->` becomes the command's `--help`, from opkit's own argparse parser.
- `<!-- opkit:errors -->` becomes the catalogue of every error opkit raises: each OpkitError subclass with its
  exit code and when it is raised (its docstring), then each raise site's message, expected value and fix,
  read from the source (f-string fields shown as `<...>`).

Also importable without MkDocs (tests/test_docs.py uses `usage` and `error_catalogue`)."""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
USAGE = re.compile(r"<!-- opkit:usage (\w+) -->")
ERRORS = "<!-- opkit:errors -->"


def usage(command: str) -> str:
    """`opkit COMMAND --help`, 88 columns wide (the width of a code block on the site)."""
    import os

    from opkit.cli import make_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        parser = make_parser()
        sub = next(a for a in parser._actions if a.dest == "command")
        return sub.choices[command].format_help().rstrip()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


@dataclass
class Raise:
    cls: str
    what: str
    expected: str | None
    fix: str | None
    file: str
    line: int


def _text(node: ast.AST | None) -> str | None:
    """A message argument as a reader sees it: literal text, `<...>` for each computed part."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else f"<{_field(v.value)}>" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return f"{left or '<...>'}{right or '<...>'}"
    if isinstance(node, ast.IfExp):
        a, b = _text(node.body), _text(node.orelse)
        return a if a == b else f"{a or '<...>'} / {b or '<...>'}"
    return None


def _field(node: ast.AST) -> str:
    """What an f-string field stands for, for a reader: a variable's or attribute's name, else `...`."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and not isinstance(node.value, ast.Call):
        return node.attr
    return "..."


def error_classes() -> dict[str, type]:
    from opkit import errors

    return {name: c for name, c in vars(errors).items()
            if isinstance(c, type) and issubclass(c, errors.OpkitError)}


def raise_sites() -> list[Raise]:
    """Every `raise SomeOpkitError(...)` and `return SomeOpkitError(...)` in opkit/, with its literal texts."""
    classes = error_classes()
    found = []
    for path in sorted((REPO / "opkit").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes):
                continue
            kw = {k.arg: k.value for k in node.keywords}
            what = _text(node.args[0]) if node.args else _text(kw.get("what"))
            if not what:
                continue  # a message built elsewhere (its parts are raise sites of their own)
            found.append(Raise(node.func.id, what, _text(kw.get("expected")), _text(kw.get("fix")),
                               str(path.relative_to(REPO)), node.lineno))
    return found


def error_catalogue() -> str:
    classes = error_classes()
    sites = raise_sites()
    out = []
    order = sorted(classes, key=lambda n: (n != "OpkitError", classes[n].exit_code, n))
    for name in order:
        cls = classes[name]
        mine = [r for r in sites if r.cls == name]
        doc = inspect.getdoc(cls) or ""
        out.append(f"### {name}\n")
        base = next((b.__name__ for b in cls.__mro__[1:] if b.__name__ in classes), None)
        out.append(f"Exit code **{cls.exit_code}**{f'; a kind of `{base}`' if base else ''}. {doc}\n")
        if not mine:
            continue
        out.append("| message | expected | fix | raised in (opkit/) |")
        out.append("| --- | --- | --- | --- |")
        for r in sorted(mine, key=lambda r: (r.file, r.line)):
            out.append(f"| {_cell(r.what)} | {_cell(r.expected)} | {_cell(r.fix)} | `{r.file.removeprefix('opkit/')}` |")
        out.append("")
    return "\n".join(out)


_PLAIN = str.maketrans({"<": "&lt;", ">": "&gt;", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]"})


def _cell(text: str | None) -> str:
    """A table cell: a short text as code, a long one as prose whose `code spans` stay code."""
    if not text:
        return ""
    text = " ".join(text.split()).replace("|", "\\|")
    if len(text) < 60:
        return "`" + text.replace("`", "'") + "`"
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans
        return text.replace("`", "'").translate(_PLAIN)
    return "`".join(part if k % 2 else part.translate(_PLAIN) for k, part in enumerate(parts))


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' hook signature)
    markdown = USAGE.sub(lambda m: f"```text\n{usage(m.group(1))}\n```", markdown)
    if ERRORS in markdown:
        markdown = markdown.replace(ERRORS, error_catalogue())
    return markdown
