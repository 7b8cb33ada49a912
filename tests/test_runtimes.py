"""The runtime layer (opkit/runtimes/): the registry, --runtime and its aliases, the messages for an
unknown or a not-installed runtime. Fast: nothing is built."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from opkit.errors import RuntimeMissingError, UsageError
from opkit.runtimes import DEFAULT, KNOWN, choose, get, runtime_names
from opkit.runtimes.base import Runtime

REPO = Path(__file__).resolve().parent.parent


def test_every_known_runtime_imports_and_declares_itself() -> None:
    for name in KNOWN:
        rt = get(name)
        assert isinstance(rt, Runtime) and rt.name == name and rt.label and rt.short
        assert rt.artifact in ("onnx", "torch", "torchscript", "aoti", "executorch") and rt.install
        # a C++ runner: named <runtime>-cpp, or a runtime whose file only a C++ program runs (.pt, .pt2)
        assert rt.cpp == (name.endswith("-cpp") or rt.artifact in ("torchscript", "aoti"))
        if rt.cpp:  # a C++ runner is checked against its Python-API twin
            assert rt.compare_with in KNOWN and not rt.cases and not rt.bench


def test_the_default_is_onnxruntime_python_and_its_cpp_runner() -> None:
    assert [rt.name for rt in choose(None)] == list(DEFAULT) == ["onnxruntime", "onnxruntime-cpp"]
    assert [rt.name for rt in choose(None, no_cpp=True)] == ["onnxruntime"]  # --no-native


def test_all_takes_every_installed_runtime_but_the_python_references() -> None:
    names = [rt.name for rt in choose(["all"])]
    assert "python" not in names and names[:2] == ["onnxruntime", "onnxruntime-cpp"]
    assert set(names) == {n for n in KNOWN if get(n).in_all and get(n).missing() is None}
    assert [rt.name for rt in choose(["onnxruntime", "all", "onnxruntime"])].count("onnxruntime") == 1


def test_unknown_runtime_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as e:
        choose(["tensorrtt"])
    assert e.value.exit_code == 2
    text = e.value.render()
    assert "unknown runtime 'tensorrtt'" in text and all(n in text for n in KNOWN)


def test_a_runtime_that_is_not_installed_gives_the_install_command(monkeypatch) -> None:
    rt = get("openvino")
    monkeypatch.setattr(type(rt), "requires", ("opkit_no_such_package_here",))
    with pytest.raises(RuntimeMissingError) as e:
        choose(["openvino"])
    assert e.value.exit_code == 2
    assert "opkit_no_such_package_here" in e.value.what and "pip install" in (e.value.fix or "")
    # `all` leaves it out instead of failing
    assert "openvino" not in [r.name for r in choose(["all"])]


def test_the_cli_reports_a_missing_runtime_in_one_message_exit_2(monkeypatch, capsys) -> None:
    from opkit.cli import main

    rt = get("openvino")
    monkeypatch.setattr(type(rt), "requires", ("opkit_no_such_package_here",))
    assert main(["verify", str(REPO / "examples" / "gelu_mlp.py"), "--runtime", "openvino"]) == 2
    err = capsys.readouterr().err
    assert "runtime 'openvino'" in err and "pip install 'opkit[openvino]'" in err and "Traceback" not in err
    assert main(["test", "--workspace", str(REPO), "--runtime", "nope"]) == 2
    assert "unknown runtime 'nope'" in capsys.readouterr().err


def test_backend_python_is_runtime_python_and_test_refuses_cpp_runners() -> None:
    assert runtime_names(None, "python") == ["python"]
    assert runtime_names(["openvino"], "python") == ["openvino", "python"]
    assert runtime_names(None, "native") is None
    assert runtime_names(["onnxruntime", "openvino"], "native") == ["onnxruntime", "openvino"]
    with pytest.raises(UsageError, match="cannot use the runtime"):
        choose(["onnxruntime-cpp"], need="cases")
    assert [rt.name for rt in choose(["all"], need="cases")] == \
        [n for n in KNOWN if get(n).in_all and get(n).cases and get(n).missing() is None]


def test_runtime_flag_is_repeatable_on_every_command() -> None:
    from opkit.cli import make_parser

    parser = make_parser()
    for argv in (["verify", "m.py"], ["test"], ["bench", "Op"]):
        args = parser.parse_args(argv + ["--runtime", "onnxruntime", "--runtime", "openvino"])
        assert args.runtime == ["onnxruntime", "openvino"], argv
    args = parser.parse_args(["run", "m.onnx", "--runtime", "openvino"])
    assert args.runtime == "openvino"
    assert isinstance(parser.parse_args(["verify", "m.py", "--backend", "python"]), argparse.Namespace)
