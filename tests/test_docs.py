"""The docs cannot rot: every spec they show is a file that imports, every `opkit ...` command line they show is
accepted by opkit's own argument parser, every command has its page, the README's worked example is the one the
workflow tests build, and the site builds in strict mode (broken links and missing pages fail)."""

from __future__ import annotations

import ast
import re
import shlex
import textwrap
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DOCS = REPO / "docs"
SNIPPETS = DOCS / "snippets"
PAGES = sorted(DOCS.rglob("*.md"))
SNIPPET_LINE = re.compile(r'^\s*--8<-- "([^"]+)"\s*$', re.M)
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.S | re.M)
INLINE_CODE = re.compile(r"(?<!`)`(opkit [^`]+)`(?!`)")


def _blocks(path: Path) -> list[tuple[str, str]]:
    return [(m["lang"], m["body"]) for m in FENCE.finditer(path.read_text(encoding="utf-8"))]


def _snippet_target(ref: str) -> tuple[Path, str | None]:
    name, _, section = ref.partition(":")
    for base in (SNIPPETS, REPO):
        if (base / name).is_file():
            return base / name, section or None
    raise AssertionError(f"the snippet {name!r} is in neither docs/snippets/ nor the repository")


def test_pages_exist_and_every_snippet_they_include_exists() -> None:
    assert len(PAGES) >= 15
    refs = [(page, ref) for page in PAGES for ref in SNIPPET_LINE.findall(page.read_text(encoding="utf-8"))]
    assert len(refs) >= 10
    for page, ref in refs:
        path, section = _snippet_target(ref)
        if section:
            text = path.read_text(encoding="utf-8")
            assert f"--8<-- [start:{section}]" in text and f"--8<-- [end:{section}]" in text, (page, ref)


def test_every_spec_snippet_imports_and_declares_its_ops(tmp_path: Path) -> None:
    # one child process (specs register torch ops): each file loaded as its own module
    files = sorted(SNIPPETS.rglob("*.py"))
    files += sorted({p for page in PAGES for ref in SNIPPET_LINE.findall(page.read_text(encoding="utf-8"))
                     for p in [_snippet_target(ref)[0]] if p.suffix == ".py" and p.parent.parent.name == "ops"})
    spec_files = [f for f in files if "@opkit.op(" in f.read_text(encoding="utf-8")]
    assert len(spec_files) >= 8
    code = """
import importlib.util, json, sys
from opkit.spec.decorator import Op
out = {}
for k, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"doc_snippet_{k}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out[path] = sorted(v.spec.qualname for v in vars(mod).values() if isinstance(v, Op))
print(json.dumps(out))
"""
    p = subprocess.run([sys.executable, "-c", code, *map(str, spec_files)], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    import json

    declared = json.loads(p.stdout.strip().splitlines()[-1])
    for f in spec_files:
        assert declared[str(f)], f"{f} declares no op"
    assert declared[str(SNIPPETS / "specs" / "mix.py")] == ["test.sig::Mix"]


def test_the_kernel_declaration_shown_for_mix_is_the_generated_one() -> None:
    import importlib.util

    from opkit.codegen.render import kernel_signature

    spec = importlib.util.spec_from_file_location("doc_mix", SNIPPETS / "specs" / "mix.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    shown = (SNIPPETS / "specs" / "mix.kernel.h").read_text()
    assert " ".join(shown.split()) == " ".join((kernel_signature(mod.mix.spec) + ";").split())


def test_inline_python_blocks_parse_and_specs_live_in_snippet_files() -> None:
    checked = 0
    for page in PAGES:
        for lang, body in _blocks(page):
            if lang != "python" or SNIPPET_LINE.search(body):
                continue
            try:
                ast.parse(textwrap.dedent(body))  # (a block inside a list item is indented)
            except SyntaxError as exc:
                raise AssertionError(f"{page.relative_to(REPO)}: a python block does not parse: {exc}\n{body}")
            assert "@opkit.op(" not in body, (f"{page.relative_to(REPO)}: a spec written inline; put it in "
                                              "docs/snippets/ and include it, so that a test imports it")
            checked += 1
    assert checked >= 3


def _command_lines(text: str) -> list[str]:
    """`opkit ...` command lines of the code blocks: `$ opkit ...` in console blocks, `opkit ...` lines in others,
    each `&&`/`;`-joined part separately, comments dropped."""
    lines = []
    for m in FENCE.finditer(text):
        for raw in m["body"].replace("\\\n", " ").splitlines():  # continuation lines joined
            line = raw.strip()
            if m["lang"] == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            for part in re.split(r"&&|;|\|(?!\|)", line):
                part = part.strip()
                if part.startswith("opkit "):
                    lines.append(part)
    return lines


def _subparsers():
    from opkit.cli import make_parser

    parser = make_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return parser, sub.choices


def test_every_command_line_in_the_docs_is_accepted_by_the_cli() -> None:
    parser, commands = _subparsers()
    seen = set()
    for page in [*PAGES, REPO / "README.md"]:
        for line in _command_lines(page.read_text(encoding="utf-8")):
            if "[" in line.split("#")[0]:  # a synopsis (`opkit build [--runtime A|B]`): command and flags only
                _check_flags(page, line, commands)
                continue
            argv = shlex.split(line, comments=True)[1:]
            try:
                args = parser.parse_args(argv)
            except SystemExit:
                raise AssertionError(f"{page.relative_to(REPO)}: `{line}` is not accepted by opkit's parser") from None
            seen.add(args.command)
    # the docs show most commands at work
    assert len(seen) >= 8, seen


def _check_flags(page: Path, span: str, commands: dict) -> bool:
    """`opkit CMD[/CMD...] ...`: each command exists and has every flag the text names. False if not a command."""
    words = span.split("#")[0].split()
    if len(words) < 2 or words[1].startswith("<") or words[1] in ("-q", "--quiet", "--version", "--help"):
        return False
    for name in words[1].split("/"):  # `opkit verify/test --runtime X`: both commands take the flags
        assert name in commands, f"{page.relative_to(REPO)}: `{span}` names no opkit command ({name})"
        options = commands[name]._option_string_actions
        for flag in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", " ".join(words[2:])):
            assert flag in options, f"{page.relative_to(REPO)}: `{span}`: opkit {name} has no {flag}"
    return True


def test_every_inline_opkit_command_names_a_command_and_its_flags() -> None:
    _, commands = _subparsers()
    checked = 0
    for page in [*PAGES, REPO / "README.md"]:
        text = FENCE.sub("", page.read_text(encoding="utf-8"))
        checked += sum(_check_flags(page, span, commands) for span in INLINE_CODE.findall(text))
    assert checked >= 40


def test_lists_and_tables_start_a_block() -> None:
    # GitHub renders a list or table glued to the line above; MkDocs (Python-Markdown) prints it as text
    item = re.compile(r"^([-*+]|\d+\.) ")
    for page in PAGES:
        prev, fence = "", False
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                fence = not fence
            elif not fence and prev.strip() and not prev.startswith(("  ", "|")) and not item.match(prev):
                assert not item.match(line) and not line.startswith("|"), \
                    f"{page.relative_to(REPO)}:{n}: a list or table needs a blank line before it"
            prev = line


def test_every_command_has_a_page_with_its_usage_in_the_nav() -> None:
    from opkit.cli import COMMANDS

    nav = (REPO / "mkdocs.yml").read_text()
    for name in COMMANDS:
        page = DOCS / "commands" / f"{name}.md"
        assert page.is_file(), f"no docs page for `opkit {name}`"
        assert f"<!-- opkit:usage {name} -->" in page.read_text(), page
        assert f"commands/{name}.md" in nav, f"commands/{name}.md is not in the nav of mkdocs.yml"


def test_the_readme_worked_example_is_the_tested_one() -> None:
    blocks = {body.splitlines()[0]: body for _, body in _blocks(REPO / "README.md") if body.strip()}
    for first, snippet in [("# ops/swish/spec.py", "swish/spec.py"), ("// ops/swish/swish.cc", "swish/swish.cc"),
                           ("# model.py", "swish/model.py")]:
        assert first in blocks, f"the README lost the worked example's {snippet}"
        assert blocks[first] == (SNIPPETS / snippet).read_text(), f"README's {snippet} differs from docs/snippets/"


def test_the_readme_links_point_at_existing_files_and_anchors() -> None:
    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(((?!https?:)[^)#\s]+)(#[^)\s]+)?\)", text)
    assert len(links) >= 20
    for target, anchor in links:
        path = REPO / target
        assert path.exists(), f"README links to {target}, which does not exist"
        if anchor and path.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", FENCE.sub("", path.read_text()), re.M)
            slugs = {re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", h.lower())).strip("-") for h in headings}
            assert anchor[1:] in slugs, f"README links to {target}{anchor}: no such heading ({sorted(slugs)})"


def test_the_error_catalogue_lists_every_error_class_and_raise_site() -> None:
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import docs_hooks
    finally:
        sys.path.remove(str(REPO / "tools"))
    from opkit import errors

    text = docs_hooks.error_catalogue()
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.OpkitError)]
    for c in classes:
        assert f"### {c.__name__}\n" in text
    sites = docs_hooks.raise_sites()
    assert len(sites) >= 100
    # spot checks: a message with its fix, an f-string field shown as <...>
    assert "| `op name <name> is not CamelCase` | `letters and digits, starting with a capital, e.g. MyOp` | " \
           "`opkit new <fixed> / choose another name` | `cli/new.py` |" in text
    assert docs_hooks.usage("verify").startswith("usage: opkit verify")


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    pytest.importorskip("material", reason="the docs extra is not installed (pip install -e '.[docs]')")
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=REPO, capture_output=True, text=True, timeout=600,
                       env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    page = (tmp_path / "site" / "troubleshooting" / "index.html").read_text()
    assert "SpecError" in page and "is not CamelCase" in page  # the generated catalogue is in the page
    usage = (tmp_path / "site" / "commands" / "verify" / "index.html").read_text()
    assert "--html FILE" in usage  # the usage block, from argparse
