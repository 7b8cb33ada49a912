// Cummax: the running maximum of x along `dim` and the index where it was reached, as torch.cummax
// computes them: a tie takes the later index, and a NaN, once seen, stays the maximum.
//
// x is viewed as (outer, n, inner) around `dim`: every (outer, inner) line is an independent scan,
// and the lines are split over ONNX Runtime's intra-op threads.
#include "cummax.opkit.h"

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
  const T* in = x.data();
  T* out = values.data();
  int64_t* idx = indices.data();
  ctx.parallel_for(outer * inner, [=](int64_t begin, int64_t end) {
    for (int64_t line = begin; line < end; ++line) {
      const int64_t base = (line / inner) * n * inner + line % inner;
      T best = in[base];
      int64_t at = 0;
      for (int64_t k = 0; k < n; ++k) {
        const T v = in[base + k * inner];
        if (std::isnan(static_cast<double>(v)) || (!std::isnan(static_cast<double>(best)) && v >= best)) {
          best = v;
          at = k;
        }
        out[base + k * inner] = best;
        idx[base + k * inner] = at;
      }
    }
  }, /*cost_per_item=*/static_cast<double>(n) * 3);
}

}  // namespace opkit::ops
