// UniqueConsecutive: the value and length of each run of equal consecutive entries of a 1-D tensor.
// The output size (the number of runs) is known only after a first pass over the data.
#include "unique_consecutive.opkit.h"

#include <algorithm>
#include <vector>

namespace opkit::ops {

void UniqueConsecutive::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<int64_t>& x,
                                opkit::Output<int64_t>& values, opkit::Output<int64_t>& counts) {
  (void)attrs;
  const int64_t n = x.size();
  const int64_t* v = x.data();
  // Pass 1: count the runs starting in each block (entry i starts a run if i == 0 or v[i] != v[i-1]).
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(64, n / (int64_t{1} << 15)));
  std::vector<int64_t> starts_in(static_cast<size_t>(blocks) + 1, 0);
  auto block_range = [&](int64_t b) { return std::pair<int64_t, int64_t>{n * b / blocks, n * (b + 1) / blocks}; };
  ctx.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      auto [i0, i1] = block_range(b);
      int64_t c = 0;
      for (int64_t i = i0; i < i1; ++i) c += (i == 0 || v[i] != v[i - 1]);
      starts_in[static_cast<size_t>(b) + 1] = c;
    }
  }, 1e9);
  for (int64_t b = 0; b < blocks; ++b) starts_in[static_cast<size_t>(b) + 1] += starts_in[static_cast<size_t>(b)];
  const int64_t runs = starts_in[static_cast<size_t>(blocks)];
  int64_t* out_v = values.allocate({runs});
  int64_t* out_c = counts.allocate({runs});
  if (runs == 0) return;
  // Pass 2: each block writes its runs' values, and their start positions into counts.
  ctx.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      auto [i0, i1] = block_range(b);
      int64_t j = starts_in[static_cast<size_t>(b)];
      for (int64_t i = i0; i < i1; ++i)
        if (i == 0 || v[i] != v[i - 1]) {
          out_v[j] = v[i];
          out_c[j++] = i;
        }
    }
  }, 1e9);
  // Pass 3: a run's length is the next run's start minus its own (in place, in order: cheap).
  for (int64_t j = 0; j + 1 < runs; ++j) out_c[j] = out_c[j + 1] - out_c[j];
  out_c[runs - 1] = n - out_c[runs - 1];
}

}  // namespace opkit::ops
