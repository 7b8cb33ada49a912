// TopKLastAxis: per row of the last axis, the k largest (or smallest) entries, sorted, with their indices.
// Order: by value, ties by the lower index; NaN is larger than every number (as torch.sort).
#include "top_k_last_axis.opkit.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

namespace opkit::ops {
namespace {

template <typename A>
bool is_nan(A v) {
  if constexpr (std::is_floating_point_v<A>) return std::isnan(v);
  else return false;
}

// a before b in the output order (a total order: value, then index).
template <typename A>
struct Before {
  const A* v;
  bool largest;
  bool operator()(int64_t a, int64_t b) const {
    const A x = v[a], y = v[b];
    const bool nx = is_nan(x), ny = is_nan(y);
    if (nx || ny) {
      if (nx && ny) return a < b;
      return largest ? nx : ny;  // NaN first when largest, last otherwise
    }
    if (x != y) return largest ? x > y : x < y;
    return a < b;
  }
};

}  // namespace

template <typename T>
void TopKLastAxis::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<T>& x,
                           opkit::Output<T>& values, opkit::Output<int64_t>& indices) {
  using A = opkit::acc_t<T>;
  if (x.rank() < 1) throw opkit::Error("x must have rank >= 1, got a scalar");
  const int64_t n = x.dim(-1), k = attrs.k;
  if (k > n) throw opkit::Error("k=" + std::to_string(k) + " is larger than the last axis of x (" + std::to_string(n) + ")");
  const int64_t rows = n ? x.size() / n : 0;
  if (k == 0 || rows == 0) return;
  const T* in = x.data();
  T* out_v = values.data();  // allocated by opkit: [x.shape[:-1], k]
  int64_t* out_i = indices.data();
  const double cost = static_cast<double>(n) * (1.0 + std::log2(static_cast<double>(k) + 1.0));
  ctx.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    std::vector<A> row(static_cast<size_t>(n));
    std::vector<int64_t> idx(static_cast<size_t>(n));
    for (int64_t r = r0; r < r1; ++r) {
      const T* src = in + r * n;
      for (int64_t i = 0; i < n; ++i) {
        row[static_cast<size_t>(i)] = opkit::to_acc(src[i]);
        idx[static_cast<size_t>(i)] = i;
      }
      const Before<A> before{row.data(), attrs.largest};
      if (k < n / 8) {
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), before);
      } else {
        if (k < n) std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), before);
        std::sort(idx.begin(), idx.begin() + k, before);
      }
      for (int64_t j = 0; j < k; ++j) {
        const int64_t i = idx[static_cast<size_t>(j)];
        out_v[r * k + j] = src[i];
        out_i[r * k + j] = i;
      }
    }
  }, cost);
}

}  // namespace opkit::ops
