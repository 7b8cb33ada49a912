// ScaledGelu: y = alpha * x * Phi(x), Phi the standard normal CDF (exact, erf form).
#include "scaled_gelu.opkit.h"

#include <cmath>

namespace opkit::ops {

template <typename T>
void ScaledGelu::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<T>& x, opkit::Output<T>& y) {
  const T* in = x.data();
  T* out = y.data();
  const T half_alpha = static_cast<T>(0.5) * static_cast<T>(attrs.alpha);
  const T inv_sqrt2 = static_cast<T>(0.70710678118654752440);
  ctx.parallel_for(x.size(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T v = in[i];
      out[i] = half_alpha * v * (static_cast<T>(1) + std::erf(v * inv_sqrt2));
    }
  }, /*cost_per_item=*/20);
}

}  // namespace opkit::ops
