"""How long opkit itself makes a user wait, against the targets of the performance issue.

    python benchmarks/tool_speed.py [--repeat 3] [--json FILE]

Prints, each as the median of --repeat runs (a fresh process each; interleaved where two things
are compared):
  opkit --help                         target <= 0.3 s
  opkit new                            target <= 0.5 s
  opkit build, nothing changed         target <= 0.5 s
  opkit build after editing a kernel   target: that file's compile + <= 0.5 s; the compile alone is timed
                                       by re-running ninja's own compiler command for that object
  opkit verify examples/gelu_mlp.py    cold cache (--fresh, library built) vs minimal_verify.py, a
                                       hand-written script doing the same export, ORT run and comparison:
                                       target <= 1.25x
  ... after editing only the kernel    (the cached path) target <= 1.5x that kernel's compile alone
  peak RSS of verify vs the script     target <= 1.25x. verify runs ONNX Runtime in a child process, so
                                       memory is sampled every 5 ms over the whole process tree
                                       (/proc/<pid>/status VmRSS of the process and its descendants,
                                       summed); the largest single process (getrusage maxrss of the
                                       waited-for children) is shown too.
Everything runs in a copy of the repository's ScaledGelu workspace under a temp folder; the machine's
load average is printed, since on a shared machine all figures move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


def run(cmd: list[str], cwd: Path, env: dict | None = None,
        check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if check and p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return dt, p


def _tree_rss_kb(root: int) -> int:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
        stack.extend(children.get(pid, []))
    return total


def run_mem(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float, float]:
    """(seconds, peak RSS of the process tree in MiB, largest single process in MiB)."""
    wrapper = [PY, "-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]).returncode; "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r)", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(wrapper, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            time.sleep(0.005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    dt = time.perf_counter() - t0
    done.set()
    th.join()
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err}")
    single = int(err.strip().splitlines()[-1])
    return dt, peak[0] / 1024, single / 1024


def compile_command(build: Path, folder: str) -> list[str]:
    out = subprocess.run([shutil.which("ninja") or _ninja(), "-C", str(build / "release"), "-t", "commands"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if f"{folder}.glue.cc.o" in line and " -c " in line:
            return ["bash", "-c", f"cd {build / 'release'} && {line}"]
    raise SystemExit("no compile command for the kernel found in ninja -t commands")


def _ninja() -> str:
    import ninja

    return str(Path(ninja.BIN_DIR) / "ninja")


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    n = max(1, args.repeat)
    tmp = Path(tempfile.mkdtemp(prefix="opkit-tool-speed-"))
    ws = tmp / "ws"
    (ws / "ops").mkdir(parents=True)
    shutil.copytree(REPO / "ops" / "scaled_gelu", ws / "ops" / "scaled_gelu")
    shutil.copy(REPO / "CMakeLists.txt", ws / "CMakeLists.txt")
    shutil.copy(REPO / "examples" / "gelu_mlp.py", ws / "gelu_mlp.py")
    shutil.copy(Path(__file__).with_name("minimal_verify.py"), ws / "minimal_verify.py")
    build = tmp / "build"
    env = dict(os.environ, OPKIT_BUILD_DIR=str(build))
    opkit = [PY, "-m", "opkit"]
    kernel = ws / "ops" / "scaled_gelu" / "scaled_gelu.cc"
    res: dict[str, object] = {"load_before": os.getloadavg()[0], "cpus": os.cpu_count(), "repeat": n}
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, value: str, target: str, ok: bool | None) -> None:
        rows.append((name, value, target, "-" if ok is None else "ok" if ok else "MISSED"))
        print(f"  {name}: {value}  (target {target})", file=sys.stderr, flush=True)

    py0 = med([run([PY, "-c", "pass"], ws)[0] for _ in range(n)])
    t = med([run([*opkit, "--help"], ws)[0] for _ in range(n)])
    res["help_s"] = t
    row("opkit --help", f"{t:.3f} s (python -c pass: {py0:.3f} s)", "<= 0.3 s", t <= 0.3)

    times = []
    for k in range(n):
        d = tmp / f"new{k}"
        d.mkdir()
        times.append(run([*opkit, "new", "SpeedOp", "--domain", "com.example"], d)[0])
    res["new_s"] = med(times)
    row("opkit new", f"{res['new_s']:.3f} s", "<= 0.5 s", res["new_s"] <= 0.5)

    first, _ = run([*opkit, "build"], ws, env)
    res["build_first_s"] = first
    t = med([run([*opkit, "build"], ws, env)[0] for _ in range(n)])
    res["build_noop_s"] = t
    row("opkit build (nothing changed)", f"{t:.3f} s (first build {first:.2f} s)", "<= 0.5 s", t <= 0.5)

    cc = compile_command(build, "scaled_gelu")
    builds, compiles = [], []
    for k in range(n):  # interleaved: edit + opkit build, then the compiler command alone
        kernel.write_text(kernel.read_text() + f"\n// edit {k}\n")
        builds.append(run([*opkit, "build"], ws, env)[0])
        compiles.append(run(cc, ws)[0])
    res["rebuild_s"], res["compile_s"] = med(builds), med(compiles)
    over = res["rebuild_s"] - res["compile_s"]
    row("opkit build after a kernel edit", f"{res['rebuild_s']:.2f} s = compile {res['compile_s']:.2f} s + "
        f"{over:.2f} s (link, cmake/ninja, opkit)", "compile + <= 0.5 s", over <= 0.5)

    run([*opkit, "verify", "gelu_mlp.py", "--fresh"], ws, env)  # warm the disk cache, build the runner
    v_cold, v_cold_nn, mini, v_mem, mini_mem, mini_fast = [], [], [], [], [], []
    for _ in range(n):  # interleaved
        dt, tree, single = run_mem([*opkit, "verify", "gelu_mlp.py", "--fresh"], ws, env)
        v_cold.append(dt)
        v_mem.append((tree, single))
        v_cold_nn.append(run([*opkit, "verify", "gelu_mlp.py", "--fresh", "--no-native"], ws, env)[0])
        dt, tree, single = run_mem([PY, "minimal_verify.py", str(build / "release" / "lib" / "libopkit_ops.so")],
                                   ws, env)
        mini.append(dt)
        mini_mem.append((tree, single))
        mini_fast.append(run([PY, "minimal_verify.py", str(build / "release" / "lib" / "libopkit_ops.so"),
                              "--fast-exit"], ws, env)[0])
    res.update(verify_cold_s=med(v_cold), verify_cold_no_native_s=med(v_cold_nn), minimal_s=med(mini),
               minimal_fast_exit_s=med(mini_fast))
    q = res["verify_cold_s"] / res["minimal_s"]
    row("opkit verify gelu_mlp.py, cold cache", f"{res['verify_cold_s']:.2f} s vs minimal script "
        f"{res['minimal_s']:.2f} s = {q:.2f}x (--no-native: {res['verify_cold_no_native_s']:.2f} s = "
        f"{res['verify_cold_no_native_s'] / res['minimal_s']:.2f}x)", "<= 1.25x", q <= 1.25)
    qf = res["verify_cold_s"] / res["minimal_fast_exit_s"]
    row("  ... vs the script ending in os._exit", f"{res['minimal_fast_exit_s']:.2f} s: verify {qf:.2f}x, "
        f"--no-native {res['verify_cold_no_native_s'] / res['minimal_fast_exit_s']:.2f}x", "<= 1.25x", qf <= 1.25)

    warm, comp2 = [], []
    for k in range(n):
        kernel.write_text(kernel.read_text() + f"\n// verify edit {k}\n")
        warm.append(run([*opkit, "verify", "gelu_mlp.py"], ws, env)[0])
        comp2.append(run(cc, ws)[0])
    res["verify_after_kernel_edit_s"], res["compile2_s"] = med(warm), med(comp2)
    q = res["verify_after_kernel_edit_s"] / res["compile2_s"]
    row("opkit verify after editing only the kernel", f"{res['verify_after_kernel_edit_s']:.2f} s vs the kernel's "
        f"compile alone {res['compile2_s']:.2f} s = {q:.2f}x", "<= 1.5x", q <= 1.5)

    vt, vs = med([m[0] for m in v_mem]), med([m[1] for m in v_mem])
    mt, ms = med([m[0] for m in mini_mem]), med([m[1] for m in mini_mem])
    res.update(verify_rss_tree_mib=vt, verify_rss_single_mib=vs, minimal_rss_tree_mib=mt, minimal_rss_single_mib=ms)
    row("peak RSS, verify vs minimal script", f"process tree {vt:.0f} vs {mt:.0f} MiB = {vt / mt:.2f}x; largest "
        f"single process {vs:.0f} vs {ms:.0f} MiB = {vs / ms:.2f}x", "<= 1.25x", vt / mt <= 1.25)
    res["load_after"] = os.getloadavg()[0]

    print(f"\ntool speed (median of {n}; {os.cpu_count()} CPUs, load average {res['load_before']:.2f} -> "
          f"{res['load_after']:.2f})")
    w = [max(len(r[i]) for r in rows + [("what", "measured", "target", "")]) for i in range(4)]
    for r in [("what", "measured", "target", "")] + rows:
        print("  ".join(c.ljust(x) for c, x in zip(r, w)).rstrip())
    if args.json:
        Path(args.json).write_text(json.dumps({"results": res, "rows": rows}, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
