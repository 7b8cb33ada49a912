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


def new_workspace(tmp: Path, name: str = "MyOp", domain: str = "com.example") -> Path:
    ws = tmp / "ws"
    ws.mkdir()
    p = run_opkit("new", name, "--domain", domain, cwd=ws)
    assert p.returncode == 0, p.stderr
    return ws


def copy_op(src_folder: Path, ws: Path) -> None:
    shutil.copytree(src_folder, ws / "ops" / src_folder.name)
