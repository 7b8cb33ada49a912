// The kernel of MixedOp: only the maths. opkit generates the rest from spec.py
// (checks, attributes, output allocation, registration) into the build folder.
// The declaration you implement is in the generated header included below; `opkit build`
// shows it again if the spec changes. See opkit's docs, docs/kernel-api.md.
#include "mixed_op.opkit.h"

namespace opkit::ops {

template <typename T, typename I>
void MixedOp::compute([[maybe_unused]] opkit::Context& ctx, [[maybe_unused]] const Attrs& attrs, [[maybe_unused]] const opkit::Input<T>& x, [[maybe_unused]] const opkit::Input<I>& idx, [[maybe_unused]] const opkit::Optional<T>& bias, [[maybe_unused]] const opkit::Variadic<T>& extra, [[maybe_unused]] opkit::Output<T>& values, [[maybe_unused]] opkit::Output<int64_t>& picked) {
  // Write the maths here; see opkit's docs, "Kernel API" (docs/kernel-api.md).
  throw opkit::NotImplemented(name);
}

}  // namespace opkit::ops
