"""opkit adopt: untranslatable ops of a model become opkit ops that the unmodified model exports to.

Fast tier: the schema -> spec mapping on real torch schemas with the calls a model would make (aten ops,
several argument kinds, what cannot be expressed), the rendered spec parsed back, `adopts=` in specs and at
export. End-to-end (`e2e`): the CLI on the models in tests/fixtures/adopt (a third-party library defined with
torch.library, several overloads of one op, optional and list arguments, a name collision, inexpressible
schemas, data-dependent control flow), `verify --backend python` on the unmodified model, and the example's
native verify.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

from conftest import REPO, run_opkit
from opkit import Tensor
from opkit.adopt.discover import Call, Untranslatable, Value
from opkit.adopt.plan import Inexpressible, plan
from opkit.errors import ExportError, SpecError

FIXTURES = REPO / "tests" / "fixtures" / "adopt"
aten = torch.ops.aten


def t(dtype: str, *dims) -> Value:
    return Value("tensor", dtype=dtype, dims=tuple(dims))


def s(v) -> Value:
    return Value("scalar", value=v)


ABSENT = Value("absent")


def found(target, *calls: tuple[tuple, tuple]) -> Untranslatable:
    return Untranslatable(target, [Call(tuple(a), tuple(o), "block", "Block", "model.py:3") for a, o in calls])


# -- the schema -> spec mapping ------------------------------------------------------------------------
def test_aten_cummax_becomes_an_input_an_attribute_and_two_outputs_shaped_like_the_input():
    p = plan(found(aten.cummax.default,
                   ((t("float32", "s0", 7), s(1)), (t("float32", "s0", 7), t("int64", "s0", 7))),
                   ((t("float64", 3, 5), s(0)), (t("float64", 3, 5), t("int64", 3, 5)))))
    assert [prm.text for prm in p.params] == ['x: Tensor["T"]', "dim: int"]  # `self` is `x`
    assert p.typevars == {"T": ("float32", "float64")}  # the dtypes the model passed
    assert p.outputs == [("values", "T"), ("indices", "int64")]
    assert p.shapes == {"values": "x", "indices": "x"}
    assert p.call == "torch.ops.aten.cummax.default(x, dim)"


def test_optional_and_list_arguments():
    # native_layer_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight, Tensor? bias, float eps)
    #   -> (Tensor, Tensor, Tensor); weight given, bias never given
    x = t("float32", "s0", 8)
    stats = t("float32", "s0", 1)
    p = plan(found(aten.native_layer_norm.default,
                   ((x, s([8]), t("float32", 8), s(None), s(1e-5)), (x, stats, stats))))
    assert [prm.text for prm in p.params] == [
        'input: Tensor["T"]', "normalized_shape: list[int]", 'weight: Tensor["T"] | None',
        'bias: Tensor["T"] | None', "eps: float"]  # no "= None" before required attributes
    assert p.outputs == [("y0", "T"), ("y1", "T"), ("y2", "T")]
    assert p.shapes["y0"] == "input" and p.shapes["y1"] == ("input[0]", 1)
    # a list of tensors: cat(Tensor[] tensors, int dim=0), the default left out by the model
    p = plan(found(aten.cat.default, ((Value("tensors", items=(t("int64", 2), t("int64", 3))), ABSENT),
                                      (t("int64", 5),))))
    assert [prm.text for prm in p.params] == ['tensors: list[Tensor["T"]]', "dim: int = 0"]
    assert p.typevars == {"T": ("int64",)} and "y" not in p.shapes  # the size is a sum: the kernel allocates


def test_scalar_arguments_take_the_kind_the_model_passes_and_unused_defaults_are_left_out():
    # add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1): alpha passed as an int, so an int attribute
    p = plan(found(aten.add.Tensor, ((t("int32", 4), t("int32", 4), s(2)), (t("int32", 4),))))
    assert [prm.text for prm in p.params][-1] == "alpha: int = 1"
    assert p.call == "torch.ops.aten.add.Tensor(x, other, alpha=alpha)"  # keyword-only stays keyword
    # cumsum(Tensor self, int dim, *, ScalarType? dtype=None): dtype never passed: not part of the spec
    p = plan(found(aten.cumsum.default, ((t("float32", 4), s(0), ABSENT), (t("float32", 4),))))
    assert [prm.name for prm in p.params] == ["x", "dim"] and p.pinned == ["dtype"]
    assert p.call == "torch.ops.aten.cumsum.default(x, dim)"


@pytest.mark.parametrize("target, call, reason", [
    (aten.add_.Tensor, ((t("float32", 4), t("float32", 4), ABSENT), (t("float32", 4),)), "in place"),
    (aten.view.default, ((t("float32", 4), s([2, 2])), (t("float32", 2, 2),)), "view of an input"),
    (aten.split.Tensor, ((t("float32", 4), s(2), ABSENT), (t("float32", 2), t("float32", 2))), "view of an input"),
    (aten.cumsum.default, ((t("float32", 4), s(0), s(torch.float64)), (t("float64", 4),)),
     "'dtype' is a ScalarType?, which no ONNX attribute holds"),
    (aten.index.Tensor, ((t("float32", 4), Value("tensors", items=(t("int64", 2),))), (t("float32", 2),)),
     "Tensor?[]"),
    (aten.cummax.default, ((t("float32", 4), Value("symbolic", text="s0 - 1")), (t("float32", 4), t("int64", 4))),
     "computed from dynamic sizes"),
    (aten.cummax.default, ((t("complex64", 4), s(0)), (t("complex64", 4), t("int64", 4))), "complex64"),
])
def test_what_cannot_be_expressed_says_why_and_what_to_do(target, call, reason):
    with pytest.raises(Inexpressible) as info:
        plan(found(target, call))
    assert reason in info.value.reason and info.value.instead


def test_an_optional_scalar_the_model_sometimes_leaves_out_cannot_be_an_attribute():
    # sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None)
    out = (t("float32", 1),)
    with pytest.raises(Inexpressible, match="None in some of the model's calls"):
        plan(found(aten.sum.dim_IntList, ((t("float32", 4, 3), s([1]), ABSENT, ABSENT), out),
                   ((t("float32", 4, 3), s(None), ABSENT, ABSENT), out)))
    p = plan(found(aten.sum.dim_IntList, ((t("float32", "s0", 3), s([1]), s(True), ABSENT), (t("float32", "s0", 1),))))
    assert [prm.text for prm in p.params] == ['x: Tensor["T"]', "dim: list[int]", "keepdim: bool = False"]
    assert p.shapes == {"y": ("x[0]", 1)}


@pytest.fixture
def own_registry(monkeypatch):
    """Ops defined by a test stay out of the process-wide registry (an adopted aten op would be mapped in every
    later export of this process)."""
    from opkit.spec import decorator

    monkeypatch.setattr(decorator, "_registry", dict(decorator._registry))


def test_rendered_spec_parses_to_the_spec_the_kernel_skeleton_was_made_for(tmp_path, own_registry):
    from opkit.adopt.scaffold import op_spec, spec_view
    from opkit.codegen.render import render_adopted_spec_file, render_kernel_file

    p = plan(found(aten.native_layer_norm.default,
                   ((t("float32", "s0", 8), s([8]), t("float32", 8), s(None), s(1e-5)),
                    (t("float32", "s0", 8), t("float32", "s0", 1), t("float32", "s0", 1)))))
    p.name = "NativeLayerNorm"
    spec = op_spec(p, domain="com.adopt.render", version=1)
    text = render_adopted_spec_file(spec_view(p, spec, model_path=tmp_path / "model.py", ws_root=tmp_path,
                                              torch_version="2.13.0"))
    assert 'adopts="aten::native_layer_norm"' in text and "aten::native_layer_norm(Tensor input" in text
    path = tmp_path / "spec.py"
    path.write_text(text)
    mspec = importlib.util.spec_from_file_location("opkit_test_adopt_rendered", path)
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    parsed = mod.native_layer_norm.spec
    assert parsed.adopts == "aten::native_layer_norm"
    assert parsed.signature == spec.signature
    def unplaced(items):
        return [dataclasses.replace(i, loc=None) for i in items]

    assert unplaced(parsed.inputs) == unplaced(spec.inputs) and unplaced(parsed.attrs) == unplaced(spec.attrs)
    assert (parsed.outputs, parsed.typevars) == (spec.outputs, spec.typevars)
    assert "void NativeLayerNorm::compute(" in render_kernel_file(spec)
    # the reference is the original op
    x, w = torch.randn(2, 8), torch.randn(8)
    got = mod.native_layer_norm(x, [8], w, None, 1e-5)
    want = aten.native_layer_norm.default(x, [8], w, None, 1e-5)
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_names_of_ops_that_collide_are_made_distinct():
    from opkit.adopt.driver import _name
    from opkit.adopt.plan import Plan

    taken = {"cummax": "ops/cummax"}
    a = Plan(Untranslatable(aten.cummax.default))
    b = Plan(Untranslatable(aten.add.Tensor))
    assert "taken by ops/cummax" in _name(a, taken) and a.name == "AtenCummax"
    assert _name(b, taken) == "" and b.name == "AddTensor"


# -- adopts= in a spec, and at export ----------------------------------------------------------------------
def _spec(adopts, name="Cm", params="x: Tensor['T'], dim: int"):
    import opkit
    from opkit import Tensor  # noqa: F401

    scope = {"opkit": opkit, "Tensor": Tensor, "torch": torch}
    exec(f"def cm({params}) -> tuple[Tensor['T'], Tensor['int64']]:\n"
         f"    return torch.ops.aten.cummax.default(x, dim)\n", scope)
    from opkit.spec.parse import parse_op

    return parse_op(scope["cm"], name=name, domain="com.adopt.spec", types={"T": ("float32",)},
                    outputs=("v", "i"), adopts=adopts)


def test_adopts_is_parsed_into_the_spec_and_checked():
    assert _spec("aten::cummax").adopts == "aten::cummax"
    assert _spec("aten::cummax.default").adopts == "aten::cummax"  # the default overload
    assert _spec("mylib::scale.twice").adopts == "mylib::scale.twice"
    with pytest.raises(SpecError, match="must name a torch operator"):
        _spec("torch.cummax")
    with pytest.raises(SpecError, match="its own torch namespace"):
        _spec("com_adopt_spec::other")


def test_two_ops_adopting_one_op_is_an_error(tmp_path):
    from opkit.build.specs import check
    from opkit.build.workspace import Workspace

    a = dataclasses.replace(_spec("aten::cummax"), folder="a")
    b = dataclasses.replace(_spec("aten::cummax", name="Cm2"), folder="b")
    with pytest.raises(SpecError, match="two ops adopt aten::cummax"):
        check(Workspace(tmp_path), [a, b])


def test_export_maps_the_original_op_to_the_adopted_node_and_checks_the_parameters():
    from opkit.export.translate import adoption_binding, adoption_translation

    spec = _spec("aten::cummax")
    assert adoption_binding(spec, aten.cummax.default) == ["x", "dim"]
    assert adoption_translation(spec, aten.cummax.default).__name__ == "cm_adopted_to_onnx"
    with pytest.raises(ExportError, match="stand for no argument"):
        adoption_binding(_spec("aten::cummax", params="x: Tensor['T'], axis: int"), aten.cummax.default)
    with pytest.raises(ExportError, match="no parameter for dim"):
        adoption_binding(_spec("aten::cummax", params="x: Tensor['T']"), aten.cummax.default)


def test_the_torchscript_exporter_maps_by_op_name_so_two_adopted_overloads_are_refused():
    from types import SimpleNamespace

    from opkit.errors import AdoptionError
    from opkit.export.legacy import _adopted_names

    tensor = SimpleNamespace(spec=_spec("aten::add.Tensor", name="AddT",
                                        params="x: Tensor['T'], other: Tensor['T'], alpha: float = 1.0"))
    scalar = SimpleNamespace(spec=_spec("aten::add.Scalar", name="AddS",
                                        params="x: Tensor['T'], other: float, alpha: float = 1.0"))
    [(spec, name, bound)] = _adopted_names([tensor])
    assert name == "aten::add" and bound == ["x", "other", "alpha"]
    with pytest.raises(AdoptionError, match="adopt two overloads of aten::add"):
        _adopted_names([tensor, scalar])


@pytest.fixture(scope="module")
def third_party_op():
    """A third-party op defined from Python (as tests/fixtures/adopt's libraries are): libtorch lacks it."""
    lib = torch.library.Library("opkit_alias_test", "DEF")
    lib.define('mix(Tensor self, float w, Tensor other, str how="lerp") -> Tensor')
    lib.impl("mix", lambda x, w, other, how="lerp": x + w * (other - x), "CompositeExplicitAutograd")
    yield torch.ops.opkit_alias_test.mix.default
    lib._destroy()


def _mix_spec(params: str):
    import opkit

    scope = {"opkit": opkit, "Tensor": Tensor, "torch": torch}
    exec(f"def mix({params}) -> Tensor['T']:\n    return torch.ops.opkit_alias_test.mix.default(x, w, other)\n", scope)
    from opkit.spec.parse import parse_op

    return parse_op(scope["mix"], name="Mix", domain="com.adopt.spec", types={"T": ("float32",)},
                    adopts="opkit_alias_test::mix")


def test_the_cpp_runners_get_a_third_party_op_run_by_the_adopted_kernel(third_party_op):
    """TorchScript and AOTInductor programs call the original op by its name; the runners' schemas library
    defines it (its own schema) and hands its arguments, in the adopted op's order, to the adopted op."""
    from opkit.build.torchlib import adopted_aliases
    from opkit.codegen.torch import render_torch_library

    spec = _mix_spec("other: Tensor['T'], x: Tensor['T'], w: float, how: str = 'lerp'")  # another order
    [alias] = adopted_aliases([spec, _spec("aten::cummax")])  # aten ops are libtorch's own: no alias
    assert (alias.namespace, alias.name, alias.original, alias.target) == (
        "opkit_alias_test", "mix", "opkit_alias_test::mix", "com_adopt_spec::mix")
    assert alias.order == (2, 0, 1, 3)  # other, x (self), w, how
    text = render_torch_library([spec], "2.13.0", [alias])["torch/schemas.cc"]
    assert 'm.def("mix(Tensor self, float w, Tensor other, str how=\\"lerp\\") -> Tensor");' in text
    assert 'findSchemaOrThrow("com_adopt_spec::mix", "")' in text and "opkit_forward(target, stack, {2, 0, 1, 3});" in text
    assert 'm.impl("mix", torch::CppFunction::makeFromBoxedFunction<&opkit_alias_0>());' in text
    # the plain op library and a spec that leaves an argument at its default get none
    assert "opkit_alias" not in render_torch_library([spec], "2.13.0")["torch/schemas.cc"]
    assert adopted_aliases([_mix_spec("x: Tensor['T'], w: float, other: Tensor['T']")]) == []


def test_executorch_programs_call_the_adopted_op_in_place_of_the_original(third_party_op, own_registry):
    """ExecuTorch has no kernel for an op defined from Python: the exported program's calls of the original op
    become calls of the adopted op (arguments in the spec's order), whose kernel ExecuTorch runs."""
    import opkit
    from opkit.errors import AdoptionError
    from opkit.runtimes.executorch.pte import adopt_calls

    @opkit.op("MixEt", domain="com.adopt.et", types={"T": ("float32",)}, shapes={"y": "x"},
              adopts="opkit_alias_test::mix")
    def mix_et(other: Tensor["T"], x: Tensor["T"], w: float, how: str = "lerp") -> Tensor["T"]:
        return torch.ops.opkit_alias_test.mix.default(x, w, other, how)

    class M(torch.nn.Module):
        def forward(self, a, b):
            return torch.ops.opkit_alias_test.mix(a * 2, 0.25, b) + 1

    a, b = torch.randn(3, 4), torch.randn(3, 4)
    exported = torch.export.export(M(), (a, b))
    assert adopt_calls(exported, [mix_et]) == 1
    [call] = [n for n in exported.graph_module.graph.nodes if n.op == "call_function"
              and "mix" in str(n.target)]
    assert call.target is mix_et.torch_op._opoverload
    assert [getattr(v, "name", v) for v in call.args] == ["b", "mul", 0.25, "lerp"]
    torch.testing.assert_close(exported.module()(a, b), M()(a, b))

    @opkit.op("MixEt2", domain="com.adopt.et2", types={"T": ("float32",)}, shapes={"y": "x"},
              adopts="opkit_alias_test::mix")
    def mix_et2(x: Tensor["T"], w: float, other: Tensor["T"]) -> Tensor["T"]:  # `how` left at its default
        return torch.ops.opkit_alias_test.mix.default(x, w, other)

    class N(torch.nn.Module):
        def forward(self, a, b):
            return torch.ops.opkit_alias_test.mix(a, 0.5, b, "other")

    with pytest.raises(AdoptionError, match="with how='other'"):
        adopt_calls(torch.export.export(N(), (a, b)), [mix_et2])


def test_a_call_the_spec_cannot_express_is_an_adoption_error_at_export(tmp_path, own_registry):
    import opkit
    from opkit.errors import AdoptionError
    from opkit.export.legacy import export_model
    from opkit.spec.decorator import registered_ops

    @opkit.op("AdoptedCumsum", domain="com.adopt.export", adopts="aten::cumsum", types={"T": ("float32",)},
              shapes={"y": "x"})
    def adopted_cumsum(x: Tensor["T"], dim: int) -> Tensor["T"]:
        return torch.ops.aten.cumsum.default(x, dim)

    class M(torch.nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 0), torch.cumsum(x, 1, dtype=torch.float64)

    with pytest.raises(AdoptionError) as info:
        export_model(M(), (torch.randn(3, 4),), tmp_path / "m.onnx", registered_ops())
    assert "calls aten::cumsum with dtype=" in info.value.what and "leaves 'dtype' at its default" in info.value.what

    class Plain(torch.nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 1)

    exported = export_model(Plain(), (torch.randn(3, 4),), tmp_path / "p.onnx", registered_ops())
    nodes = [(n.domain, n.op_type, [a.name for a in n.attribute]) for n in exported.model.graph.node]
    assert nodes == [("com.adopt.export", "AdoptedCumsum", ["dim"])]


# -- the CLI -----------------------------------------------------------------------------------------------
def test_usage_errors_exit_2_without_importing_torch(tmp_path):
    p = run_opkit("adopt", "nope.py", cwd=tmp_path)
    assert p.returncode == 2 and "no such model file: nope.py" in p.stderr
    (tmp_path / "m.py").write_text("x = 1\n")
    p = run_opkit("adopt", "m.py", "--domain", "ai.onnx", cwd=tmp_path)
    assert p.returncode == 2 and "--domain 'ai.onnx'" in p.stderr
    assert not (tmp_path / "ops").exists()


@pytest.fixture
def ws(tmp_path) -> Path:
    for f in FIXTURES.glob("*.py"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def adopt_here(ws: Path, *args: str, capsys, monkeypatch) -> tuple[int, str, str]:
    """`opkit adopt` in this process (no second torch import): exit code, stdout, stderr."""
    from opkit.cli import main

    monkeypatch.chdir(ws)
    capsys.readouterr()
    code = main(["adopt", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.e2e
@pytest.mark.slow
def test_adopt_lists_every_op_in_one_run_and_the_unmodified_model_runs_with_the_python_backend(
        ws, tmp_path, capsys, monkeypatch):
    model_before = (ws / "model_ok.py").read_text()
    code, out, err = adopt_here(ws, "model_ok.py", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, out + err
    assert "6 op(s) of model_ok.py have no ONNX translation" in out
    assert "aten::cummax: 2 calls, first in the model (Model) at model_ok.py:32" in out
    assert "adoptlib::scale: 1 call, first in block (Block) at model_ok.py:21" in out
    assert "adoptlib::scale.twice: 1 call" in out and "adoptlib::mix: 2 calls" in out
    assert "adoptlib::mix(Tensor x, Tensor? bias, Tensor[] extras, int[] dims=[0], float alpha=1.) -> Tensor" in out
    assert "adopted adoptlib::cummax as com.example::AdoptlibCummax (not Cummax: ops/cummax is taken by " \
           "aten::cummax)" in out
    assert "started a workspace: created CMakeLists.txt" in out
    for folder in ("cummax", "scale", "scale_twice", "mix", "adoptlib_cummax", "halve"):
        assert (ws / "ops" / folder / "spec.py").is_file() and (ws / "ops" / folder / f"{folder}.cc").is_file()
    mix = (ws / "ops/mix/spec.py").read_text()
    assert 'def mix(\n    x: Tensor["T"],\n    bias: Tensor["T"] | None,\n    extras: list[Tensor["T"]],\n' \
           '    dims: list[int] = [0],\n    alpha: float = 1.0,\n) -> Tensor["T"]:' in mix
    assert "import adoptlib  # noqa: F401  (defines torch.ops.adoptlib.mix)" in mix
    assert 'adopts="adoptlib::scale.twice"' in (ws / "ops/scale_twice/spec.py").read_text()
    # an op the model file defines itself: no module to import; the Python backend's child loads the model file
    assert "# torch.ops.adopt_inline.halve is defined in model_ok.py" in (ws / "ops/halve/spec.py").read_text()

    env = {"OPKIT_BUILD_DIR": str(tmp_path / "build")}
    v = run_opkit("verify", "model_ok.py", "--backend", "python", cwd=ws, env=env)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "PASS" in v.stdout and "other sizes: batch=" in v.stdout
    for q in ("Cummax", "Scale", "ScaleTwice", "Mix", "AdoptlibCummax", "Halve"):
        assert f"com.example::{q}" in v.stdout
    assert (ws / "model_ok.py").read_text() == model_before

    before = _files(ws / "ops")
    again = run_opkit("adopt", "model_ok.py", cwd=ws)
    assert again.returncode == 0, again.stderr
    assert "skipped aten::cummax: already adopted by ops/cummax/spec.py (com.example::Cummax); not written again" \
           in again.stdout
    assert again.stdout.count("skipped ") == 6
    assert _files(ws / "ops") == before


@pytest.mark.e2e
def test_an_op_inside_a_torch_cond_branch_is_found_and_runs_with_the_python_backend(ws, tmp_path, capsys,
                                                                                    monkeypatch):
    code, out, err = adopt_here(ws, "model_cond.py", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, out + err
    assert "aten::cummax: 1 call, first in true_graph_0 (a branch subgraph) at model_cond.py:8" in out
    v = run_opkit("verify", "model_cond.py", "--backend", "python", cwd=ws,
                  env={"OPKIT_BUILD_DIR": str(tmp_path / "build")})
    assert v.returncode == 0, v.stdout + v.stderr
    assert "com.example::Cummax" in v.stdout and "PASS" in v.stdout


@pytest.mark.e2e
def test_inexpressible_ops_are_listed_with_the_reason_and_exit_1(ws, capsys, monkeypatch):
    code, out, err = adopt_here(ws, "model_bad.py", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1, out + err
    assert "NOT adopted adoptlib::chunks: it returns Tensor[], not a fixed number of tensors" in out
    assert "NOT adopted adoptlib::cast_to: argument 'dtype' is a ScalarType" in out
    assert out.count("  instead: ") == 2
    assert "adopted aten::cummax as com.example::Cummax" in out  # the others are still adopted
    assert sorted(d.name for d in (ws / "ops").iterdir()) == ["cummax"]


@pytest.mark.e2e
def test_op_selection_list_only_nothing_to_adopt_and_bad_model_files(ws, capsys, monkeypatch):
    code, out, _ = adopt_here(ws, "model_ok.py", "--list", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "would adopt aten::cummax as com.example::Cummax" in out
    assert not (ws / "ops").exists()
    code, _, err = adopt_here(ws, "model_ok.py", "--op", "nosuch", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and "--op nosuch" in err and "aten::cummax" in err
    code, out, err = adopt_here(ws, "model_ok.py", "--op", "adoptlib::scale.twice", "--domain", "com.mine",
                                capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert "adopted adoptlib::scale.twice as com.mine::ScaleTwice" in out
    assert sorted(d.name for d in (ws / "ops").iterdir()) == ["scale_twice"]
    code, out, _ = adopt_here(ws, "model_plain.py", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0
    assert "every op of model_plain.py has an ONNX translation (torch 2.13.0): nothing to adopt" in out
    (ws / "nomodel.py").write_text("import torch\nexample_inputs = (torch.randn(2),)\n")
    code, _, err = adopt_here(ws, "nomodel.py", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and "defines no `model`" in err


@pytest.mark.e2e
def test_data_dependent_control_flow_is_said_not_a_traceback(ws, capsys, monkeypatch):
    code, _, err = adopt_here(ws, "model_branch.py", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert "branches on tensor values (data-dependent control flow)" in err
    assert "at:       model_branch.py:8" in err and "torch.cond" in err
    assert "Traceback" not in err and not (ws / "ops").exists()


@pytest.mark.e2e
@pytest.mark.slow
def test_the_example_verifies_natively_and_its_specs_are_what_adopt_writes(tmp_path, capsys, monkeypatch):
    example = REPO / "examples" / "adopt"
    env = {"OPKIT_BUILD_DIR": str(tmp_path / "build")}
    # the library in ORT (Python API), and libtorch without Python: the traced model calls fancylib::soft_clamp,
    # which the runner gets from the schemas library, run by SoftClamp's kernel (without it: "Unknown builtin
    # op: fancylib::soft_clamp")
    p = run_opkit("verify", "model.py", "--runtime", "onnxruntime", "--runtime", "torchscript", cwd=example, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "PASS" in p.stdout and "[onnxruntime + op library]" in p.stdout and "[TorchScript runner]" in p.stdout
    # the TorchScript exporter maps the original ops too
    out = tmp_path / "legacy.onnx"
    p = run_opkit("export", "model.py", "--exporter", "legacy", "-o", str(out), cwd=example, env=env)
    assert p.returncode == 0, p.stderr
    import onnx

    nodes = {(n.domain, n.op_type) for n in onnx.load(str(out)).graph.node}
    assert {("com.example", "Cummax"), ("com.example", "SoftClamp")} <= nodes
    # adopting again in a copy writes the example's specs (the example adds only a test constraint by hand)
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in ("model.py", "fancylib.py"):
        shutil.copy(example / f, copy / f)
    code, _, err = adopt_here(copy, "model.py", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    for folder in ("cummax", "soft_clamp"):
        written = (copy / "ops" / folder / "spec.py").read_text()
        shipped = (example / "ops" / folder / "spec.py").read_text()
        assert shipped.startswith(written), folder

