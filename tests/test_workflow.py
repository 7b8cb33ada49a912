"""The user's workflow end to end: opkit new -> write spec + kernel -> build -> verify (pass, and
exit 1 naming the op when the kernel is wrong), plus the build's error messages and CLI contracts."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, run_opkit

# The worked example of the docs (docs/getting-started.md and the README include these files): what a user
# copies is exactly what these tests build and verify.
SNIPPETS = REPO / "docs" / "snippets" / "swish"
SPEC = (SNIPPETS / "spec.py").read_text()
KERNEL = (SNIPPETS / "swish.cc").read_text()
MODEL = (SNIPPETS / "model.py").read_text()


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("user") / "my_ops"
    root.mkdir()
    p = run_opkit("new", "Swish", "--domain", "com.mycompany", cwd=root)
    assert p.returncode == 0, p.stderr
    for rel in ("CMakeLists.txt", ".gitignore", "ops/swish/spec.py", "ops/swish/swish.cc"):
        assert (root / rel).is_file(), rel
    assert "Next steps" in p.stdout
    (root / "ops/swish/spec.py").write_text(SPEC)
    (root / "ops/swish/swish.cc").write_text(KERNEL)
    (root / "model.py").write_text(MODEL)
    return root


def test_new_starts_a_workspace_whose_starting_op_builds(tmp_path):
    p = run_opkit("new", "Scale2", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    spec = (tmp_path / "ops/scale2/spec.py").read_text()
    assert '@opkit.op("Scale2", domain="com.example"' in spec
    p = run_opkit("build", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    lib = Path(p.stdout.strip().splitlines()[-1])
    assert lib.is_file() and lib.name == "libopkit_ops.so"


@pytest.mark.e2e
def test_build_and_verify_pass_with_a_dynamic_batch(ws):
    # ONNX Runtime's library only (what verify uses; a plain `opkit build` is test_new_starts_...'s)
    p = run_opkit("build", "--runtime", "onnxruntime", cwd=ws)
    assert p.returncode == 0, p.stderr
    assert "built" in p.stderr and "com.mycompany::Swish" in p.stderr
    # nothing changed: nothing is compiled again
    p = run_opkit("build", "--runtime", "onnxruntime", cwd=ws)
    assert p.returncode == 0 and "up to date" in p.stderr, p.stderr
    p = run_opkit("verify", "model.py", "--json", "report.json", cwd=ws)
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads((ws / "report.json").read_text())
    assert report["ok"] and report["ops"] == ["com.mycompany::Swish"] and report["exporter"] == "dynamo"
    ort_runs = [r for r in report["runs"] if r["backend"] == "native"]
    assert len(ort_runs) == 3  # the example size and two other batch sizes
    batches = {r["input_shapes"][0][0] for r in ort_runs}
    assert len(batches) == 3
    # the same three input sets also ran through the standalone C++ runner
    assert sorted(r["input_shapes"][0][0] for r in report["runs"] if r["backend"] == "C++ runner") == sorted(batches)
    for run in report["runs"]:
        (out,) = run["outputs"]
        assert out["ok"] and out["max_abs"] < 1e-5 and out["dtype"] == "float32"
    assert "PASS" in p.stdout
    # progress is shown while it runs
    for step in ("exporting to ONNX", "running in onnxruntime", "comparing with PyTorch"):
        assert step in p.stderr


@pytest.mark.e2e
def test_a_wrong_kernel_fails_verify_naming_the_op(ws):
    kernel = ws / "ops/swish/swish.cc"
    good = kernel.read_text()
    try:
        kernel.write_text(good.replace("in[i] / (T(1) + std::exp(-beta * in[i]))",
                                       "in[i] / (T(1) + std::exp(-beta * in[i])) + T(0.01)"))
        p = run_opkit("verify", "model.py", cwd=ws)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "FAIL" in p.stdout and "com.mycompany::Swish" in p.stdout
        assert "differs from PyTorch" in p.stdout
    finally:
        kernel.write_text(good)


@pytest.mark.e2e
def test_compile_error_points_at_the_kernel_line(ws):
    kernel = ws / "ops/swish/swish.cc"
    good = kernel.read_text()
    lines = good.splitlines()
    n = next(i for i, ln in enumerate(lines) if "const T beta" in ln)
    lines[n] = "  const T beta = attrs.no_such_attr;"
    try:
        kernel.write_text("\n".join(lines) + "\n")
        p = run_opkit("build", "--runtime", "onnxruntime", cwd=ws)
        assert p.returncode == 1
        assert f"ops/swish/swish.cc:{n + 1}:" in p.stderr, p.stderr
        assert "no_such_attr" in p.stderr and "Traceback" not in p.stderr
    finally:
        kernel.write_text(good)


@pytest.mark.e2e
def test_changed_spec_shows_the_signature_the_kernel_must_now_have(ws):
    spec = ws / "ops/swish/spec.py"
    good = spec.read_text()
    kernel_before = (ws / "ops/swish/swish.cc").read_text()
    try:
        spec.write_text(good.replace('def swish(x: Tensor["T"], beta',
                                     'def swish(x: Tensor["T"], gate: Tensor["T"], beta'))
        p = run_opkit("build", "--runtime", "onnxruntime", cwd=ws)
        assert p.returncode == 1
        assert "Swish's kernel must define" in p.stderr, p.stderr
        assert "the spec of Swish changed since the last build that compiled" in p.stderr
        assert "was: swish(x: Tensor['T'], beta: float = 1.0)" in p.stderr
        assert "now: swish(x: Tensor['T'], gate: Tensor['T'], beta: float = 1.0)" in p.stderr
        assert "const opkit::Input<T>& gate" in p.stderr
        skeleton = ws / "build/generated/skeletons/swish.cc"
        assert "const opkit::Input<T>& gate" in skeleton.read_text()
        # the user's kernel is never edited
        assert (ws / "ops/swish/swish.cc").read_text() == kernel_before
    finally:
        spec.write_text(good)
    assert run_opkit("build", "--runtime", "onnxruntime", cwd=ws).returncode == 0


def test_new_refuses_existing_and_bad_names(tmp_path):
    assert run_opkit("new", "Foo", cwd=tmp_path).returncode == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = run_opkit("new", "Foo", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    for bad in ("../Evil", "foo", "My-Op", "Class", "Ops"):
        p = run_opkit("new", bad, cwd=tmp_path)
        assert p.returncode == 2, (bad, p.stderr)
        assert "Traceback" not in p.stderr and p.stderr.startswith(("usage", "opkit: error")), p.stderr
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_help_and_new_do_not_import_torch(tmp_path):
    code = textwrap.dedent(f"""
        import sys, contextlib, io
        from opkit.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["--help"])
            except SystemExit:
                pass
            assert main(["new", "Lite", "--workspace", {str(tmp_path)!r}]) == 0
        heavy = [m for m in ("torch", "onnx", "onnxruntime", "numpy") if m in sys.modules]
        print(heavy)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_bad_spec_is_exit_2_with_file_and_line(tmp_path):
    assert run_opkit("new", "Bad", cwd=tmp_path).returncode == 0
    spec = tmp_path / "ops/bad/spec.py"
    text = spec.read_text().replace('Tensor["T"], scale', 'Tensor["flaot32"], scale')
    spec.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "flaot32" in ln)
    p = run_opkit("build", cwd=tmp_path)
    assert p.returncode == 2
    assert f"ops/bad/spec.py:{line}" in p.stderr
    assert "unknown dtype 'flaot32'" in p.stderr and "did you mean 'float32'?" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("content, message", [
    (None, "no such model file"),
    ("import torch\nexample_inputs = (torch.randn(2),)\n", "defines no `model`"),
    ("import torch\nmodel = torch.nn.ReLU()\nexample_inputs = torch.randn(2)\n", "is a tensor, not a tuple"),
    ("import torch\nmodel = torch.nn.ReLU()\nexample_inputs = (3,)\n", "`example_inputs[0]`"),
    ("import torch\nmodel = torch.nn.ReLU()\nexample_inputs = (torch.randn(2),)\nraise ValueError('boom')\n",
     "failed to import: ValueError: boom"),
])
def test_verify_usage_errors_exit_2(tmp_path, content, message):
    (tmp_path / "ops").mkdir()
    model = tmp_path / "m.py"
    if content is not None:
        model.write_text(content)
    env = {"OPKIT_BUILD_DIR": str(tmp_path / "b")}
    # an empty workspace: verify stops at the model file before building anything
    from opkit.verify.modelfile import load_model_file
    from opkit.errors import UsageError

    if content is None:
        p = run_opkit("verify", str(model), cwd=tmp_path, env=env)
        assert p.returncode == 2 and message in p.stderr
        return
    with pytest.raises(UsageError) as info:
        load_model_file(model, tmp_path)
    assert message in info.value.what
    assert info.value.exit_code == 2


@pytest.mark.e2e
def test_bundled_example_verifies(repo_build_dir, tmp_path):
    p = run_opkit("verify", "examples/gelu_mlp.py", "--html", str(tmp_path / "report.html"), cwd=REPO,
                  env={"OPKIT_BUILD_DIR": str(repo_build_dir)})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "opkit.examples::ScaledGelu" in p.stdout and "PASS" in p.stdout
    # the HTML report: where asked, and always in the artifacts folder
    page = (tmp_path / "report.html").read_text()
    assert page == (repo_build_dir / "verify" / "gelu_mlp" / "report.html").read_text()
    assert "onnxruntime + op library" in page and "C++ runner" in page and 'id="verdict">PASS' in page
    from browser import find_chromium
    from test_report_html import check_in_browser

    if find_chromium() is None:
        pytest.skip("no chromium on PATH: the report was written and checked, but not rendered in a browser")
    (node,) = check_in_browser(tmp_path / "report.html", ["opkit.examples::ScaledGelu"])
    assert "alpha = 1.702" in node["text"] and "float32[batch,256]" in node["text"]


def test_an_internal_error_is_one_message_not_a_traceback(tmp_path, monkeypatch):
    import opkit.cli.build as build_cmd
    from opkit.cli import main

    def boom(args):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(build_cmd, "run", boom)
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["build", "--workspace", str(tmp_path)]) == 1
    text = err.getvalue()
    assert "internal error in `opkit build`: RuntimeError: simulated bug" in text
    assert "OPKIT_DEBUG=1" in text and "Traceback" not in text
    monkeypatch.setenv("OPKIT_DEBUG", "1")
    with pytest.raises(RuntimeError, match="simulated bug"):
        main(["build", "--workspace", str(tmp_path)])


@pytest.mark.e2e
def test_verify_feeds_and_compares_bfloat16_model_inputs_and_outputs(tmp_path, repo_build_dir):
    # onnxruntime's numpy interface has no bfloat16: verify's worker goes through OrtValues
    (tmp_path / "bf16.py").write_text(textwrap.dedent("""
        import torch
        from ops.weighted_sum.spec import weighted_sum

        class M(torch.nn.Module):
            def forward(self, a, b):
                return weighted_sum([a, b], weights=[0.5, 2.0])

        model = M()
        example_inputs = (torch.randn(4, 8).to(torch.bfloat16), torch.randn(4, 8).to(torch.bfloat16))
        dynamic_shapes = ({0: torch.export.Dim("n")}, {0: torch.export.Dim("n")})
    """))
    p = run_opkit("verify", str(tmp_path / "bf16.py"), "--workspace", str(REPO), "--json", str(tmp_path / "r.json"),
                  cwd=tmp_path, env={"OPKIT_BUILD_DIR": str(repo_build_dir)})
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    outs = [o for r in report["runs"] for o in r["outputs"]]
    assert len(report["runs"]) >= 3 and all(o["dtype"] == "bfloat16" and o["ok"] for o in outs)
