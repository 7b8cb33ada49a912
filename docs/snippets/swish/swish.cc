// ops/swish/swish.cc
#include "swish.opkit.h"

#include <cmath>

namespace opkit::ops {

template <typename T>
void Swish::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<T>& x, opkit::Output<T>& y) {
  const T* in = x.data();
  T* out = y.data();  // allocated by opkit: shapes={"y": "x"}
  const T beta = static_cast<T>(attrs.beta);
  ctx.parallel_for(x.size(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = in[i] / (T(1) + std::exp(-beta * in[i]));
  }, /*cost_per_item=*/10);
}

}  // namespace opkit::ops
