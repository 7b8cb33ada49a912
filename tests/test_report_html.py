"""The HTML reports: the error distribution and worst elements (compare), the graph picture (layout and
collapsing), the page (self-contained, escaped, one section per runtime), and the page in a real headless
Chromium: no console error, the custom nodes drawn, a screenshot that is not blank.
The reports of real `opkit verify` / `opkit test` runs are checked in test_workflow.py and test_testing.py."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from browser import colour_stats, find_chromium, open_page

CUSTOM_NODES_JS = """JSON.stringify([...document.querySelectorAll("svg.graph g.node.custom")].map(g => {
  const b = g.getBoundingClientRect();
  return {op: g.dataset.op, text: g.textContent, w: b.width, h: b.height};
}))"""

needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="no chromium on PATH (apt-get install chromium; .ci/run installs it)")


def check_in_browser(html: Path, ops: list[str]) -> list[dict]:
    """Open the page in headless Chromium; assert no console error and a screenshot that is not blank;
    return the drawn custom nodes (qualname, text, size on screen)."""
    import json

    page = open_page(html, CUSTOM_NODES_JS)
    assert page.errors == [], page.errors
    drawn = json.loads(page.value)
    assert sorted({d["op"] for d in drawn}) == sorted(ops)
    assert all(d["w"] > 20 and d["h"] > 20 for d in drawn), drawn
    colours, not_background = colour_stats(page.screenshot)
    assert colours >= 8 and not_background > 0.02, (colours, not_background)
    return drawn


def check_in_browser_no_graph(html: Path, selector: str) -> int:
    page = open_page(html, f"document.querySelectorAll({selector!r}).length")
    assert page.errors == [], page.errors
    colours, not_background = colour_stats(page.screenshot)
    assert colours >= 8 and not_background > 0.02, (colours, not_background)
    return int(page.value)


# ---- compare: histogram and worst elements ---------------------------------------------------------

def test_histogram_and_worst_elements_show_where_the_error_is() -> None:
    from opkit.verify.compare import compare

    want = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    got = want.copy()
    got[1, 2, 3] += 0.5  # far out
    got[0, 1, 0] += np.float32(3e-5)  # inside the tolerance (atol 1e-5 + rtol 1e-4 * 0.65 = 7.5e-5), not exact
    got[0, 0, 1] = np.nan  # NaN where a number is expected
    c = compare("y", got, want)
    assert not c.ok
    assert sum(b.count for b in c.histogram) == want.size
    counts = {(b.lo, b.hi): b.count for b in c.histogram}
    assert counts[(0.0, 0.0)] == 21 and counts[(0.1, 0.5)] + counts[(0.5, 1.0)] == 1 and counts[(100.0, None)] == 2
    assert [e.index for e in c.worst] == [[0, 0, 1], [1, 2, 3], [0, 1, 0]]
    assert np.isnan(c.worst[0].got) and c.worst[0].ratio == np.inf
    assert c.worst[1].got == pytest.approx(want[1, 2, 3] + 0.5) and c.worst[1].abs_err == pytest.approx(0.5)
    assert 0.1 < c.worst[2].ratio <= 1.0

    exact = compare("i", np.arange(6), np.array([0, 1, 2, 3, 4, 6]))  # integers: any difference is beyond tolerance
    assert [e.index for e in exact.worst] == [[5]] and exact.histogram[0].count == 5
    assert exact.histogram[-1].count == 1
    assert compare("s", np.zeros(3), np.zeros(4)).histogram == []  # shape mismatch: nothing element-wise


# ---- the graph picture ------------------------------------------------------------------------------

def _model(n_before: int, n_after: int):
    from onnx import TensorProto as T
    from onnx import helper as h

    nodes, prev = [], "x"
    for i in range(n_before):
        nodes.append(h.make_node("Add", [prev, "w"], [f"a{i}"], name=f"add{i}"))
        prev = f"a{i}"
    nodes.append(h.make_node("ScaledGelu", [prev], ["g"], domain="com.example", name="sg", alpha=0.5,
                             approximate="tanh"))
    prev = "g"
    for i in range(n_after):
        nodes.append(h.make_node("Relu", [prev], [f"r{i}"], name=f"relu{i}"))
        prev = f"r{i}"
    nodes.append(h.make_node("Identity", [prev], ["y"], name="out"))
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, ["batch", 4])],
                     [h.make_tensor_value_info("y", T.FLOAT, ["batch", 4])],
                     [h.make_tensor("w", T.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])],
                     value_info=[h.make_tensor_value_info("g", T.FLOAT, ["batch", 4]),
                                 *[h.make_tensor_value_info(f"a{i}", T.FLOAT, ["batch", 4]) for i in range(n_before)]])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 18), h.make_opsetid("com.example", 1)])


def test_small_graph_is_drawn_whole_with_the_custom_node_detailed() -> None:
    from opkit.verify.graph import graph_view

    v = graph_view(_model(2, 1), ["com.example::ScaledGelu"])
    assert not v.collapsed and v.total_nodes == v.shown_nodes == 5
    kinds = sorted(b.kind for b in v.boxes)
    assert kinds == ["custom", "input", "op", "op", "op", "op", "output"]
    (custom,) = [b for b in v.boxes if b.kind == "custom"]
    assert custom.title == "com.example::ScaledGelu"
    assert "alpha = 0.5" in custom.lines and "approximate = 'tanh'" in custom.lines
    assert "in a1: float32[batch,4]" in custom.lines and "out g: float32[batch,4]" in custom.lines
    add = _model(1, 0)
    add.graph.node[1].input.append("w")  # a weight (an initializer) into the custom node: its shape is shown
    (custom,) = [b for b in graph_view(add, ["com.example::ScaledGelu"]).boxes if b.kind == "custom"]
    assert "in w: float32[4]" in custom.lines
    by_id = {b.id: b for b in v.boxes}
    for e in v.edges:  # every edge goes down, from one layer to a later one
        assert by_id[e.src].layer < by_id[e.dst].layer and by_id[e.src].y < by_id[e.dst].y
    assert [by_id[i].layer for i in ("in:x", "n0", "n1", "n2", "n3", "n4", "out:y")] == [0, 1, 2, 3, 4, 5, 6]
    for a in v.boxes:  # boxes of a layer do not overlap
        for b in v.boxes:
            if a is not b and a.layer == b.layer:
                assert a.x + a.w <= b.x or b.x + b.w <= a.x


def test_a_long_edge_goes_around_the_boxes_of_the_layers_it_crosses() -> None:
    from onnx import TensorProto as T
    from onnx import helper as h

    from opkit.verify.graph import graph_view

    nodes = [h.make_node("Relu", ["x"], ["r0"]), h.make_node("Relu", ["r0"], ["r1"]),
             h.make_node("Relu", ["r1"], ["r2"]), h.make_node("Add", ["x", "r2"], ["y"])]  # a residual
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, [4])],
                     [h.make_tensor_value_info("y", T.FLOAT, [4])])
    v = graph_view(h.make_model(g), [])
    by_id = {b.id: b for b in v.boxes}
    (skip,) = [e for e in v.edges if e.src == "in:x" and e.dst == "n3"]
    assert skip.path.count("C") == 4  # through the layers of the three Relu
    lane_x = [float(seg.split(",")[0]) for seg in skip.path.split("L")[1:]]
    for x, relu in zip(lane_x, ("n0", "n1", "n2")):
        b = by_id[relu]
        assert not b.x <= x <= b.x + b.w, (x, b)


def test_large_graph_collapses_to_the_neighbourhood_of_the_custom_nodes() -> None:
    from opkit.verify.graph import RADIUS, graph_view

    v = graph_view(_model(100, 100), ["com.example::ScaledGelu"])
    assert v.collapsed and v.radius == RADIUS and v.total_nodes == 202
    assert v.shown_nodes == 2 * RADIUS + 1 and v.custom == ["com.example::ScaledGelu"]
    elided = [b for b in v.boxes if b.kind == "elided"]
    assert len(elided) == 2  # what comes before and after, as dashed stand-ins
    assert not any(b.kind in ("input", "output") for b in v.boxes)  # far away: left out


def test_graph_layout_is_reused_while_the_model_file_is_unchanged(tmp_path: Path) -> None:
    # verify's cached path draws the graph from graph.json, without importing onnx
    import json
    import os

    import onnx

    from opkit.verify.graph import graph_view, load_graph

    model, cache = tmp_path / "model.onnx", tmp_path / "graph.json"
    onnx.save(_model(2, 1), str(model))
    first = load_graph(model, ["com.example::ScaledGelu"], cache)
    assert first == graph_view(onnx.load(str(model)), ["com.example::ScaledGelu"]) and cache.is_file()
    data = json.loads(cache.read_text())
    data["view"]["boxes"][0]["title"] = "from the cache"
    cache.write_text(json.dumps(data))
    assert load_graph(model, ["com.example::ScaledGelu"], cache).boxes[0].title == "from the cache"
    os.utime(model, ns=(1, 1))  # the model changed: laid out again
    assert load_graph(model, ["com.example::ScaledGelu"], cache) == first
    assert load_graph(tmp_path / "missing.onnx", [], cache) is None


# ---- the page ---------------------------------------------------------------------------------------

def _report(tmp_path: Path, *, failing: bool):
    import onnx

    from opkit.verify.compare import compare
    from opkit.verify.report import Report, Run

    onnx.save(_model(2, 1), str(tmp_path / "model.onnx"))
    want = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    got = want.copy()
    if failing:
        got[2, 1] += 1.0
    runs = [Run("example inputs", [compare("y", want.copy(), want)], "native", [[3, 4]]),
            Run("other sizes: batch=6", [compare("y", got, want)], "native", [[6, 4]]),
            Run("example inputs", [compare("y", want.copy(), want)], "C++ runner", [[3, 4]]),
            Run("example inputs", [compare("y", want.copy(), want)], "some <future> runtime", [[3, 4]])]
    failures = ["output 'y' (other sizes: batch=6) differs from PyTorch; ops involved: <script>alert(1)</script>"] \
        if failing else []
    return Report(model="model.py", library="/lib/libopkit_ops.so", exporter="dynamo", opset=18,
                  ops=["com.example::ScaledGelu"], runs=runs, timings={"build": 1.5, "export": 3.0, "onnxruntime": 0.4},
                  failures=failures, artifacts=str(tmp_path), onnx_model=str(tmp_path / "model.onnx"))


def test_verify_page_is_self_contained_escaped_and_has_a_section_per_runtime(tmp_path: Path) -> None:
    report = _report(tmp_path, failing=True)
    text = report.html()
    assert text.startswith("<!DOCTYPE html>\n<!--\n Generated by opkit")
    assert "templates/report/verify.html.j2" in text
    # nothing to fetch: no external scripts, styles, fonts or images, and a policy that forbids them
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "@import" not in text and "url(http" not in text
    assert "default-src 'none'" in text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    sections = re.findall(r'<section class="runtime" id="runtime-\d+">\s*<h2>(.*?) <span', text)
    assert sections == ["onnxruntime + op library", "C++ runner", "some &lt;future&gt; runtime"]
    assert text.count('<svg class="hist"') == 4  # one histogram per output of each run
    worst = re.search(r'<td class="mono">\[2, 1\]</td><td class="num">(.*?)</td><td class="num">(.*?)</td>'
                      r'<td class="num">(.*?)</td><td class="num bad">(.*?)</td>', text)
    assert worst, "the changed element is the worst one, over its tolerance"
    assert float(worst[3]) == pytest.approx(1.0, rel=1e-3)
    assert float(worst[4]) > 1000  # |got - expected| / (atol + rtol * |expected|) for an error of 1
    assert '<div class="bar" style="width: 100.0%">' in text  # the slowest step
    assert 'data-op="com.example::ScaledGelu"' in text


@needs_chromium
def test_verify_page_renders_in_chromium(tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text(_report(tmp_path, failing=True).html())
    (node,) = check_in_browser(tmp_path / "report.html", ["com.example::ScaledGelu"])
    assert "alpha = 0.5" in node["text"] and "float32[batch,4]" in node["text"]


@needs_chromium
def test_the_browser_check_sees_console_errors_and_blank_pages(tmp_path: Path) -> None:
    # the checks above can fail: a script error, a blocked network load, a blank page are all caught
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head><link rel=icon href='data:,'>"
                    "<meta http-equiv='Content-Security-Policy' "
                    "content=\"default-src 'none'; script-src 'unsafe-inline'\">"
                    "</head><body><img src='https://example.invalid/x.png'>"
                    "<script>console.error('boom'); undefinedFunction();</script></body></html>")
    result = open_page(page, "1")
    text = "\n".join(result.errors)
    assert "boom" in text and "undefinedFunction" in text and "example.invalid" in text, result.errors
    colours, not_background = colour_stats(result.screenshot)
    assert colours < 8 or not_background < 0.02


def test_test_page_lists_cases_and_failures_with_rerun_commands() -> None:
    from opkit.testing.report import CaseResult, Failure, OpResult, TestReport

    bad = Failure("7", "rank 1", "T=float32 x=7", "values", "1 of 7 element(s) differ", "opkit test OffByOne --case 7")
    op = OpResult("OffByOne", "test.broken::OffByOne", cases=3, passed=2, failed=1, failures=[bad],
                  results=[CaseResult("0", "empty", "T=float32 x=0", "passed", 0.0),
                           CaseResult("7", "rank 1", "T=float32 x=7", "failed", 1.0),
                           CaseResult("9", "large", "T=float32 x=64x64", "passed", 0.0)])
    from opkit.testing.coverage import Coverage

    op.coverage = Coverage(["bias never absent"])
    text = TestReport(seed=0, sanitize=False, library="/lib.so", ops=[op], strict=True).html()
    assert "opkit test OffByOne --case 7" in text and "T=float32 x=7" in text
    assert "never exercised by its cases: bias never absent" in text and "FAIL (incomplete: bias never absent)" in text
    assert "--strict: an incomplete op fails the run" in text
    import copy

    other = copy.deepcopy(op)
    other.runtime = "openvino"  # one OpResult per op and runtime: the page says which is which
    both = TestReport(seed=0, sanitize=False, library="/lib.so", ops=[op, other]).html()
    assert "test.broken::OffByOne in onnxruntime" in both and "test.broken::OffByOne in openvino" in both
    assert text.count('<tr class="case ') == 3 and '<tr class="case failed">' in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)


@pytest.mark.parametrize("command", [["verify", "model.py"], ["test"]])
def test_html_to_a_missing_folder_is_a_usage_error_before_any_work(tmp_path: Path, command: list[str],
                                                                   capsys: pytest.CaptureFixture) -> None:
    from opkit.cli import main

    (tmp_path / "model.py").write_text("raise SystemExit('must not be imported')\n")
    argv = [*command, "--html", str(tmp_path / "no" / "report.html"), "--workspace", str(tmp_path)]
    if command[0] == "verify":
        argv[1] = str(tmp_path / "model.py")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--html {tmp_path / 'no' / 'report.html'}: the folder {tmp_path / 'no'} does not exist" in err
    assert "fix:" in err and "Traceback" not in err
