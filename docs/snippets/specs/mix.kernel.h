template <typename T, typename I>
void Mix::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<T>& x, const opkit::Input<I>& ids,
                  const opkit::Optional<T>& bias, const opkit::Variadic<T>& xs, opkit::Output<T>& y,
                  opkit::Output<I>& picked);
