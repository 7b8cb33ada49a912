"""Shared fixtures. Tiers: fast unit tests (no compiler), golden files for generated code
(`pytest --update-golden` rewrites them), and end-to-end tests marked `e2e` that build a
library, export, run it in ONNX Runtime and compare."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/ from the current output")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def run_opkit(*args: str, cwd: Path | str | None = None, env: dict | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real CLI in a child process, as a user would."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "opkit", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def repo_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's workspace built once per session, into a temp build folder."""
    build = tmp_path_factory.mktemp("repo-build")
    p = run_opkit("build", cwd=REPO, env={"OPKIT_BUILD_DIR": str(build)})
    assert p.returncode == 0, p.stderr
    return build


# A model whose one op, NullDeref (tests/fixtures/broken/null_deref), dereferences null for inputs of over 1000
# elements: copy the fixture into a workspace's ops/ and write this as its crash.py / model.py.
NULL_DEREF_MODEL = """\
import torch
from ops.null_deref.spec import null_deref


class M(torch.nn.Module):
    def forward(self, x):
        return null_deref(x) * 2


model = M()
example_inputs = (torch.randn(4, 600),)
"""


def broken_kernels_workspace(root: Path) -> Path:
    """A workspace at `root` with ScaledGelu (model.py: the gelu_mlp example) and NullDeref (crash.py), for the
    tests that break a kernel in a runtime (make ScaledGelu wrong with make_one_percent_off)."""
    (root / "ops").mkdir(parents=True)
    shutil.copytree(REPO / "ops" / "scaled_gelu", root / "ops" / "scaled_gelu")
    shutil.copytree(REPO / "tests" / "fixtures" / "broken" / "null_deref", root / "ops" / "null_deref")
    shutil.copy(REPO / "CMakeLists.txt", root / "CMakeLists.txt")
    shutil.copy(REPO / "examples" / "gelu_mlp.py", root / "model.py")
    (root / "crash.py").write_text(NULL_DEREF_MODEL)
    return root


def make_one_percent_off(kernel: Path) -> None:
    """A copy of ScaledGelu's kernel (ops/scaled_gelu/scaled_gelu.cc), made 1% off: the wrong-kernel tests."""
    text = kernel.read_text()
    assert "out[i] = alpha *" in text, "ops/scaled_gelu/scaled_gelu.cc changed: update conftest.make_one_percent_off"
    kernel.write_text(text.replace("out[i] = alpha *", "out[i] = static_cast<T>(1.01) * alpha *"))


def new_workspace(tmp: Path, name: str = "MyOp", domain: str = "com.example") -> Path:
    ws = tmp / "ws"
    ws.mkdir()
    p = run_opkit("new", name, "--domain", domain, cwd=ws)
    assert p.returncode == 0, p.stderr
    return ws


def make_venv(path: Path, *, see_running: bool = True) -> Path:
    """A fresh virtual environment at `path`; returns its python.

    It is made from the running interpreter's *base* Python (not from the venv the suite may run in), so it
    works whether the suite runs in the system Python or inside a venv. With `see_running`, a .pth file in
    its site-packages adds the running environment's site-packages (torch, onnx, onnxruntime, pip, the
    opkit under test, editable or not) as site dirs, after its own, as --system-site-packages would for the
    system Python: whatever is installed into the new venv wins, nothing is reinstalled.
    Without `see_running` it is a plain venv with its own pip, to install what it needs from the index.
    """
    import site
    import sysconfig

    base = getattr(sys, "_base_executable", None) or sys.executable
    cmd = [base, "-m", "venv", str(path)]
    if see_running:
        cmd.insert(3, "--without-pip")  # pip comes from the running environment
    made = subprocess.run(cmd, capture_output=True, text=True)
    assert made.returncode == 0, f"{' '.join(cmd)} failed:\n{made.stdout}{made.stderr}"
    py = path / "bin" / "python"
    if see_running:
        q = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           check=True, capture_output=True, text=True)
        own = Path(q.stdout.strip())
        running = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
        if site.ENABLE_USER_SITE:
            running.append(site.getusersitepackages())
        dirs = [d for d in dict.fromkeys(running) if Path(d).is_dir()]
        # "import" lines of a .pth run: addsitedir also runs the .pth files there (an editable install's finder)
        (own / "_opkit_tests_running_env.pth").write_text("".join(f"import site; site.addsitedir({d!r})\n"
                                                                  for d in dirs))
    return py


def copy_op(src_folder: Path, ws: Path) -> None:
    shutil.copytree(src_folder, ws / "ops" / src_folder.name)


_ORT_CHILD = r"""
import json, sys
import numpy as np
import onnxruntime as ort
job = json.load(open(sys.argv[1]))
so = ort.SessionOptions()
so.log_severity_level = 3
so.intra_op_num_threads = 2
so.register_custom_ops_library(job["library"])
results = []
for case in job["cases"]:
    try:
        sess = ort.InferenceSession(case["model"], so, providers=["CPUExecutionProvider"])
        for r, feeds in enumerate(case["runs"]):
            outs = sess.run(None, {n: np.load(p) for n, p in feeds.items()})
            for k, o in enumerate(outs):
                np.save(case["out"] + f"_{r}_{k}.npy", np.asarray(o), allow_pickle=False)
        results.append(None)
    except Exception as exc:
        results.append(str(exc))
json.dump(results, open(sys.argv[2], "w"))
"""


def run_models_in_ort(library: Path | str, cases: list[dict], tmp: Path) -> list[str | None]:
    """Run one-node models in ONNX Runtime with the op library, in one child process.

    Each case is {"model": path, "runs": [{input name: .npy path}, ...], "out": prefix}; output k of
    run r goes to f"{prefix}_{r}_{k}.npy". Returns each case's ORT error, or None.
    """
    import json

    (tmp / "job.json").write_text(json.dumps({"library": str(library), "cases": cases}))
    p = subprocess.run([sys.executable, "-c", _ORT_CHILD, str(tmp / "job.json"), str(tmp / "result.json")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"the ORT child process failed ({p.returncode}):\n{p.stderr[-3000:]}"
    return json.loads((tmp / "result.json").read_text())
