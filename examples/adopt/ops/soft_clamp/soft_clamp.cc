// SoftClamp: y = limit * tanh(x / limit), fancylib::soft_clamp's maths, elementwise over ONNX Runtime's
// intra-op threads.
#include "soft_clamp.opkit.h"

#include <cmath>

namespace opkit::ops {

template <typename T>
void SoftClamp::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<T>& x, opkit::Output<T>& y) {
  const T* in = x.data();
  T* out = y.data();
  const T limit = static_cast<T>(attrs.limit);
  ctx.parallel_for(x.size(), [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = limit * std::tanh(in[i] / limit);
  }, /*cost_per_item=*/20);  // std::tanh
}

}  // namespace opkit::ops
