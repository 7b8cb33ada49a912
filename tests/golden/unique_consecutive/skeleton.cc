// The kernel of UniqueConsecutive: only the maths. opkit generates the rest from spec.py
// (checks, attributes, output allocation, registration) into the build folder.
// The declaration you implement is in the generated header included below; `opkit build`
// shows it again if the spec changes. See opkit's docs, docs/kernel-api.md.
#include "unique_consecutive.opkit.h"

namespace opkit::ops {

void UniqueConsecutive::compute([[maybe_unused]] opkit::Context& ctx, [[maybe_unused]] const Attrs& attrs, [[maybe_unused]] const opkit::Input<int64_t>& x, [[maybe_unused]] opkit::Output<int64_t>& values, [[maybe_unused]] opkit::Output<int64_t>& counts) {
  // Write the maths here; see opkit's docs, "Kernel API" (docs/kernel-api.md).
  throw opkit::NotImplemented(name);
}

}  // namespace opkit::ops
