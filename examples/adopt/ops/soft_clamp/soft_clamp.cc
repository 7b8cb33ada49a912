// The kernel of SoftClamp: only the maths. opkit generates the rest from spec.py
// (checks, attributes, output allocation, registration) into the build folder.
// The declaration you implement is in the generated header included below; `opkit build`
// shows it again if the spec changes. See "Kernel API" in opkit's README.
#include "soft_clamp.opkit.h"

namespace opkit::ops {

template <typename T>
void SoftClamp::compute([[maybe_unused]] opkit::Context& ctx, [[maybe_unused]] const Attrs& attrs, [[maybe_unused]] const opkit::Input<T>& x, [[maybe_unused]] opkit::Output<T>& y) {
  // Write the maths here; see the README's "Kernel API".
  throw opkit::NotImplemented(name);
}

}  // namespace opkit::ops
