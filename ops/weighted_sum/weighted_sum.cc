// WeightedSum: y = sum_i weights[i] * xs[i], accumulated in acc_t<T> (float for the 16-bit floats).
#include "weighted_sum.opkit.h"

#include <algorithm>
#include <string>

namespace opkit::ops {
namespace {

std::string shape_text(const opkit::Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

template <typename T>
void WeightedSum::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Variadic<T>& xs,
                          opkit::Output<T>& y) {
  using A = opkit::acc_t<T>;
  if (attrs.weights.size() != xs.size())
    throw opkit::Error(std::to_string(xs.size()) + " tensor(s) in xs but " + std::to_string(attrs.weights.size()) +
                       " weight(s); give one weight per tensor");
  for (size_t i = 1; i < xs.size(); ++i)
    if (xs[i].shape() != xs[0].shape())
      throw opkit::Error("xs[" + std::to_string(i) + "] has shape " + shape_text(xs[i].shape()) +
                         ", xs[0] has " + shape_text(xs[0].shape()) + " (no broadcasting)");
  std::vector<A> w(attrs.weights.begin(), attrs.weights.end());
  T* out = y.allocate(xs[0].shape());
  const size_t m = xs.size();
  // Blocks of the output, each summed over all inputs in order: the inner loops vectorize.
  ctx.parallel_for(y.size(), [&](int64_t begin, int64_t end) {
    constexpr int64_t kBlock = 1024;
    A acc[kBlock];
    for (int64_t b = begin; b < end; b += kBlock) {
      const int64_t n = std::min(kBlock, end - b);
      const T* x0 = xs[0].data() + b;
      for (int64_t i = 0; i < n; ++i) acc[i] = w[0] * opkit::to_acc(x0[i]);
      for (size_t j = 1; j < m; ++j) {
        const T* xj = xs[j].data() + b;
        const A wj = w[j];
        for (int64_t i = 0; i < n; ++i) acc[i] += wj * opkit::to_acc(xj[i]);
      }
      for (int64_t i = 0; i < n; ++i) out[b + i] = opkit::from_acc<T>(acc[i]);
    }
  }, static_cast<double>(m));
}

}  // namespace opkit::ops
