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

// One entry of a row: its value (in acc_t) and its index.
template <typename A>
struct Item {
  A v;
  int64_t i;
};

// a before b in the output order (a total order: value, then index).
template <typename A>
struct Before {
  bool largest;
  bool operator()(const Item<A>& a, const Item<A>& b) const {
    const bool na = is_nan(a.v), nb = is_nan(b.v);
    if (na || nb) {
      if (na && nb) return a.i < b.i;
      return largest ? na : nb;  // NaN first when largest, last otherwise
    }
    if (a.v != b.v) return largest ? a.v > b.v : a.v < b.v;
    return a.i < b.i;
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
  const bool small_k = k * 16 <= n;
  ctx.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    const Before<A> before{attrs.largest};
    std::vector<Item<A>> items;
    items.reserve(static_cast<size_t>(small_k ? k : n));
    for (int64_t r = r0; r < r1; ++r) {
      const T* src = in + r * n;
      items.clear();
      if (small_k) {
        // A heap of the k best so far, the worst on top: most entries are rejected by one comparison.
        for (int64_t i = 0; i < k; ++i) items.push_back({opkit::to_acc(src[i]), i});
        std::make_heap(items.begin(), items.end(), before);
        for (int64_t i = k; i < n; ++i) {
          const Item<A> it{opkit::to_acc(src[i]), i};
          if (before(it, items.front())) {
            std::pop_heap(items.begin(), items.end(), before);
            items.back() = it;
            std::push_heap(items.begin(), items.end(), before);
          }
        }
        std::sort_heap(items.begin(), items.end(), before);
      } else {
        for (int64_t i = 0; i < n; ++i) items.push_back({opkit::to_acc(src[i]), i});
        if (k < n) std::nth_element(items.begin(), items.begin() + (k - 1), items.end(), before);
        std::sort(items.begin(), items.begin() + k, before);
      }
      for (int64_t j = 0; j < k; ++j) {
        out_v[r * k + j] = src[items[static_cast<size_t>(j)].i];
        out_i[r * k + j] = items[static_cast<size_t>(j)].i;
      }
    }
  }, cost);
}

}  // namespace opkit::ops
