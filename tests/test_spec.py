"""Spec parsing: the frozen model, and one clear message (file:line, what, fix) per invalid spec."""

from __future__ import annotations

import importlib.util
import itertools
import json
import textwrap
from pathlib import Path

import pytest

from opkit.errors import SpecError
from opkit.spec.model import OpSpec

_counter = itertools.count()


def load(tmp_path: Path, body: str):
    """Write a spec module and import it; return the module (its ops) or raise what opkit raised."""
    src = "import torch\nimport opkit\nfrom opkit import Tensor\n\n" + textwrap.dedent(body).lstrip("\n")
    n = next(_counter)
    path = tmp_path / f"spec_{n}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"opkit_test_spec_{n}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def error(tmp_path: Path, body: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load(tmp_path, body)
    return info.value


def line_of(err: SpecError) -> int:
    return int(str(err.where).rsplit(":", 1)[1])


def test_scaled_gelu_spec_parses_into_the_frozen_model(tmp_path):
    mod = load(tmp_path, '''
        @opkit.op("ScaledGeluT1", domain="opkit.test", types={"T": ("float32", "float64")}, shapes={"y": "x"})
        def scaled_gelu_t1(x: Tensor["T"], alpha: float = 1.0) -> Tensor["T"]:
            """GELU(x) * alpha"""
            return torch.nn.functional.gelu(x) * alpha
    ''')
    spec = mod.scaled_gelu_t1.spec
    assert spec.qualname == "opkit.test::ScaledGeluT1"
    assert [i.name for i in spec.inputs] == ["x"] and spec.inputs[0].type.typevar == "T"
    assert [(a.name, a.kind, a.default, a.required) for a in spec.attrs] == [("alpha", "float", 1.0, False)]
    assert [o.name for o in spec.outputs] == ["y"]
    assert spec.kernel_combos == [{"T": "float32"}, {"T": "float64"}]
    assert spec.signature == "scaled_gelu_t1(x: Tensor['T'], alpha: float = 1.0) -> Tensor['T']"
    assert spec.doc == "GELU(x) * alpha"
    with pytest.raises(AttributeError):
        spec.name = "Other"  # frozen
    # the cache round trip used by `opkit build` gives back an equal spec
    assert OpSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_full_signature_is_represented(tmp_path):
    mod = load(tmp_path, '''
        @opkit.op("Full1", domain="opkit.test", types={"T": ("float32", "float16"), "I": ("int32", "int64")},
                  outputs=("values", "indices"), shapes={"values": ("x[:-1]", "k"), "indices": (None,)})
        def full1(x: Tensor["T"], idx: Tensor["I"], bias: Tensor["T"] | None, xs: list[Tensor["T"]],
                  k: int, names: list[str] = ("a", "b"), scales: list[float] = (1.0,), flag: bool = False,
                  mode: str = "x", ks: list[int] = ()) -> tuple[Tensor["T"], Tensor["int64"]]:
            return x, idx.long()
    ''')
    s = mod.full1.spec
    assert [(i.name, i.optional, i.variadic) for i in s.inputs] == [
        ("x", False, False), ("idx", False, False), ("bias", True, False), ("xs", False, True)]
    assert {a.name: a.kind for a in s.attrs} == {"k": "int", "names": "strs", "scales": "floats", "flag": "bool",
                                                "mode": "str", "ks": "ints"}
    assert s.attr("k").required and not s.attr("names").required
    assert [o.type.dtype or o.type.typevar for o in s.outputs] == ["T", "int64"]
    assert s.outputs[0].shape.static and not s.outputs[1].shape.static
    assert len(s.kernel_combos) == 4


@pytest.mark.parametrize("body, line, what, fix", [
    ('''
     @opkit.op("scaled_gelu", domain="a.b")
     def f(x: Tensor["float32"]) -> Tensor["float32"]:
         return x
     ''', 5, "op name must be CamelCase", "use 'ScaledGelu'"),
    ('''
     @opkit.op("Name", domain="a.b")
     def name(x: Tensor["float32"]) -> Tensor["float32"]:
         return x
     ''', 5, "op name 'Name' becomes the torch op name 'name'", "rename the op, e.g. 'NameOp'"),
    ('''
     @opkit.op("Op2", domain="my-ops")
     def f(x: Tensor["float32"]) -> Tensor["float32"]:
         return x
     ''', 5, "domain must be a dotted identifier", "separated by dots"),
    ('''
     @opkit.op("Op3", domain="a.b")
     def f(x: Tensor["flaot32"]) -> Tensor["float32"]:
         return x
     ''', 6, "input 'x': unknown dtype 'flaot32'", "did you mean 'float32'?"),
    ('''
     @opkit.op("Op4", domain="a.b")
     def f(x: Tensor["T"]) -> Tensor["T"]:
         return x
     ''', 6, "input 'x': type variable 'T' is not declared", 'types={"T": ("float32", "float64")}'),
    ('''
     @opkit.op("Op5", domain="a.b", types={"T": ("float32", "float128")})
     def f(x: Tensor["T"]) -> Tensor["T"]:
         return x
     ''', 5, "type variable 'T': unknown dtype 'float128'", "did you mean"),
    ('''
     @opkit.op("Op6", domain="a.b")
     def f(x: Tensor["float32"],
           scale: complex = 1j) -> Tensor["float32"]:
         return x
     ''', 7, "parameter 'scale': unsupported annotation", "supported kinds"),
    ('''
     @opkit.op("Op7", domain="a.b")
     def f(x: Tensor["float32"], ctx: float = 1.0) -> Tensor["float32"]:
         return x
     ''', 6, "parameter 'ctx' is reserved for opkit's generated code", "rename it"),
    ('''
     @opkit.op("Op8", domain="a.b")
     def f(x: Tensor["float32"], new: float = 1.0) -> Tensor["float32"]:
         return x
     ''', 6, "parameter 'new' is a C++ or Python keyword", "rename it"),
    ('''
     @opkit.op("Op9", domain="a.b", outputs=("x",))
     def f(x: Tensor["float32"]) -> Tensor["float32"]:
         return x
     ''', 5, "output name 'x' is used twice", "rename the output"),
    ('''
     @opkit.op("Op10", domain="a.b")
     def f(x: Tensor["float32"], alpha: float = "big") -> Tensor["float32"]:
         return x
     ''', 6, "attribute 'alpha': default does not match its type", "change the default"),
    ('''
     @opkit.op("Op11", domain="a.b")
     def f(xs: list[Tensor["float32"]], y: Tensor["float32"]) -> Tensor["float32"]:
         return y
     ''', 6, "tensor input 'y' follows the variadic input 'xs'", "move 'xs' after 'y'"),
    ('''
     @opkit.op("Op13", domain="a.b", types={"T": "float32", "U": "int64"})
     def f(x: Tensor["T"]) -> Tensor["U"]:
         return x
     ''', 5, "type variable 'U' is not used by any tensor input", "fixed dtype"),
    ('''
     @opkit.op("Op14", domain="a.b")
     def f(x: Tensor["float32"]) -> float:
         return 1.0
     ''', 6, "f: unsupported return annotation", "return tensors only"),
    ('''
     @opkit.op("Op15", domain="a.b", shapes={"y": ("x",)})
     def f(x: Tensor["float32"]) -> Tensor["float32"]:
         return x
     ''', 5, "shape of output 'y': 'x' is a tensor", None),
    ('''
     @opkit.op("Op16", domain="ai.onnx")
     def f(x: Tensor["float32"]) -> Tensor["float32"]:
         return x
     ''', 5, "domain 'ai.onnx' belongs to ONNX or ONNX Runtime", "choose another domain"),
    ('''
     @opkit.op("Op17", domain="a.b")
     def f(x: Tensor["float32"], *rest) -> Tensor["float32"]:
         return x
     ''', 6, "parameter *rest / **rest is not supported", "variadic tensor input"),
    ('''
     @opkit.op("Op18", domain="a.b")
     def f(x: Tensor["float32"], alpha) -> Tensor["float32"]:
         return x
     ''', 6, "parameter 'alpha' has no annotation", "annotate it"),
])
def test_invalid_spec_gives_one_clear_message(tmp_path, body, line, what, fix):
    err = error(tmp_path, body)
    assert err.what.startswith(what), err.render()
    assert err.exit_code == 2
    assert str(err.where).startswith(str(tmp_path)) and line_of(err) == line, err.render()
    if fix:
        assert fix in (err.fix or ""), err.render()
    text = err.render()
    assert text.startswith("opkit: error: ") and "Traceback" not in text


def test_two_ops_with_one_name_in_a_domain_are_rejected(tmp_path):
    from opkit.build.specs import check

    a = load(tmp_path, '''
        @opkit.op("Twice", domain="a.dup")
        def twice_a(x: Tensor["float32"]) -> Tensor["float32"]:
            return x * 2
    ''').twice_a.spec
    import dataclasses

    b = dataclasses.replace(a, py_name="twice_b", folder="twice_b",
                            loc=dataclasses.replace(a.loc, file="ops/twice_b/spec.py"))
    with pytest.raises(SpecError) as info:
        check(None, [dataclasses.replace(a, folder="twice_a"), b])
    assert info.value.what == "two ops named Twice in domain a.dup"
    assert "rename one of them" in info.value.fix


def test_the_op_is_a_real_torch_custom_op(tmp_path):
    import torch

    mod = load(tmp_path, '''
        @opkit.op("Affine1", domain="opkit.test", types={"T": ("float32", "float64")}, shapes={"y": "x"})
        def affine1(x: Tensor["T"], a: float = 2.0, b: float = 0.5) -> Tensor["T"]:
            return x * a + b
    ''')
    op = mod.affine1
    x = torch.randn(3, 4)
    torch.testing.assert_close(op(x), x * 2.0 + 0.5)
    torch.testing.assert_close(op(x, b=1.0), x * 2.0 + 1.0)
    # torch.export keeps it as one node
    class M(torch.nn.Module):
        def forward(self, x):
            return op(x, a=3.0)
    ep = torch.export.export(M(), (x,), dynamic_shapes=({0: torch.export.Dim("n")},))
    targets = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
    assert targets == ["opkit_test.affine1.default"]
    # torch.compile works too
    torch.testing.assert_close(torch.compile(M(), backend="eager")(x), x * 3.0 + 0.5)
