"""opkit::fast (templates/cpp/math.h.j2): the maximum errors documented in the header and in
docs/kernel-api.md (Kernel helpers) hold on dense grids, both for plain (baseline) calls and through
opkit::simd_for (run-time dispatched, vectorised, possibly with FMA contraction), and special values
behave as documented."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from opkit.codegen.render import render_library

CXX = shutil.which("c++") or shutil.which("g++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler")

# Documented bounds (keep in sync with math.h.j2 and docs/kernel-api.md (Kernel helpers)).
MAX_ULP = {"exp": 1.1, "erf": 7.0, "tanh": 1.6, "sigmoid": 2.4}
MAX_REL = {"exp": 1.0e-7, "erf": 4.1e-7, "tanh": 1.6e-7, "sigmoid": 1.5e-7}
MAX_ABS_ERF = 4.1e-7
MAX_ABS_GELU, MAX_REL_GELU = 1.2e-6, 2.5e-7  # absolute for |x| <= 10, relative for x >= 0

PROGRAM = r'''
#include "opkit/math.h"
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

static double ulps(float got, double want) {
  const float w = static_cast<float>(want);
  double ulp = std::nextafter(std::fabs(w), INFINITY) - std::fabs(w);
  if (w == 0) ulp = std::numeric_limits<float>::denorm_min();
  return std::fabs(static_cast<double>(got) - want) / ulp;
}

template <typename F, typename R>
void check(const char* name, F fast, R exact, float lo, float hi) {
  std::vector<float> xs;
  const int n = 2000000;
  for (int i = 0; i <= n; ++i) xs.push_back(lo + (hi - lo) * static_cast<float>(i) / n);
  for (float m = 1e-30f; m < 1.0f; m *= 1.01f) { xs.push_back(m); xs.push_back(-m); }  // small magnitudes
  std::vector<float> ys(xs.size());
  const float* in = xs.data();
  float* out = ys.data();
  opkit::simd_for(0, static_cast<int64_t>(xs.size()), [=](int64_t i) { out[i] = fast(in[i]); });
  double max_ulp = 0, max_rel = 0, max_abs = 0;
  long mismatch = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = exact(static_cast<double>(xs[i]));
    const float scalar = fast(xs[i]);  // baseline code; the simd_for clones may contract into FMAs
    if (!(scalar == ys[i] || (std::isnan(scalar) && std::isnan(ys[i])))) ++mismatch;
    for (const float got : {ys[i], scalar}) {
      max_ulp = std::fmax(max_ulp, ulps(got, want));
      max_abs = std::fmax(max_abs, std::fabs(got - want));
      if (want != 0) max_rel = std::fmax(max_rel, std::fabs(got - want) / std::fabs(want));
    }
  }
  std::printf("%s ulp=%.4g rel=%.4g abs=%.4g simd_mismatch=%ld\n", name, max_ulp, max_rel, max_abs, mismatch);
}

// gelu: y -> 0 from below for x < 0, so its relative error is measured for x >= 0 and near 0 only.
static void check_gelu() {
  std::vector<float> xs;
  const int n = 4000000;
  for (int i = 0; i <= n; ++i) xs.push_back(-10.0f + 20.0f * static_cast<float>(i) / n);
  for (float m = 1e-30f; m < 1.0f; m *= 1.01f) { xs.push_back(m); xs.push_back(-m); }
  std::vector<float> ys(xs.size());
  const float* in = xs.data();
  float* out = ys.data();
  opkit::simd_for(0, static_cast<int64_t>(xs.size()), [=](int64_t i) { out[i] = opkit::fast::gelu(in[i]); });
  double max_abs = 0, max_rel = 0;
  long mismatch = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i], want = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    const float scalar = opkit::fast::gelu(xs[i]);
    if (!(scalar == ys[i])) ++mismatch;
    for (const float got : {ys[i], scalar}) {
      max_abs = std::fmax(max_abs, std::fabs(got - want));
      if (want != 0 && (x >= 0 || x > -1e-3)) max_rel = std::fmax(max_rel, std::fabs(got - want) / std::fabs(want));
    }
  }
  std::printf("gelu ulp=0 rel=%.4g abs=%.4g simd_mismatch=%ld\n", max_rel, max_abs, mismatch);
}

static void special(const char* name, float (*f)(float)) {
  const float v[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e30f, -1e30f, 200.0f, -200.0f};
  std::printf("%s special", name);
  for (float x : v) {
    const float y = f(x);
    std::printf(" %s", std::isnan(y) ? "nan" : std::isinf(y) ? (y > 0 ? "inf" : "-inf")
                       : y == 0 ? (std::signbit(y) ? "-0" : "0") : "");
    if (!std::isnan(y) && !std::isinf(y) && y != 0) std::printf("%.9g", y);
  }
  std::printf("\n");
}

int main() {
  using namespace opkit;
  check("exp", [](float x) { return fast::exp(x); }, [](double x) { return std::exp(x); }, -87.3f, 88.7f);
  check("erf", [](float x) { return fast::erf(x); }, [](double x) { return std::erf(x); }, -10.0f, 10.0f);
  check("tanh", [](float x) { return fast::tanh(x); }, [](double x) { return std::tanh(x); }, -12.0f, 12.0f);
  check("sigmoid", [](float x) { return fast::sigmoid(x); }, [](double x) { return 1.0 / (1.0 + std::exp(-x)); },
        -87.0f, 88.0f);
  check_gelu();
  special("exp", [](float x) { return fast::exp(x); });
  special("gelu", [](float x) { return fast::gelu(x); });
  special("erf", [](float x) { return fast::erf(x); });
  special("tanh", [](float x) { return fast::tanh(x); });
  special("sigmoid", [](float x) { return fast::sigmoid(x); });
  std::printf("double erf(0.5)=%.17g\n", fast::erf(0.5));
  std::printf("double gelu(0.5)=%.17g\n", fast::gelu(0.5));
  return 0;
}
'''


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fastmath")
    inc = tmp / "include" / "opkit"
    inc.mkdir(parents=True)
    (inc / "math.h").write_text(_math_header())
    (tmp / "t.cc").write_text(PROGRAM)
    exe = tmp / "t"
    # the flags opkit's build uses (templates/cpp/ops.cmake.j2), warnings as errors
    cmd = [CXX, "-std=c++17", "-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wextra", "-Werror",
           "-I", str(tmp / "include"), str(tmp / "t.cc"), "-o", str(exe)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, check=True).stdout
    errs, specials = {}, {}
    for line in out.splitlines():
        m = re.match(r"(\w+) ulp=(\S+) rel=(\S+) abs=(\S+) simd_mismatch=(\d+)", line)
        if m:
            errs[m[1]] = dict(ulp=float(m[2]), rel=float(m[3]), abs=float(m[4]), mismatch=int(m[5]))
        m = re.match(r"(\w+) special (.*)", line)
        if m:
            specials[m[1]] = m[2].split()
    return errs, specials, out


def _math_header() -> str:
    from opkit.codegen.env import render

    return render("cpp/math.h.j2")


def test_header_is_part_of_the_generated_library():
    files = render_library([])
    assert "include/opkit/math.h" in files
    assert '#include "opkit/math.h"' in files["include/opkit/kernel.h"]


@pytest.mark.parametrize("fn", sorted(MAX_ULP))
def test_max_error_within_documented_bound(results, fn):
    errs, _, out = results
    e = errs[fn]
    assert e["ulp"] <= MAX_ULP[fn], out
    assert e["rel"] <= MAX_REL[fn], out
    if fn == "erf":
        assert e["abs"] <= MAX_ABS_ERF, out
    # not vacuous: an approximation, so some error must show on a dense grid
    assert e["ulp"] > 0


def test_gelu_within_documented_bound_and_vectorised_alike(results):
    errs, _, out = results
    e = errs["gelu"]
    assert 0 < e["abs"] <= MAX_ABS_GELU, out
    assert 0 < e["rel"] <= MAX_REL_GELU, out


def test_special_values(results):
    _, sp, out = results
    # order: NaN, +inf, -inf, 0, -0, 1e30, -1e30, 200, -200
    assert sp["exp"][:5] == ["nan", "inf", "0", "1", "1"], out
    assert sp["exp"][5:7] == ["inf", "0"] and sp["exp"][7] == "inf" and sp["exp"][8] == "0", out
    assert sp["erf"] == ["nan", "1", "-1", "0", "-0", "1", "-1", "1", "-1"], out
    assert sp["tanh"] == ["nan", "1", "-1", "0", "0", "1", "-1", "1", "-1"], out  # tanh(-0) = +0 (documented)
    assert sp["sigmoid"][:5] == ["nan", "1", "0", "0.5", "0.5"], out
    assert sp["sigmoid"][5:] == ["1", "0", "1", "0"], out
    # gelu: NaN, +inf, -inf -> NaN (as torch), 0, -0 -> +0, 1e30 (within 2.5e-7), -1e30 -> -0, 200, -200 -> -0
    g = sp["gelu"]
    assert g[:5] == ["nan", "inf", "nan", "0", "0"] and g[6] == "-0" and g[8] == "-0", out
    assert abs(float(g[5]) / 1e30 - 1) <= MAX_REL_GELU and abs(float(g[7]) / 200 - 1) <= MAX_REL_GELU, out


def test_double_overloads_are_libm(results):
    _, _, out = results
    assert "double erf(0.5)=0.52049987781304652" in out
    assert "double gelu(0.5)=0.34573123063700656" in out
