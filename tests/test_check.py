"""opkit check: each finding on a deliberately broken one-node model (built with onnx.helper), and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as h

from opkit.check.nodes import check_model
from opkit.spec.model import Attr, Dim, Input, OpSpec, Output, ShapeRule, TensorType, TypeVar

from conftest import REPO, new_workspace, run_opkit

T = TensorType(typevar="T")
SCALE = OpSpec(name="Scale", domain="com.acme", version=2, py_name="scale",
               typevars=(TypeVar("T", ("float32", "float64")),),
               inputs=(Input("x", T), Input("bias", T, optional=True)),
               attrs=(Attr("alpha", "float"), Attr("mode", "str", "fast", required=False),
                      Attr("flag", "bool", False, required=False)),
               outputs=(Output("y", T, ShapeRule("'x'", (Dim("dims", input="x"),))),),
               param_order=("x", "bias", "alpha", "mode", "flag"), folder="scale")
SUM = OpSpec(name="SumAll", domain="com.acme", version=2, py_name="sum_all",
             typevars=(TypeVar("T", ("float32",)),),
             inputs=(Input("ids", TensorType(dtype="int64")), Input("xs", T, variadic=True)),
             attrs=(), outputs=(Output("y", T), Output("n", TensorType(dtype="int64"))),
             param_order=("ids", "xs"), folder="sum_all")
SPECS = [SCALE, SUM]


def model(nodes, inputs=(("x", TP.FLOAT), ("b", TP.FLOAT), ("i", TP.INT64)), opsets=(("com.acme", 2),)):
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info(n, t, [2, 3]) for n, t in inputs],
                     [h.make_tensor_value_info(o, TP.UNDEFINED, None) for n in nodes[-1:] for o in n.output if o])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)] + [h.make_opsetid(d, v) for d, v in opsets])


def scale(inputs=("x",), name="scale0", domain="com.acme", op="Scale", **attrs):
    return h.make_node(op, list(inputs), ["y"], name=name, domain=domain, **({"alpha": 1.5} | attrs))


def kinds(m, specs=SPECS):
    r = check_model(m, specs)
    return [(f.kind, f.node) for f in r.findings], r


def test_a_correct_model_has_no_findings_and_lists_its_nodes():
    m = model([scale(("x", "b"), mode="slow", flag=1),
               h.make_node("SumAll", ["i", "x", "b", "y"], ["s", "n"], name="sum0", domain="com.acme")])
    found, r = kinds(m)
    assert found == []
    assert [(n.node, n.op, n.spec) for n in r.nodes] == [("'scale0'", "com.acme::Scale", "com.acme::Scale"),
                                                         ("'sum0'", "com.acme::SumAll", "com.acme::SumAll")]


def test_misspelled_domain_names_the_node_and_the_right_domain():
    _, r = kinds(model([scale(domain="com.acne")], opsets=(("com.acne", 2),)))
    (f,) = r.findings
    assert (f.kind, f.node, f.op) == ("unknown-domain", "'scale0'", "com.acne::Scale")
    assert "'com.acme'" in f.fix and "opset_import(domain='com.acme', version=2)" in f.fix


def test_unknown_domain_and_op_suggests_the_nearest_domain():
    _, r = kinds(model([scale(domain="com.acmee", op="Other")], opsets=(("com.acmee", 2),)))
    (f,) = r.findings
    assert f.kind == "unknown-domain" and "did you mean domain 'com.acme'" in f.fix


def test_unknown_op_in_a_known_domain_suggests_the_nearest_op():
    _, r = kinds(model([scale(op="Scal")]))
    (f,) = r.findings
    assert f.kind == "unknown-op" and "rename the node's op_type to 'Scale'" in f.fix


def test_op_without_its_domain():
    found, r = kinds(model([scale(domain="")], opsets=()))
    assert found == [("no-domain", "'scale0'")]
    assert "set the node's domain to 'com.acme'" in r.findings[0].fix


def test_opset_import_missing_or_wrong_version():
    found, r = kinds(model([scale()], opsets=()))
    assert found == [("opset-missing", "'scale0'")]
    assert "make_opsetid('com.acme', 2)" in r.findings[0].fix
    found, r = kinds(model([scale()], opsets=(("com.acme", 1),)))
    assert found == [("opset-version", "'scale0'")]
    assert "version 1" in r.findings[0].message and "to 2" in r.findings[0].fix


def test_attributes_missing_wrong_type_unknown():
    node = h.make_node("Scale", ["x"], ["y"], name="s", domain="com.acme", mode=3, flg=1)
    found, r = kinds(model([node]))
    assert sorted(found) == [("attr-missing", "'s'"), ("attr-type", "'s'"), ("attr-unknown", "'s'")]
    by = {f.kind: f for f in r.findings}
    assert "'alpha'" in by["attr-missing"].message
    assert "'mode' is INT" in by["attr-type"].message and "STRING" in by["attr-type"].fix
    assert "rename it to 'flag'" in by["attr-unknown"].fix
    found, r = kinds(model([scale(alpha=2)]))  # an int where a float is declared
    assert found == [("attr-type", "'scale0'")] and "1.0, not 1" in r.findings[0].fix


def test_input_and_output_counts_are_optional_and_variadic_aware():
    assert kinds(model([scale(("x", ""))]))[0] == []  # an absent optional input
    assert kinds(model([scale(("x", "b", "x"))]))[0] == [("input-count", "'scale0'")]
    assert kinds(model([scale(())]))[0] == [("input-count", "'scale0'")]
    assert kinds(model([scale(("", "b"))]))[0] == [("input-empty", "'scale0'")]
    variadic = h.make_node("SumAll", ["i"], ["s", "n"], name="v", domain="com.acme")
    found, r = kinds(model([variadic]))
    assert found == [("input-count", "'v'")] and "at least 2" in r.findings[0].message
    assert kinds(model([h.make_node("SumAll", ["i", "x", "x", "x", "x"], ["s", "n"], name="v",
                                    domain="com.acme")]))[0] == []
    found, r = kinds(model([h.make_node("SumAll", ["i", "x"], ["s"], name="v", domain="com.acme")]))
    assert found == [("output-count", "'v'")]


def test_input_dtypes_from_the_graph_and_from_shape_inference():
    found, r = kinds(model([scale(("x",))], inputs=(("x", TP.FLOAT16),)))
    assert found == [("input-dtype", "'scale0'")]
    assert "float16" in r.findings[0].message and "float32, float64" in r.findings[0].message
    # the dtype reaches the node through a standard op: known only from ONNX shape inference
    relu = h.make_node("Relu", ["x"], ["r"], name="relu")
    found, _ = kinds(model([relu, scale(("r",))], inputs=(("x", TP.INT32),)))
    assert found == [("input-dtype", "'scale0'")]
    found, r = kinds(model([scale(("x", "b"))], inputs=(("x", TP.FLOAT), ("b", TP.DOUBLE))))
    assert found == [("input-dtype", "'scale0'")] and "type T is float32" in r.findings[0].message
    found, r = kinds(model([h.make_node("SumAll", ["x", "x"], ["s", "n"], name="v", domain="com.acme")]))
    assert found == [("input-dtype", "'v'")] and "requires int64" in r.findings[0].message
    # a custom node's output dtype follows its type variable to the next custom node
    found, _ = kinds(model([scale(("x",)), h.make_node("SumAll", ["i", "y"], ["s", "n"], name="v",
                                                         domain="com.acme")], inputs=(("x", TP.DOUBLE),
                                                                                      ("i", TP.INT64))))
    assert found == [("input-dtype", "'v'")]


@pytest.fixture(scope="module")
def cached_ws(tmp_path_factory):
    """A workspace (opkit new MyOp) whose specs cache exists, as after a build."""
    ws = new_workspace(tmp_path_factory.mktemp("check"))
    code = ("import sys; from pathlib import Path; from opkit.build.workspace import Workspace; "
            "from opkit.build.specs import load_specs, cache_payload, _cache_path; "
            "ws = Workspace(Path(sys.argv[1])); specs, hashes, _ = load_specs(ws); "
            "_cache_path(ws).parent.mkdir(parents=True, exist_ok=True); "
            "_cache_path(ws).write_text(cache_payload(specs, hashes))")
    subprocess.run([sys.executable, "-c", code, str(ws)], check=True, env={"PATH": "", "PYTHONPATH": str(REPO)})
    return ws


def test_cli_names_the_node_and_exits_1_without_importing_torch(cached_ws, tmp_path):
    bad = h.make_node("MyOp", ["x"], ["y"], name="my_node", domain="com.exmaple", scale=2.0)
    onnx.save(model([bad], inputs=(("x", TP.FLOAT),), opsets=(("com.exmaple", 1),)), tmp_path / "bad.onnx")
    code = ("import sys; from opkit.cli import main; rc = main(['check', sys.argv[1], '--workspace', sys.argv[2], "
            "'--json', sys.argv[3]]); print('torch imported' if 'torch' in sys.modules else 'no torch'); "
            "sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "bad.onnx"), str(cached_ws),
                        str(tmp_path / "r.json")], capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    assert "node 'my_node' (com.exmaple::MyOp): unknown domain 'com.exmaple'" in p.stdout
    assert "set the node's domain to 'com.example'" in p.stdout
    assert "no torch" in p.stdout and "(cached)" in p.stderr
    assert json.loads((tmp_path / "r.json").read_text())["findings"][0]["kind"] == "unknown-domain"
    good = h.make_node("MyOp", ["x"], ["y"], name="my_node", domain="com.example", scale=2.0)
    onnx.save(model([good], inputs=(("x", TP.FLOAT),), opsets=(("com.example", 1),)), tmp_path / "good.onnx")
    p = run_opkit("check", str(tmp_path / "good.onnx"), "--workspace", str(cached_ws))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.rstrip().endswith("OK")
    p = run_opkit("check", str(tmp_path / "missing.onnx"), "--workspace", str(cached_ws))
    assert p.returncode == 2 and "no such model file" in p.stderr
