// Cummax: the running maximum of x along `dim` and the index where it was reached, as torch.cummax
// computes them: a tie takes the later index, and a NaN, once seen, stays the maximum.
//
// x is viewed as (outer, n, inner) around `dim`: every (outer, inner) line is an independent scan; the lines
// are split over ONNX Runtime's intra-op threads and neighbouring lines are scanned together, row by row.
#include "cummax.opkit.h"

#include <algorithm>
#include <cmath>

namespace opkit::ops {

template <typename T>
void Cummax::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<T>& x, opkit::Output<T>& values,
                     opkit::Output<int64_t>& indices) {
  if (x.rank() == 0) {  // torch treats a scalar as one element
    values.data()[0] = x.data()[0];
    indices.data()[0] = 0;
    return;
  }
  const int64_t rank = x.rank();
  const int64_t axis = attrs.dim < 0 ? attrs.dim + rank : attrs.dim;
  if (axis < 0 || axis >= rank)
    throw opkit::Error("dim " + std::to_string(attrs.dim) + " is out of range for rank " + std::to_string(rank));
  const int64_t n = x.dim(axis);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int64_t d = axis + 1; d < rank; ++d) inner *= x.dim(d);
  if (x.size() == 0) return;  // nothing to scan (n == 0, or no lines)
  const T* in = x.data();
  T* out = values.data();
  int64_t* idx = indices.data();
  // Lines [begin, end) of the (outer, inner) grid: consecutive lines of one outer index are scanned together,
  // row k after row k - 1, so memory is read in order whichever axis `dim` is.
  ctx.parallel_for(outer * inner, [=](int64_t begin, int64_t end) {
    for (int64_t line = begin; line < end;) {
      const int64_t o = line / inner, j0 = line % inner;
      const int64_t j1 = std::min(inner, j0 + (end - line));
      const T* src = in + o * n * inner;
      T* val = out + o * n * inner;
      int64_t* at = idx + o * n * inner;
      for (int64_t j = j0; j < j1; ++j) {
        val[j] = src[j];
        at[j] = 0;
      }
      for (int64_t k = 1; k < n; ++k) {
        const T* row = src + k * inner;
        const T* prev = val + (k - 1) * inner;
        const int64_t* prev_at = at + (k - 1) * inner;
        T* cur = val + k * inner;
        int64_t* cur_at = at + k * inner;
        for (int64_t j = j0; j < j1; ++j) {
          const T v = row[j];
          const T best = prev[j];
          const bool take = std::isnan(static_cast<double>(v)) ||
                            (!std::isnan(static_cast<double>(best)) && v >= best);
          cur[j] = take ? v : best;
          cur_at[j] = take ? k : prev_at[j];
        }
      }
      line += j1 - j0;
    }
  }, /*cost_per_item=*/static_cast<double>(n) * 3);
}

}  // namespace opkit::ops
