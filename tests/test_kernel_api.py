"""The kernel API is runtime-neutral (templates/cpp/kernel.h.j2): a user's kernel file compiles and runs with
no ONNX Runtime, OpenVINO or torch header on the include path, driven by a minimal host written here (the
same interface every runtime's glue implements: opkit::detail::Host). Also pins opkit's own 16-bit types:
bit patterns and rounding as numpy / ml_dtypes define them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from opkit.build.specs import import_ops
from opkit.build.workspace import Workspace
from opkit.codegen.render import render_library

REPO = Path(__file__).resolve().parent.parent
CXX = shutil.which("c++") or shutil.which("g++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler")

PROGRAM = r'''
#include <cstdio>
#include <thread>
#include <vector>

#include "scaled_gelu.opkit.h"
#include "rms_norm.opkit.h"
#include "ops/scaled_gelu/scaled_gelu.cc"
#include "ops/rms_norm/rms_norm.cc"

#ifdef ORT_API_VERSION
#error "an ONNX Runtime header reached the kernel"
#endif

// The smallest possible runtime: vectors for outputs, std::thread for parallel_for.
class TestHost final : public opkit::detail::Host {
 public:
  std::vector<std::vector<unsigned char>> buffers;
  std::vector<opkit::Shape> shapes;
  size_t elem;
  int parallel_calls = 0;
  explicit TestHost(size_t elem_size) : elem(elem_size) {}
  void* allocate_output(size_t index, const opkit::Shape& shape) override {
    if (buffers.size() <= index) { buffers.resize(index + 1); shapes.resize(index + 1); }
    buffers[index].assign(static_cast<size_t>(opkit::num_elements(shape)) * elem, 0);
    shapes[index] = shape;
    return buffers[index].data();
  }
  void run_parallel(size_t n, void (*task)(void*, size_t), void* arg) override {
    ++parallel_calls;
    std::vector<std::thread> pool;
    for (size_t i = 0; i < n; ++i) pool.emplace_back(task, arg, i);
    for (auto& t : pool) t.join();
  }
  int num_threads() const override { return 2; }
};

int main() {
  // ScaledGelu float32, large enough that parallel_for splits it.
  const int64_t n = 1 << 18;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = -4.0f + 8.0f * static_cast<float>(i) / static_cast<float>(n);
  TestHost host(sizeof(float));
  opkit::Input<float> in("x", x.data(), {n});
  opkit::Output<float> y(host, 0, "y");
  y.allocate({n});
  opkit::Context ctx(host, "opkit.examples::ScaledGelu");
  opkit::ops::ScaledGelu::Attrs attrs;
  attrs.alpha = 2.0f;
  opkit::ops::ScaledGelu::compute<float>(ctx, attrs, in, y);
  const float* out = reinterpret_cast<const float*>(host.buffers[0].data());
  std::printf("gelu %d", host.parallel_calls);
  for (int64_t i = 0; i < n; i += n / 8) std::printf(" %.9g:%.9g", x[i], out[i]);
  std::printf("\n");

  // RmsNorm float16: opkit::float16 through a kernel, no runtime's half type anywhere.
  const int64_t rows = 3, cols = 5;
  std::vector<opkit::float16> h(rows * cols), w(cols);
  for (int64_t i = 0; i < rows * cols; ++i) h[i] = opkit::float16(0.25f * static_cast<float>(i) - 1.0f);
  for (int64_t i = 0; i < cols; ++i) w[i] = opkit::float16(1.0f + 0.5f * static_cast<float>(i));
  TestHost host16(sizeof(opkit::float16));
  opkit::Output<opkit::float16> y16(host16, 0, "y");
  y16.allocate({rows, cols});
  opkit::Context ctx16(host16, "opkit.examples::RmsNorm");
  opkit::ops::RmsNorm::Attrs attrs16;
  opkit::ops::RmsNorm::compute<opkit::float16>(ctx16, attrs16, opkit::Input<opkit::float16>("x", h.data(), {rows, cols}),
                                               opkit::Input<opkit::float16>("weight", w.data(), {cols}), y16);
  const auto* o16 = reinterpret_cast<const opkit::float16*>(host16.buffers[0].data());
  std::printf("rms");
  for (int64_t i = 0; i < rows * cols; ++i) std::printf(" %u", static_cast<unsigned>(o16[i].val));
  std::printf("\n");

  // The 16-bit types' conversions, as bit patterns.
  const float probes[] = {0.0f, -0.0f, 1.0f, 65504.0f, 1e-8f, 3.14159265f, 1e30f, -2.5e-3f};
  std::printf("f16");
  for (float f : probes) std::printf(" %u", static_cast<unsigned>(opkit::float16(f).val));
  std::printf("\nbf16");
  for (float f : probes) std::printf(" %u", static_cast<unsigned>(opkit::bfloat16(f).val));
  std::printf("\n");

  // opkit::convert (F16C where the CPU has it) against to_acc / from_acc: every half, a sweep of floats.
  std::vector<opkit::float16> halves(65536), back(65536);
  std::vector<float> fl(65536);
  for (uint32_t b = 0; b < 65536; ++b) halves[b] = opkit::float16::FromBits(static_cast<uint16_t>(b));
  opkit::convert(halves.data(), fl.data(), 65535);  // an odd count: the scalar tail too
  fl[65535] = opkit::to_acc(halves[65535]);
  int64_t bad_h2f = 0, bad_f2h = 0;
  for (uint32_t b = 0; b < 65536; ++b) {
    const float want = opkit::to_acc(halves[b]);
    if (!(std::isnan(want) ? std::isnan(fl[b]) : std::memcmp(&want, &fl[b], 4) == 0)) ++bad_h2f;
  }
  std::vector<float> sweep;
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 4099) {  // every exponent, both signs, ties too
    float f;
    const uint32_t b32 = static_cast<uint32_t>(bits);
    std::memcpy(&f, &b32, 4);
    sweep.push_back(f);
  }
  std::vector<opkit::float16> conv(sweep.size());
  opkit::convert(sweep.data(), conv.data(), static_cast<int64_t>(sweep.size()));
  for (size_t i = 0; i < sweep.size(); ++i) {
    const opkit::float16 want = opkit::from_acc<opkit::float16>(sweep[i]);
    const bool nan = std::isnan(sweep[i]);
    if (nan ? (conv[i].val & 0x7C00u) != 0x7C00u || (conv[i].val & 0x3FFu) == 0 : conv[i].val != want.val) ++bad_f2h;
  }
  std::printf("convert %lld %lld %zu\n", static_cast<long long>(bad_h2f), static_cast<long long>(bad_f2h),
              sweep.size());
  return 0;
}
'''

PROBES = np.array([0.0, -0.0, 1.0, 65504.0, 1e-8, 3.14159265, 1e30, -2.5e-3], dtype=np.float32)


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> dict[str, list[str]]:
    specs = import_ops(Workspace(REPO))
    files = render_library([specs["scaled_gelu"].spec, specs["rms_norm"].spec])
    tmp = tmp_path_factory.mktemp("kernel_api")
    for rel, text in files.items():
        if rel.startswith("include/"):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)
    (tmp / "t.cc").write_text(PROGRAM)
    exe = tmp / "t"
    # Only the generated include folder and the workspace root: no runtime's headers.
    p = subprocess.run([CXX, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-pthread", "-I", str(tmp / "include"),
                        "-I", str(REPO), str(tmp / "t.cc"), "-o", str(exe)], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-4000:]
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()}


def test_kernel_runs_on_a_host_without_any_runtime(output):
    from math import erf, sqrt

    fields = output["gelu"]
    assert int(fields[0]) >= 1, "parallel_for never reached the host's run_parallel"
    for pair in fields[1:]:
        x, y = (float(v) for v in pair.split(":"))
        want = 2.0 * x * 0.5 * (1.0 + erf(x / sqrt(2.0)))
        assert abs(y - want) <= 1e-5 * max(1.0, abs(want)), (x, y, want)


def test_float16_kernel_matches_reference(output):
    rows, cols = 3, 5
    x = (0.25 * np.arange(rows * cols, dtype=np.float32) - 1.0).astype(np.float16).reshape(rows, cols)
    w = (1.0 + 0.5 * np.arange(cols, dtype=np.float32)).astype(np.float16)
    xf = x.astype(np.float32)
    want = xf / np.sqrt((xf * xf).mean(axis=-1, keepdims=True) + 1e-6) * w.astype(np.float32)
    got = np.array([int(v) for v in output["rms"]], dtype=np.uint16).view(np.float16).reshape(rows, cols)
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=2e-3, atol=2e-3)


def test_bulk_conversions_match_the_scalar_ones(output):
    """opkit::convert (F16C on this CPU) gives the bits to_acc / from_acc give: every half, ~1M floats."""
    bad_h2f, bad_f2h, n = map(int, output["convert"])
    assert n > 1_000_000 and (bad_h2f, bad_f2h) == (0, 0)


def test_16bit_types_round_like_numpy_and_ml_dtypes(output):
    import ml_dtypes

    f16 = [int(v) for v in output["f16"]]
    with np.errstate(over="ignore"):  # 1e30 -> inf, as in the kernel
        assert f16 == PROBES.astype(np.float16).view(np.uint16).tolist()
    bf16 = [int(v) for v in output["bf16"]]
    assert bf16 == PROBES.astype(ml_dtypes.bfloat16).view(np.uint16).tolist()
