// The kernel of LinearAct: only the maths. opkit generates the rest from spec.py
// (checks, attributes, output allocation, registration) into the build folder.
// The declaration you implement is in the generated header included below; `opkit build`
// shows it again if the spec changes. See opkit's docs, docs/kernel-api.md.
#include "linear_act.opkit.h"

namespace opkit::ops {

// What prepare computes once per node from the constant inputs (weight, bias); see docs/kernel-state.md.
template <typename T>
struct LinearAct::State {
};

template <typename T>
LinearAct::State<T> LinearAct::prepare([[maybe_unused]] const Attrs& attrs, [[maybe_unused]] const opkit::Input<T>& weight, [[maybe_unused]] const opkit::Optional<T>& bias) {
  return {};
}

template <typename T>
void LinearAct::compute([[maybe_unused]] opkit::Context& ctx, [[maybe_unused]] const Attrs& attrs, [[maybe_unused]] const State<T>& state, [[maybe_unused]] const opkit::Input<T>& x, [[maybe_unused]] const opkit::Input<T>& weight, [[maybe_unused]] const opkit::Optional<T>& bias, [[maybe_unused]] opkit::Output<T>& y) {
  // Write the maths here; see opkit's docs, "Kernel API" (docs/kernel-api.md).
  throw opkit::NotImplemented(name);
}

}  // namespace opkit::ops
