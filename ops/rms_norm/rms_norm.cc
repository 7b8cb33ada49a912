// RmsNorm: y = x * rsqrt(mean(x^2 over the last axis) + epsilon) * weight.
//
// One row (the last axis) per work item, rows spread over ORT's thread pool. Each row is read
// twice: once for the sum of squares, once to scale; a row of a few thousand elements is still
// in L1/L2 for the second pass, so the op costs about one read and one write of x. The sum of
// squares uses 16 independent partial sums so that the compiler vectorises it (a single running
// sum is a serial dependency it may not reorder). float16 is converted to float32 once per row.
#include "rms_norm.opkit.h"

#include <cmath>
#include <string>

namespace opkit::ops {
namespace {

constexpr int kLanes = 16;

template <typename A>
inline A sum_squares(const A* v, int64_t n) {
  A part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) part[j] += v[i + j] * v[i + j];
  A s = 0;
  for (int j = 0; j < kLanes; ++j) s += part[j];
  for (; i < n; ++i) s += v[i] * v[i];
  return s;
}

// Rows of float32 / float64: no conversion.
template <typename T>
void rms_rows(const T* x, const T* w, T* y, int64_t begin, int64_t end, int64_t d, T eps) {
  for (int64_t r = begin; r < end; ++r) {
    const T* xr = x + r * d;
    T* yr = y + r * d;
    const T inv = T(1) / std::sqrt(sum_squares(xr, d) / static_cast<T>(d) + eps);
    for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * inv * w[i];
  }
}

}  // namespace

template <typename T>
void RmsNorm::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<T>& x,
                      const opkit::Input<T>& weight, opkit::Output<T>& y) {
  if (x.rank() < 1) throw opkit::Error("input 'x' must have rank >= 1 (it is normalised over its last axis)");
  const int64_t d = x.dim(-1);
  if (weight.rank() != 1 || weight.dim(0) != d)
    throw opkit::Error("input 'weight' must have shape [" + std::to_string(d) + "] (x's last dim), got rank " +
                       std::to_string(weight.rank()) + " with " + std::to_string(weight.size()) + " elements");
  if (!(attrs.epsilon >= 0.0f)) throw opkit::Error("attribute 'epsilon' must be >= 0");
  if (d == 0) return;
  const int64_t rows = x.size() / d;
  const T* in = x.data();
  T* out = y.data();

  if constexpr (std::is_same_v<T, opkit::float16>) {
    float* wf = ctx.scratch<float>(d);
    opkit::convert(weight.data(), wf, d);
    const float eps = attrs.epsilon;
    ctx.parallel_for(rows, [&](int64_t begin, int64_t end) {
      float* row = ctx.scratch<float>(d);  // one row in float32: converted in, scaled in place, converted out
      for (int64_t r = begin; r < end; ++r) {
        opkit::convert(in + r * d, row, d);
        const float inv = 1.0f / std::sqrt(sum_squares(row, d) / static_cast<float>(d) + eps);
        for (int64_t i = 0; i < d; ++i) row[i] = row[i] * inv * wf[i];
        opkit::convert(row, out + r * d, d);
      }
    }, /*cost_per_item=*/static_cast<double>(d) * 4);
  } else {
    const T* w = weight.data();
    const T eps = static_cast<T>(attrs.epsilon);
    ctx.parallel_for(rows, [&](int64_t begin, int64_t end) { rms_rows(in, w, out, begin, end, d, eps); },
                     /*cost_per_item=*/static_cast<double>(d) * 3);
  }
}

}  // namespace opkit::ops
