"""A picture of an exported ONNX graph for the HTML report: a layered layout computed here, drawn as SVG by
templates/report/graph.svg.j2. Custom nodes carry their attributes and their inputs' and outputs' shapes; a large
graph is cut down to the neighbourhood of the custom nodes. Pure: a ModelProto in, a GraphView out."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opkit.spec.dtypes import BY_ONNX

MAX_NODES = 60  # above this many nodes, draw only the neighbourhood of the custom nodes
RADIUS = 3  # ... within this many steps (tensor hops), fewer if that is still too many
CHAR_W, LINE_H, PAD, GAP_X, GAP_Y = 7.4, 15.0, 8.0, 28.0, 46.0  # px, for a 12px monospace font
VIRTUAL_W = 4.0  # px: the lane of an edge through a layer it does not stop in


@dataclass
class Box:
    id: str
    kind: str  # "op", "custom", "input", "output", "elided"
    title: str  # the first line: op type, or tensor name
    lines: list[str] = field(default_factory=list)  # further lines (custom nodes: attributes, shapes)
    tooltip: str = ""
    qualname: str = ""  # domain::OpType of a custom node
    layer: int = 0
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


@dataclass
class Edge:
    src: str
    dst: str
    tensor: str
    path: str = ""  # SVG path data, set by the layout


@dataclass
class GraphView:
    boxes: list[Box]
    edges: list[Edge]
    width: float
    height: float
    total_nodes: int  # nodes of the whole graph
    shown_nodes: int  # nodes drawn (custom nodes and their neighbours when the graph is large)
    radius: int | None  # the neighbourhood drawn, or None for the whole graph
    custom: list[str]  # qualnames of the custom nodes drawn

    @property
    def collapsed(self) -> bool:
        return self.radius is not None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GraphView:
        return cls(**{**d, "boxes": [Box(**b) for b in d["boxes"]], "edges": [Edge(**e) for e in d["edges"]]})


STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")


def load_graph(model_file: str | Path, ops: list[str], cache: Path | None = None) -> GraphView | None:
    """The view of the model at `model_file` (its weights not loaded); None when there is no such file.

    With `cache` (a JSON file), a view computed before for the same file (size, mtime) and ops is reused, so that
    verify's cached path (only kernels changed) draws the graph without importing onnx."""
    import json

    path = Path(model_file) if model_file else None
    if path is None or not path.is_file():
        return None
    st = path.stat()
    key = {"model": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ops": sorted(ops)}
    if cache is not None and cache.is_file():
        try:
            data = json.loads(cache.read_text())
            if data.get("key") == key:
                return GraphView.from_dict(data["view"])
        except (ValueError, KeyError, TypeError):
            pass  # unreadable: compute it again
    import onnx

    view = graph_view(onnx.load(str(path), load_external_data=False), ops)
    if cache is not None:
        from dataclasses import asdict

        from opkit.codegen.writer import write_atomic

        write_atomic(cache, json.dumps({"key": key, "view": asdict(view)}))
    return view


def _type_text(vi: Any) -> str:
    t = vi.type.tensor_type
    dt = BY_ONNX.get(t.elem_type)
    name = dt.name if dt else f"type{t.elem_type}"
    if not t.HasField("shape"):
        return f"{name}[?]"
    dims = [str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    return f"{name}[{','.join(dims)}]"


def _attr_text(a: Any) -> str:
    import onnx

    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, list):
        v = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v]
    if isinstance(v, float):
        v = f"{v:g}"
    elif isinstance(v, (onnx.TensorProto, onnx.GraphProto)):
        v = f"<{type(v).__name__}>"
    text = f"{a.name} = {v!r}" if isinstance(v, str) and a.type == onnx.AttributeProto.STRING else f"{a.name} = {v}"
    return text if len(text) <= 60 else text[:57] + "..."


def graph_view(model: Any, ops: list[str], *, max_nodes: int = MAX_NODES, radius: int = RADIUS) -> GraphView:
    g = model.graph
    custom_q = set(ops)
    types = {vi.name: _type_text(vi) for vi in [*g.input, *g.value_info, *g.output]}
    inits = {t.name for t in g.initializer}
    for t in g.initializer:  # weights: their dtype and shape, for the custom nodes that take them
        dt = BY_ONNX.get(t.data_type)
        types.setdefault(t.name, f"{dt.name if dt else f'type{t.data_type}'}[{','.join(map(str, t.dims))}]")
    nodes = list(g.node)

    def is_custom(n: Any) -> bool:
        return f"{n.domain}::{n.op_type}" in custom_q or (not custom_q and n.domain not in STANDARD_DOMAINS)

    producer = {o: k for k, n in enumerate(nodes) for o in n.output if o}
    consumers: dict[str, list[int]] = defaultdict(list)
    for k, n in enumerate(nodes):
        for i in n.input:
            if i:
                consumers[i].append(k)

    # the nodes to draw: all, or those within `r` tensor hops of a custom node
    keep = set(range(len(nodes)))
    used_radius = None
    customs = [k for k, n in enumerate(nodes) if is_custom(n)]
    if len(nodes) > max_nodes and customs:
        for r in range(radius, -1, -1):
            keep = _neighbourhood(nodes, customs, producer, consumers, r)
            used_radius = r
            if len(keep) <= max_nodes:
                break

    boxes: dict[str, Box] = {}
    edges: list[Edge] = []
    for k in sorted(keep):
        n = nodes[k]
        if is_custom(n):
            lines = [f"node {n.name}"] if n.name else []
            lines += [_attr_text(a) for a in n.attribute]
            lines += [f"in {i or '(absent)'}: {types.get(i, '?')}" for i in n.input]
            lines += [f"out {o}: {types.get(o, '?')}" for o in n.output if o]
            q = f"{n.domain}::{n.op_type}"
            boxes[f"n{k}"] = Box(f"n{k}", "custom", q, lines, tooltip=q, qualname=q)
        else:
            title = n.op_type if n.domain in STANDARD_DOMAINS else f"{n.domain}::{n.op_type}"
            tip = f"{title} {n.name}: " + ", ".join(f"{o} {types.get(o, '')}".strip() for o in n.output if o)
            boxes[f"n{k}"] = Box(f"n{k}", "op", title, tooltip=tip)
    graph_inputs = [vi.name for vi in g.input if vi.name not in inits]
    for name in graph_inputs:
        if any(c in keep for c in consumers.get(name, [])):
            boxes[f"in:{name}"] = Box(f"in:{name}", "input", name, [types.get(name, "?")], tooltip=f"input {name}")
    for vi in g.output:
        if (producer[vi.name] in keep) if vi.name in producer else f"in:{vi.name}" in boxes:
            boxes[f"out:{vi.name}"] = Box(f"out:{vi.name}", "output", vi.name, [types.get(vi.name, "?")],
                                          tooltip=f"output {vi.name}")
    for k in sorted(keep):
        for t in nodes[k].input:
            if not t or t in inits:
                continue
            if t in producer:
                src = f"n{producer[t]}"
                if producer[t] not in keep:
                    src = f"up:{t}"
                    boxes.setdefault(src, Box(src, "elided", "...", [t], tooltip=f"{t} {types.get(t, '')}: "
                                              "computed by nodes not drawn"))
            elif f"in:{t}" in boxes:
                src = f"in:{t}"
            else:
                continue
            edges.append(Edge(src, f"n{k}", t))
        for t in nodes[k].output:
            if t and any(c not in keep for c in consumers.get(t, [])):
                dst = f"down:{t}"
                boxes.setdefault(dst, Box(dst, "elided", "...", [t], tooltip=f"{t}: used by nodes not drawn"))
                edges.append(Edge(f"n{k}", dst, t))
    for vi in g.output:
        if f"out:{vi.name}" in boxes:
            src = f"n{producer[vi.name]}" if vi.name in producer else f"in:{vi.name}"
            edges.append(Edge(src, f"out:{vi.name}", vi.name))

    width, height = _layout(boxes, edges)
    ordered = sorted(boxes.values(), key=lambda b: (b.layer, b.x))
    return GraphView(ordered, edges, width, height, total_nodes=len(nodes), shown_nodes=len(keep),
                     radius=used_radius, custom=[b.qualname for b in ordered if b.kind == "custom"])


def _neighbourhood(nodes: list, start: list[int], producer: dict[str, int], consumers: dict[str, list[int]],
                   r: int) -> set[int]:
    seen = set(start)
    frontier = list(start)
    for _ in range(r):
        nxt = []
        for k in frontier:
            near = [producer[i] for i in nodes[k].input if i in producer]
            near += [c for o in nodes[k].output for c in consumers.get(o, [])]
            for m in near:
                if m not in seen:
                    seen.add(m)
                    nxt.append(m)
        frontier = nxt
    return seen


def _layout(boxes: dict[str, Box], edges: list[Edge]) -> tuple[float, float]:
    """Layers top to bottom by longest path from the sources; order in a layer by the mean position of the
    predecessors (one barycentre sweep); edges as cubic curves from a box's bottom to the next box's top,
    through a virtual box in each layer they cross. Sets the boxes' positions and the edges' paths."""
    # sizes
    for b in boxes.values():
        text = [b.title, *b.lines]
        b.w = max(60.0, max(len(t) for t in text) * CHAR_W + 2 * PAD)
        b.h = len(text) * LINE_H + 2 * PAD - (4 if b.kind != "custom" else 0)
    # layers: longest path from the sources (Kahn's order; the graph is acyclic)
    succs: dict[str, list[str]] = defaultdict(list)
    indeg = dict.fromkeys(boxes, 0)
    for e in edges:
        succs[e.src].append(e.dst)
        indeg[e.dst] += 1
    ready = [i for i, d in indeg.items() if d == 0]
    while ready:
        i = ready.pop()
        for d in succs[i]:
            boxes[d].layer = max(boxes[d].layer, boxes[i].layer + 1)
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    # an edge over several layers passes through a thin virtual box in each layer between, so that the
    # ordering keeps a lane free for it instead of drawing it across the boxes of those layers
    placed = dict(boxes)
    chains: list[list[str]] = []
    for k, e in enumerate(edges):
        chain = [e.src]
        for lay in range(boxes[e.src].layer + 1, boxes[e.dst].layer):
            v = Box(f"v{k}.{lay}", "virtual", "", layer=lay, w=VIRTUAL_W, h=0.0)
            placed[v.id] = v
            chain.append(v.id)
        chains.append([*chain, e.dst])
    preds: dict[str, list[str]] = defaultdict(list)
    succs = defaultdict(list)
    for chain in chains:
        for a, b in zip(chain, chain[1:]):
            preds[b].append(a)
            succs[a].append(b)
    rows: dict[int, list[Box]] = defaultdict(list)
    for b in placed.values():  # insertion order: the graph's order
        rows[b.layer].append(b)
    pos: dict[str, float] = {}

    def place(row: list[Box]) -> None:  # provisional centres, rows centred on 0
        x = 0.0
        for b in row:
            pos[b.id] = x + b.w / 2
            x += b.w + GAP_X
        for b in row:
            pos[b.id] -= x / 2

    for row in rows.values():
        place(row)
    layers = sorted(rows)
    segments = [(a, b) for chain in chains for a, b in zip(chain, chain[1:])]

    def crossings() -> int:
        index = {b.id: k for row in rows.values() for k, b in enumerate(row)}
        by_layer: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for a, b in segments:
            by_layer[placed[a].layer].append((index[a], index[b]))
        return sum((a1 - a2) * (b1 - b2) < 0 for segs in by_layer.values()
                   for k, (a1, b1) in enumerate(segs) for a2, b2 in segs[k + 1:])

    best = (crossings(), {lay: list(row) for lay, row in rows.items()})
    for sweep, near in enumerate([preds, succs] * 3):  # barycentre sweeps, down and up; keep the best order
        for lay in (layers[1:] if sweep % 2 == 0 else layers[-2::-1]):
            row = rows[lay]

            def centre(b: Box, near: dict[str, list[str]] = near) -> float:
                ps = [pos[p] for p in near.get(b.id, ())]
                return sum(ps) / len(ps) if ps else pos[b.id]
            row.sort(key=centre)
            place(row)
        count = crossings()
        if count < best[0]:
            best = (count, {lay: list(row) for lay, row in rows.items()})
    rows = best[1]
    width = max(sum(b.w for b in row) + GAP_X * (len(row) - 1) for row in rows.values()) + 2 * GAP_X if rows else 0
    y = GAP_X / 2
    for lay in sorted(rows):
        row = rows[lay]
        x = (width - (sum(b.w for b in row) + GAP_X * (len(row) - 1))) / 2
        for b in row:
            b.x, b.y = x, y
            x += b.w + GAP_X
        row_h = max(b.h for b in row)
        for b in row:
            if b.kind == "virtual":
                b.h = row_h  # the lane runs through the whole layer
        y += row_h + GAP_Y
    for e, chain in zip(edges, chains):  # cubic curves, straight down through the virtual boxes
        first = placed[chain[0]]
        x, y = first.x + first.w / 2, first.y + first.h
        d = [f"M{x:.1f},{y:.1f}"]
        for b in (placed[i] for i in chain[1:]):
            xb, yb = b.x + b.w / 2, b.y
            bend = max(14.0, (yb - y) / 2)
            d.append(f"C{x:.1f},{y + bend:.1f} {xb:.1f},{yb - bend:.1f} {xb:.1f},{yb:.1f}")
            x, y = xb, yb
            if b.kind == "virtual":
                y = b.y + b.h
                d.append(f"L{x:.1f},{y:.1f}")
        e.path = " ".join(d)
    return width, y - GAP_Y + GAP_X / 2 if rows else 0.0
