// SegmentSum: y[s] = sum of the rows r of data with segment_ids[r] == s (unsorted ids).
#include "segment_sum.opkit.h"

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

namespace opkit::ops {
namespace {

template <typename A, typename T> A to_a(T v) { return static_cast<A>(opkit::to_acc(v)); }
template <typename T, typename A> T from_a(A v) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(v);
  else return opkit::from_acc<T>(v);
}

}  // namespace

template <typename T>
void SegmentSum::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<T>& data,
                         const opkit::Input<int64_t>& segment_ids, opkit::Output<T>& y) {
  // Integers are summed in uint64_t so that overflow wraps (as in torch) instead of being undefined.
  using A = std::conditional_t<std::is_integral_v<T>, uint64_t, opkit::acc_t<T>>;
  if (data.rank() < 1) throw opkit::Error("data must have rank >= 1 (rows on axis 0), got a scalar");
  const int64_t rows = data.dim(0);
  if (segment_ids.size() != rows)
    throw opkit::Error("segment_ids has " + std::to_string(segment_ids.size()) + " ids, data has " +
                       std::to_string(rows) + " rows");
  const int64_t segs = attrs.num_segments;
  int64_t width = 1;  // elements per row (also when there are no rows: the output is zeros)
  for (int64_t a = 1; a < data.rank(); ++a) width *= data.dim(a);
  const int64_t* ids = segment_ids.data();
  for (int64_t r = 0; r < rows; ++r)  // every id checked before any write: never out of bounds
    if (ids[r] < 0 || ids[r] >= segs)
      throw opkit::Error("segment_ids[" + std::to_string(r) + "] = " + std::to_string(ids[r]) +
                         " is outside [0, num_segments=" + std::to_string(segs) + ")");
  const T* in = data.data();
  T* out = y.data();  // allocated by opkit: [num_segments, data.shape[1:]]
  const int64_t out_size = y.size();

  // Row blocks, each summed into a partial result of its own, then the partials added up: contiguous
  // reads and no write conflicts. Used when the partials are no bigger than the input.
  const int64_t blocks = std::min<int64_t>(8, std::max<int64_t>(1, rows * width / (int64_t{1} << 15)));
  if (blocks > 1 && segs * blocks <= rows) {
    std::vector<A> partial(static_cast<size_t>(blocks * out_size), A(0));
    ctx.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        A* acc = partial.data() + b * out_size;
        const int64_t r0 = rows * b / blocks, r1 = rows * (b + 1) / blocks;
        if (width == 1) {  // one value per row: no inner loop
          for (int64_t r = r0; r < r1; ++r) acc[ids[r]] += to_a<A>(in[r]);
          continue;
        }
        for (int64_t r = r0; r < r1; ++r) {
          const T* src = in + r * width;
          A* dst = acc + ids[r] * width;
          for (int64_t c = 0; c < width; ++c) dst[c] += to_a<A>(src[c]);
        }
      }
    }, 1e9);
    ctx.parallel_for(out_size, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        A s = A(0);
        for (int64_t b = 0; b < blocks; ++b) s += partial[static_cast<size_t>(b * out_size + i)];
        out[i] = from_a<T, A>(s);
      }
    }, static_cast<double>(blocks));
    return;
  }
  // Otherwise (many segments): split the columns; each task sums all rows of its columns in row order.
  // Narrow rows give one task, i.e. a serial loop.
  ctx.parallel_for(width, [&](int64_t c0, int64_t c1) {
    const int64_t n = c1 - c0;
    std::vector<A> acc(static_cast<size_t>(segs * n), A(0));
    for (int64_t r = 0; r < rows; ++r) {
      const T* src = in + r * width + c0;
      A* dst = acc.data() + ids[r] * n;
      for (int64_t c = 0; c < n; ++c) dst[c] += to_a<A>(src[c]);
    }
    for (int64_t s = 0; s < segs; ++s)
      for (int64_t c = 0; c < n; ++c) out[s * width + c0 + c] = from_a<T, A>(acc[static_cast<size_t>(s * n + c)]);
  }, width >= 16 ? static_cast<double>(rows) + static_cast<double>(segs) : 1e-3);
}

}  // namespace opkit::ops
