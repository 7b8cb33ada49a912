// RotaryEmbedding: rotate feature pairs of x [..., seq, head_dim] by position-dependent angles.
//
// Two steps, both over ORT's thread pool:
//  1. a cos/sin table [P, half] for the P distinct position rows (P = seq, or batch * seq), in the
//     compute type A (float32 for float16/float32, float64 for float64), computed exactly as the
//     reference does: inv_freq in double rounded to A, angle = A(p) * inv_freq in A;
//  2. every row of x (one head_dim vector) is rotated with its table row: a vectorisable loop.
// The table is tiny next to x (it is shared by all heads), so the op costs about one pass over x.
#include "rotary_embedding.opkit.h"

#include <cmath>
#include <string>
#include <vector>

namespace opkit::ops {
namespace {

// Rotate one row of h pairs; A is the compute type, the row is already in A.
template <typename A>
inline void rotate_half_split(const A* __restrict x, A* __restrict y, const A* c, const A* s, int64_t h) {
  for (int64_t i = 0; i < h; ++i) {
    const A a = x[i], b = x[i + h];
    y[i] = a * c[i] - b * s[i];
    y[i + h] = b * c[i] + a * s[i];
  }
}

// Interleaved pairs (x[2i], x[2i+1]) with a table expanded to the row's length: c = (cos_i, cos_i),
// s = (-sin_i, sin_i). Adjacent-pair loads and stores vectorise (a strided half-split view does not).
template <typename A>
inline void rotate_interleaved(const A* __restrict x, A* __restrict y, const A* c, const A* s, int64_t d) {
  for (int64_t i = 0; i < d; i += 2) {
    const A a = x[i], b = x[i + 1];
    y[i] = a * c[i] + b * s[i];
    y[i + 1] = b * c[i + 1] + a * s[i + 1];
  }
}

}  // namespace

template <typename T>
void RotaryEmbedding::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<T>& x,
                              const opkit::Input<int64_t>& positions, opkit::Output<T>& y) {
  using A = opkit::acc_t<T>;
  if (x.rank() < 2) throw opkit::Error("input 'x' must be [..., seq, head_dim] (rank >= 2), got rank " +
                                       std::to_string(x.rank()));
  const int64_t d = x.dim(-1);
  const int64_t seq = x.dim(-2);
  if (d % 2 != 0) throw opkit::Error("head_dim (x's last dim) must be even, got " + std::to_string(d));
  const int64_t h = d / 2;
  int64_t batch = 1;  // position rows: batch * seq
  if (positions.rank() == 1) {
    if (positions.dim(0) != seq)
      throw opkit::Error("input 'positions' [" + std::to_string(positions.dim(0)) + "] must be [seq] = [" +
                         std::to_string(seq) + "] (x's dim -2)");
  } else if (positions.rank() == 2 && x.rank() >= 3) {
    batch = x.dim(0);
    if (positions.dim(0) != batch || positions.dim(1) != seq)
      throw opkit::Error("input 'positions' [" + std::to_string(positions.dim(0)) + ", " +
                         std::to_string(positions.dim(1)) + "] must be [batch, seq] = [" + std::to_string(batch) +
                         ", " + std::to_string(seq) + "] (x's dims 0 and -2)");
  } else {
    throw opkit::Error("input 'positions' must be [seq], or [batch, seq] when x has rank >= 3; got rank " +
                       std::to_string(positions.rank()) + " with x of rank " + std::to_string(x.rank()));
  }
  if (x.size() == 0) return;

  // 1. the cos/sin table.
  const int64_t prows = batch * seq;
  std::vector<A> inv_freq(static_cast<size_t>(h));
  for (int64_t i = 0; i < h; ++i)
    inv_freq[static_cast<size_t>(i)] =
        static_cast<A>(std::pow(static_cast<double>(attrs.base), static_cast<double>(i) * (-2.0 / static_cast<double>(d))));
  const bool interleaved = attrs.interleaved;
  const int64_t width = interleaved ? d : h;  // interleaved: (cos, cos) and (-sin, sin) per pair
  std::vector<A> cos_t(static_cast<size_t>(prows * width)), sin_t(static_cast<size_t>(prows * width));
  const int64_t* pos = positions.data();
  ctx.parallel_for(prows, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const A pa = static_cast<A>(pos[p]);
      A* c = cos_t.data() + p * width;
      A* s = sin_t.data() + p * width;
      for (int64_t i = 0; i < h; ++i) {
        const A angle = pa * inv_freq[static_cast<size_t>(i)];
        const A ci = std::cos(angle), si = std::sin(angle);
        if (interleaved) {
          c[2 * i] = c[2 * i + 1] = ci;
          s[2 * i] = -si;
          s[2 * i + 1] = si;
        } else {
          c[i] = ci;
          s[i] = si;
        }
      }
    }
  }, /*cost_per_item=*/static_cast<double>(h) * 40);

  // 2. rotate every row of x. Row r = (b, ..., s): its table row is b * seq + s.
  const int64_t rows = x.size() / d;
  const int64_t rows_per_batch = rows / batch;
  const T* in = x.data();
  T* out = y.data();
  ctx.parallel_for(rows, [&](int64_t begin, int64_t end) {
    std::vector<A> buf;
    if constexpr (!std::is_same_v<T, A>) buf.resize(static_cast<size_t>(2 * d));
    for (int64_t r = begin; r < end; ++r) {
      const int64_t t = (r / rows_per_batch) * seq + r % seq;
      const A* c = cos_t.data() + t * width;
      const A* s = sin_t.data() + t * width;
      if constexpr (std::is_same_v<T, A>) {
        if (interleaved) rotate_interleaved(in + r * d, out + r * d, c, s, d);
        else rotate_half_split(in + r * d, out + r * d, c, s, h);
      } else {  // float16: convert the row to float, rotate, convert back
        A* xa = buf.data();
        A* ya = buf.data() + d;
        for (int64_t i = 0; i < d; ++i) xa[i] = opkit::to_acc(in[r * d + i]);
        if (interleaved) rotate_interleaved(xa, ya, c, s, d);
        else rotate_half_split(xa, ya, c, s, h);
        for (int64_t i = 0; i < d; ++i) out[r * d + i] = opkit::from_acc<T>(ya[i]);
      }
    }
  }, /*cost_per_item=*/static_cast<double>(d) * (std::is_same_v<T, A> ? 2 : 8));
}

}  // namespace opkit::ops
