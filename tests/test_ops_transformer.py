"""The transformer ops RmsNorm, RotaryEmbedding and LinearAct against their references in ONNX Runtime,
across their dtypes and attributes, and the transformer_block example under `opkit verify`.

Each case is a one-node ONNX model built from the op's spec. All cases run in ONE child process
(native code never runs in the test process) with the repository's library, built once per session
by `repo_build_dir`. Inputs have an unknown rank in the models, so one model serves several shapes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from conftest import REPO, run_models_in_ort, run_opkit

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import opkit  # noqa: E402
from opkit import Tensor  # noqa: E402
from opkit.codegen.render import op_view  # noqa: E402
from opkit.errors import SpecError  # noqa: E402
from opkit.export.translate import onnx_attr_value  # noqa: E402
from opkit.spec.dtypes import DTYPES  # noqa: E402
from ops.linear_act.spec import linear_act  # noqa: E402
from ops.rms_norm.spec import rms_norm  # noqa: E402
from ops.rotary_embedding.spec import rotary_embedding  # noqa: E402

@dataclass
class Case:
    op: Any  # the opkit Op
    attrs: dict
    runs: list[list[Any]]  # input tensors (None: an absent optional input) per run; same dtypes and presence
    label: str
    error: str | None = None  # set by run_cases: the ORT error, if any
    outputs: list[np.ndarray] | None = None


def _model(case: Case, path: Path) -> None:
    spec = case.op.spec
    first = case.runs[0]
    names, vis = [], []
    for inp, t in zip(spec.inputs, first):
        if t is None:
            names.append("")
            continue
        names.append(inp.name)
        dt = str(t.dtype).removeprefix("torch.")
        vis.append(onnx.helper.make_tensor_value_info(inp.name, DTYPES[dt].onnx, None))  # unknown rank
    kinds = {a.name: a.kind for a in spec.attrs}
    node = onnx.helper.make_node(spec.name, names, [spec.outputs[0].name], domain=spec.domain,
                                 **{k: onnx_attr_value(kinds[k], v) for k, v in case.attrs.items()})
    graph = onnx.helper.make_graph([node], "g", vis, [onnx.ValueInfoProto(name=spec.outputs[0].name)])
    model = onnx.helper.make_model(graph, ir_version=9, opset_imports=[
        onnx.helper.make_opsetid("", 17), onnx.helper.make_opsetid(spec.domain, spec.version)])
    onnx.save(model, str(path))


def run_cases(cases: list[Case], library: Path, tmp: Path) -> None:
    jobs: list[dict] = []
    for n, case in enumerate(cases):
        model = tmp / f"case{n}.onnx"
        _model(case, model)
        runs = []
        for r, tensors in enumerate(case.runs):
            feeds = {}
            for inp, t in zip(case.op.spec.inputs, tensors):
                if t is not None:
                    p = tmp / f"case{n}_run{r}_{inp.name}.npy"
                    np.save(p, t.numpy(), allow_pickle=False)
                    feeds[inp.name] = str(p)
            runs.append(feeds)
        jobs.append({"model": str(model), "runs": runs, "out": str(tmp / f"case{n}_out")})
    errors = run_models_in_ort(library, jobs, tmp)
    for n, (case, err) in enumerate(zip(cases, errors)):
        case.error = err
        if err is None:
            case.outputs = [np.load(tmp / f"case{n}_out_{r}_0.npy") for r in range(len(case.runs))]


_TOL = {torch.float16: (1e-2, 1e-3), torch.float32: (1e-4, 1e-5), torch.float64: (1e-7, 1e-9)}


def check(case: Case) -> list[str]:
    """Mismatches between the native outputs and the reference, one line each."""
    if case.error is not None:
        return [f"{case.label}: ORT error: {case.error}"]
    bad = []
    for tensors, got in zip(case.runs, case.outputs):
        want = case.op(*tensors, **case.attrs)
        shape = "x".join(str(d) for d in tensors[0].shape)
        if tuple(got.shape) != tuple(want.shape) or str(got.dtype) != str(want.dtype).removeprefix("torch."):
            bad.append(f"{case.label} [{shape}]: got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}")
            continue
        rtol, atol = _TOL[want.dtype]
        g = got.astype(np.float64)
        w = want.double().numpy()
        if not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
            err = np.abs(g - w)
            bad.append(f"{case.label} [{shape}]: max abs err {np.nanmax(err):.3g} (rtol {rtol}, atol {atol})")
    return bad


_FLOATS = (torch.float16, torch.float32, torch.float64)


def rms_norm_cases(g: torch.Generator) -> list[Case]:
    cases = []
    for dt in _FLOATS:
        runs = []
        for shape in [(4096, 64), (3, 5, 37), (2, 4096), (1, 1), (0, 8)]:  # many rows (parallel), odd widths
            x = (torch.randn(shape, generator=g) * 3).to(dt)
            w = torch.randn(shape[-1], generator=g).to(dt)
            runs.append([x, w])
        if dt == torch.float16:  # subnormal and large float16 values in and out
            x = torch.tensor([[1e-6, -3e-5, 2e-7, 5e-6], [3e4, -6e4, 1.0, 0.0]], dtype=dt)
            runs.append([x, torch.tensor([1e-5, -2e-7, 1.0, 3.0], dtype=dt)])
        cases.append(Case(rms_norm, {"epsilon": 1e-5}, runs, f"RmsNorm {dt}"))
    return cases


def rotary_cases(g: torch.Generator) -> list[Case]:
    cases = []
    for dt in _FLOATS:
        for interleaved in (False, True):
            runs = []
            for xs, ps in [((2, 3, 7, 8), (7,)), ((2, 3, 7, 8), (2, 7)), ((5, 6), (5,)), ((2, 5, 64), (2, 5)),
                           ((4, 8, 128, 32), (4, 128))]:  # the last one: enough rows for the parallel path
                x = torch.randn(xs, generator=g).to(dt)
                pos = torch.randint(0, 4096, ps, generator=g)
                runs.append([x, pos])
            cases.append(Case(rotary_embedding, {"base": 10000.0, "interleaved": interleaved}, runs,
                              f"RotaryEmbedding {dt} interleaved={interleaved}"))
    # a non-default base
    runs = [[torch.randn(3, 9, 16, generator=g), torch.arange(9)]]
    cases.append(Case(rotary_embedding, {"base": 500000.0, "interleaved": False}, runs, "RotaryEmbedding base=5e5"))
    return cases


def linear_act_cases(g: torch.Generator) -> list[Case]:
    # (leading dims, K, N): small M (the dot-product path), large M with edge tiles (the packed GEMM),
    # K over several K slices, N over several column blocks.
    shapes = [((3, 5), 37, 23), ((1,), 1, 1), ((100,), 64, 48), ((2, 101), 300, 290), ((7,), 520, 17)]
    cases = []
    for dt, acts in ((torch.float32, ("relu", "gelu", "silu", "none")), (torch.float64, ("gelu", "silu"))):
        for act in acts:
            for has_bias in (True, False):
                runs = []
                for lead, k, n in shapes:
                    x = torch.randn(*lead, k, generator=g).to(dt)
                    w = (torch.randn(n, k, generator=g) / k ** 0.5).to(dt)
                    b = torch.randn(n, generator=g).to(dt) if has_bias else None
                    runs.append([x, w, b])
                cases.append(Case(linear_act, {"activation": act}, runs,
                                  f"LinearAct {dt} {act} bias={'yes' if has_bias else 'absent'}"))
    return cases


@pytest.mark.e2e
def test_ops_match_their_references(repo_build_dir, tmp_path):
    g = torch.Generator().manual_seed(0)
    cases = rms_norm_cases(g) + rotary_cases(g) + linear_act_cases(g)
    bad_act = Case(linear_act, {"activation": "tanh"}, [[torch.randn(2, 3), torch.randn(4, 3), None]], "bad activation")
    run_cases(cases + [bad_act], repo_build_dir / "release" / "lib" / "libopkit_ops.so", tmp_path)
    bad = [line for case in cases for line in check(case)]
    assert not bad, "\n".join(bad)
    # An activation outside the Literal[...] fails when the session is created, naming op and attribute.
    assert bad_act.error is not None and bad_act.outputs is None
    assert "opkit.examples::LinearAct" in bad_act.error
    assert "attribute 'activation'" in bad_act.error and '"tanh"' in bad_act.error
    assert '"relu", "gelu", "silu", "none"' in bad_act.error


def _has_avx512() -> bool:
    try:
        return " avx512f " in Path("/proc/cpuinfo").read_text().replace("\n", " ")
    except OSError:
        return False


@pytest.mark.e2e
@pytest.mark.skipif(not _has_avx512(), reason="LinearAct's packed path (one row and batches alike) needs AVX-512")
def test_linear_act_gives_rows_the_same_bits_alone_as_in_a_batch(repo_build_dir, tmp_path):
    """With AVX-512, 1-6 rows (tokens at decode time) run their own loop over the packed weight, summing each
    column in the batched tiles' order: their outputs are bit for bit their rows of a batched call. Batches of
    13 rows (tiles of 12 and 1, threads splitting the panels), of 40 and 400 rows through 100 and 800
    outputs (threads splitting the rows) and of 200 rows through 1400 (y over 1 MB: running sums in a padded
    buffer between blocks of k), over several blocks of k, odd numbers of panels and a narrower last one, in
    float32 and float64."""
    g = torch.Generator().manual_seed(3)
    slices = ((0, 1), (5, 6), (12, 13), (3, 5), (10, 13), (3, 7), (7, 13))
    cases = []
    for dt in (torch.float32, torch.float64):
        for m, k, n in ((13, 700, 300), (40, 300, 100), (200, 300, 1400), (400, 300, 800)):
            x = torch.randn(m, k, generator=g).to(dt)
            w = (torch.randn(n, k, generator=g) / k ** 0.5).to(dt)
            b = torch.randn(n, generator=g).to(dt)
            cases.append(Case(linear_act, {"activation": "gelu"}, [[x, w, b]] + [[x[i:j], w, b] for i, j in slices],
                              f"LinearAct {dt} {m}x{k} N={n}"))
    run_cases(cases, repo_build_dir / "release" / "lib" / "libopkit_ops.so", tmp_path)
    for case in cases:
        assert not check(case), check(case)
        batch, *alone = case.outputs
        for (i, j), y in zip(slices, alone):
            np.testing.assert_array_equal(y, batch[i:j], err_msg=f"{case.label}: rows {i}:{j}")


@pytest.mark.e2e
def test_transformer_block_example_verifies(repo_build_dir):
    p = run_opkit("verify", "examples/transformer_block.py", cwd=REPO, env={"OPKIT_BUILD_DIR": str(repo_build_dir)})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "PASS" in p.stdout
    for op in ("LinearAct", "RmsNorm", "RotaryEmbedding"):
        assert f"opkit.examples::{op}" in p.stdout
    assert "other sizes: batch=" in p.stdout  # dynamic batch and sequence were exercised


# ---- the references' semantics, against independent formulations (eager only) ----------------

def _rope_independent(x: torch.Tensor, pos: torch.Tensor, base: float, interleaved: bool) -> torch.Tensor:
    """Hugging Face's rotate_half (GPT-NeoX) / GPT-J's rotate_every_two, in float64."""
    d = x.shape[-1]
    inv = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    ang = pos.double()[..., None] * inv
    if pos.dim() == 2:
        ang = ang[:, None]
    xd = x.double()
    if interleaved:
        cos, sin = ang.cos().repeat_interleave(2, -1), ang.sin().repeat_interleave(2, -1)
        rot = torch.stack((-xd[..., 1::2], xd[..., 0::2]), -1).flatten(-2)
    else:
        cos, sin = torch.cat((ang.cos(), ang.cos()), -1), torch.cat((ang.sin(), ang.sin()), -1)
        rot = torch.cat((-xd[..., d // 2:], xd[..., :d // 2]), -1)
    return xd * cos + rot * sin


@pytest.mark.parametrize("interleaved", [False, True])
def test_rotary_reference_is_the_documented_layout(interleaved):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 11, 16, generator=g, dtype=torch.float64)
    for pos in (torch.arange(11) * 7, torch.randint(0, 100, (2, 11), generator=g)):
        got = rotary_embedding(x, pos, base=10000.0, interleaved=interleaved)
        torch.testing.assert_close(got, _rope_independent(x, pos, 10000.0, interleaved), rtol=1e-12, atol=1e-12)
    # float32 computes angles in float32 (like Hugging Face models): close to the float64 truth
    x32 = x.float()
    got32 = rotary_embedding(x32, torch.arange(11), interleaved=interleaved)
    torch.testing.assert_close(got32.double(), _rope_independent(x32, torch.arange(11), 10000.0, interleaved),
                               rtol=1e-5, atol=1e-5)


def test_rms_norm_and_linear_act_references():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, 32, generator=g, dtype=torch.float64)
    w = torch.randn(32, generator=g, dtype=torch.float64)
    want = x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6) * w
    torch.testing.assert_close(rms_norm(x, w), want, rtol=1e-9, atol=1e-9)
    if hasattr(torch.nn.functional, "rms_norm"):
        torch.testing.assert_close(rms_norm(x, w), torch.nn.functional.rms_norm(x, (32,), w, 1e-6),
                                   rtol=1e-9, atol=1e-9)
    wt = torch.randn(8, 32, generator=g, dtype=torch.float64)
    b = torch.randn(8, generator=g, dtype=torch.float64)
    lin = x @ wt.T + b
    torch.testing.assert_close(linear_act(x, wt, b, activation="silu"), lin * torch.sigmoid(lin))
    torch.testing.assert_close(linear_act(x, wt, activation="relu"), (x @ wt.T).clamp_min(0))
    with pytest.raises(ValueError, match="activation"):
        linear_act(x, wt, b, activation="tanh")


# ---- Literal[...] attributes in the spec language (no compiler) ------------------------------

def test_literal_attribute_spec_and_glue():
    spec = linear_act.spec
    act = spec.attr("activation")
    assert act.kind == "str" and act.choices == ("relu", "gelu", "silu", "none") and act.default == "gelu"
    assert "activation: Literal['relu', 'gelu', 'silu', 'none'] = 'gelu'" in spec.signature
    check = next(a["check"] for a in op_view(spec)["attrs"] if a["name"] == "activation")
    assert 'attrs.activation == "silu"' in check and "reader.fail(" in check

    with pytest.raises(SpecError, match="not one of its Literal values"):
        @opkit.op("LitBad", domain="h2.tests", types={"T": "float32"}, shapes={"y": "x"})
        def lit_bad(x: Tensor["T"], mode: Literal["a", "b"] = "c") -> Tensor["T"]:
            return x

    with pytest.raises(SpecError, match="all str or all int"):
        @opkit.op("LitMixed", domain="h2.tests", types={"T": "float32"}, shapes={"y": "x"})
        def lit_mixed(x: Tensor["T"], mode: Literal["a", 1] = "a") -> Tensor["T"]:
            return x
