"""What a user installs must work (issue 10): the wheel built from the checkout, installed (not editable) into
a fresh venv, runs every command from a folder outside the repository; and CI runs the README's test command
inside a fresh venv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, make_venv

# What a user's model looks like: the op of `opkit new`, between two torch layers.
MODEL = '''\
import torch
from ops.my_op.spec import my_op


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x):
        return my_op(self.fc(x), scale=2.0)


torch.manual_seed(0)
model = Net().eval()
example_inputs = (torch.randn(3, 8),)
'''


def test_ci_runs_the_readme_test_command_in_a_fresh_venv():
    readme = (REPO / "README.md").read_text().splitlines()
    (command,) = [ln for ln in readme[:10] if ln.startswith("python -m pip") and "pytest" in ln]
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert command in lines  # verbatim
    venv = next(i for i, ln in enumerate(lines) if " -m venv " in ln)
    activate = next(i for i, ln in enumerate(lines) if ln.startswith("source ") and "bin/activate" in ln)
    assert venv < activate < lines.index(command)


def _copy_checkout(dest: Path) -> Path:
    """The checkout's sources, without its build outputs (setuptools would write build/ into the repo,
    which is also the workspace's build folder)."""
    anywhere = shutil.ignore_patterns(".git", "*.egg-info", "__pycache__", ".pytest_cache", "*.onnx", "*.onnx.data")

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = {"build", "dist"} if Path(folder) == REPO else set()
        return set(anywhere(folder, names)) | (top & set(names))

    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


@pytest.mark.e2e
@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_runs_every_command(tmp_path):
    import sys

    from opkit.cli import COMMANDS

    # 1. the wheel, as `pip wheel .` makes it for a user
    src = _copy_checkout(tmp_path / "src")
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                        str(src)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    (wheel,) = (tmp_path / "dist").glob("opkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = [p.relative_to(REPO).as_posix() for p in (REPO / "opkit").rglob("__init__.py")]
    assert {"opkit/testing/__init__.py", "opkit/bench/__init__.py", "opkit/check/__init__.py"} <= set(packages)
    assert not [p for p in packages if p not in names]  # every package of the checkout is in the wheel
    assert "opkit/templates/cpp/kernel.h.j2" in names and "opkit/templates/runner/main.cc.j2" in names

    # 2. installed (not editable) into a fresh venv that sees the running environment's torch, onnx, ...
    venv = tmp_path / "venv"
    py = make_venv(venv)
    p = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    user = tmp_path / "user"
    user.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "OPKIT_BUILD_DIR"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    def opkit(*args: str, cwd: Path = user, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "opkit"), *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)

    q = subprocess.run([str(py), "-c", "import opkit, opkit.testing; print(opkit.__file__)"], cwd=user, env=env,
                       capture_output=True, text=True)
    assert q.returncode == 0, q.stderr
    assert Path(q.stdout.strip()).is_relative_to(venv), q.stdout  # the wheel's opkit, not the checkout's

    # 3. every command's --help
    p = opkit("--help")
    assert p.returncode == 0 and all(c in p.stdout for c in COMMANDS), p.stdout + p.stderr
    for command in COMMANDS:
        p = opkit(command, "--help")
        assert p.returncode == 0 and p.stdout.startswith("usage: opkit " + command), (command, p.stdout, p.stderr)

    # 4. the workflow on one workspace, outside the repository
    ws = user / "ws"
    ws.mkdir()
    p = opkit("new", "MyOp", "--domain", "com.example", cwd=ws)
    assert p.returncode == 0, p.stderr
    (ws / "model.py").write_text(MODEL)
    p = opkit("build", cwd=ws)
    assert p.returncode == 0, p.stderr
    assert (ws / "build" / "release" / "lib" / "libopkit_ops.so").is_file()
    p = opkit("verify", "model.py", "--json", str(user / "verify.json"), cwd=ws)
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads((user / "verify.json").read_text())
    assert report["ok"] and "com.example::MyOp" in json.dumps(report)
    p = opkit("test", "MyOp", "--json", str(user / "test.json"), cwd=ws)
    assert p.returncode == 0, p.stdout + p.stderr
    (op,) = json.loads((user / "test.json").read_text())["ops"]
    assert op["name"] == "MyOp" and op["passed"] > 0 and op["failed"] == 0
    models = list((ws / "build" / "verify").rglob("model.onnx"))
    assert models, "verify left no model.onnx"
    p = opkit("check", str(models[0]), cwd=ws)
    assert p.returncode == 0 and "MyOp" in p.stdout, p.stdout + p.stderr
    p = opkit("bench", "MyOp", "--sizes", "1K", "--dtype", "float32", "--threads", "1", "--budget", "0.2",
              "--json", str(user / "bench.json"), cwd=ws)
    assert p.returncode == 0, p.stdout + p.stderr
    (row,) = json.loads((user / "bench.json").read_text())["rows"]
    assert row["stats"]["native"]["median_s"] > 0 and not row["errors"]
