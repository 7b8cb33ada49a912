// LinearAct: y = act(x @ weight^T + bias), bias and activation fused into the GEMM's epilogue.
//
// x [M, K] (the leading dims flattened), weight [N, K] (torch's linear layout), y [M, N].
// prepare (once per node; weight and bias are declared constant in the spec) parses the activation, checks
// the layer's shape and, on a CPU with AVX-512, packs weight (and bias) into panels of 2 vectors' width, the
// layout a GEMM micro-kernel reads, as ONNX Runtime's MLAS does for its MatMul. compute picks the path that
// measured fastest for the shape (docs/kernel-state.md has the figures):
//  - AVX-512, more rows: the packed weight's panels, one MR x 2-vector tile of y at a time in registers,
//    x's rows packed per block of k, bias and activation applied as each tile is final; each thread reads
//    its panels of the weight once per call, prefetching the next block while it computes one;
//  - AVX-512, 1-6 rows: the same panels streamed once, two panels at a time, each sum in the tiles'
//    order (a row gives the same bits alone as in a batch); many rows for the columns (M >= N / 4): the
//    threads split the rows instead of the panels;
//  - one row, no AVX-512: OpenBLAS's GEMV on blocks of weight's rows, one per thread (weight read once);
//  - a few rows (M <= 8) over a weight larger than the caches, no AVX-512: hand-written dot products straight
//    from weight's rows (AVX2+FMA, chosen at run time, or portable), reading weight from memory once;
//  - otherwise: OpenBLAS's GEMM (single-threaded) on one block of y per thread of the runtime, each
//    block then gets bias and activation while it is in cache (it packs its own panels per call, but
//    with many rows that pass over the weight is a small part of the work).
#include "linear_act.opkit.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "opkit/blas.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LINEAR_ACT_X86 1
#endif

namespace opkit::ops {
namespace {

enum class Act { kNone, kRelu, kGelu, kSilu };

Act parse_act(const std::string& s) {
  if (s == "relu") return Act::kRelu;
  if (s == "gelu") return Act::kGelu;
  if (s == "silu") return Act::kSilu;
  if (s == "none") return Act::kNone;
  throw opkit::Error("attribute 'activation': expected one of relu, gelu, silu, none, got \"" + s + "\"");
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
bool has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && std::getenv("OPKIT_LINEAR_ACT_NO_AVX512") == nullptr;
  return yes;
}
#else
bool has_avx512() { return false; }
#endif

// ---- activations (applied to one block row segment, in place) --------------------------------
inline float silu(float v) { return v * opkit::fast::sigmoid(v); }
inline double silu(double v) { return v / (1.0 + std::exp(-v)); }

template <typename T>
inline void activate_row(T* __restrict y, int64_t n, Act act) {
  switch (act) {
    case Act::kNone: break;
    case Act::kRelu:
      for (int64_t j = 0; j < n; ++j) y[j] = y[j] > T(0) ? y[j] : T(0);
      break;
    case Act::kGelu:
      for (int64_t j = 0; j < n; ++j) y[j] = opkit::fast::gelu(y[j]);
      break;
    case Act::kSilu:
      for (int64_t j = 0; j < n; ++j) y[j] = silu(y[j]);
      break;
  }
}

template <typename T>
using ActFn = void (*)(T* y, int64_t n, Act act);

#ifdef LINEAR_ACT_X86
template <typename T>
__attribute__((target("avx2,fma"))) void activate_row_avx2(T* __restrict y, int64_t n, Act act) {
  activate_row(y, n, act);
}
#endif

template <typename T>
ActFn<T> pick_act() {
#ifdef LINEAR_ACT_X86
  if (has_avx2_fma()) return &activate_row_avx2<T>;
#endif
  return &activate_row<T>;
}

// ---- few rows (M <= kSmallM): dot products straight from weight's rows, nothing packed ----------
// Packing the weight costs a pass over it that a handful of rows cannot amortise. Here each task
// takes 4 rows of weight and computes their dot products with x's rows, 3 at a time, in 32-byte
// vectors (12 accumulators), so the weight is read from memory once in all.
constexpr int64_t kSmallM = 8;
constexpr double kCacheBytes = 8.0 * 1024 * 1024;  // a weight above this streams from memory each call

template <typename T>
struct Vec32 {
  typedef T type __attribute__((vector_size(32)));
  static constexpr int64_t lanes = 32 / sizeof(T);
};

template <typename T>
__attribute__((always_inline)) inline void small_m_rows(const T* x, const T* w, const T* bias, T* y, int64_t M,
                                                        int64_t N, int64_t K, int64_t q0, int64_t q1) {
  using V = typename Vec32<T>::type;
  constexpr int64_t L = Vec32<T>::lanes;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t n = q * 4, nn = std::min<int64_t>(4, N - n);
    const T* b[4];
    for (int64_t j = 0; j < 4; ++j) b[j] = w + (n + (j < nn ? j : 0)) * K;
    for (int64_t m = 0; m < M; m += 3) {
      const int64_t mm = std::min<int64_t>(3, M - m);
      const T* a[3];
      for (int64_t i = 0; i < 3; ++i) a[i] = x + (m + (i < mm ? i : 0)) * K;
      V acc[3][4];
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 4; ++j) acc[i][j] = V{} ;
      int64_t k = 0;
      for (; k + L <= K; k += L) {
        V bv[4], av[3];
        for (int64_t j = 0; j < 4; ++j) std::memcpy(&bv[j], b[j] + k, sizeof(V));
        for (int64_t i = 0; i < 3; ++i) std::memcpy(&av[i], a[i] + k, sizeof(V));
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
      }
      for (int64_t i = 0; i < mm; ++i)
        for (int64_t j = 0; j < nn; ++j) {
          T sum = bias != nullptr ? bias[n + j] : T(0);
          T part = 0;
          for (int64_t l = 0; l < L; ++l) part += acc[i][j][l];
          for (int64_t kk = k; kk < K; ++kk) part += a[i][kk] * b[j][kk];
          y[(m + i) * N + n + j] = sum + part;
        }
    }
  }
}

template <typename T>
void small_m_portable(const T* x, const T* w, const T* bias, T* y, int64_t M, int64_t N, int64_t K, int64_t q0,
                      int64_t q1) {
  small_m_rows(x, w, bias, y, M, N, K, q0, q1);
}

template <typename T>
using SmallFn = void (*)(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t);

#ifdef LINEAR_ACT_X86
// The same with AVX2 intrinsics: 2 rows of x by 4 rows of weight, 8 accumulators in registers.
#define LA_TARGET __attribute__((target("avx2,fma"), always_inline)) inline
struct SimdF32 {
  using V = __m256;
  static constexpr int64_t L = 8;
  LA_TARGET static V zero() { return _mm256_setzero_ps(); }
  LA_TARGET static V load(const float* p) { return _mm256_loadu_ps(p); }
  LA_TARGET static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  LA_TARGET static float sum(V v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
  }
};
struct SimdF64 {
  using V = __m256d;
  static constexpr int64_t L = 4;
  LA_TARGET static V zero() { return _mm256_setzero_pd(); }
  LA_TARGET static V load(const double* p) { return _mm256_loadu_pd(p); }
  LA_TARGET static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  LA_TARGET static double sum(V v) {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
};
template <typename T> struct SimdOf;
template <> struct SimdOf<float> { using type = SimdF32; };
template <> struct SimdOf<double> { using type = SimdF64; };

template <typename T>
__attribute__((target("avx2,fma"))) void small_m_avx2(const T* x, const T* w, const T* bias, T* y, int64_t M,
                                                      int64_t N, int64_t K, int64_t q0, int64_t q1) {
  using S = typename SimdOf<T>::type;
  using V = typename S::V;
  constexpr int64_t L = S::L;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t n = q * 4, nn = std::min<int64_t>(4, N - n);
    const T* b0 = w + n * K;
    const T* b1 = w + (n + (nn > 1 ? 1 : 0)) * K;
    const T* b2 = w + (n + (nn > 2 ? 2 : 0)) * K;
    const T* b3 = w + (n + (nn > 3 ? 3 : 0)) * K;
    for (int64_t m = 0; m < M; m += 2) {
      const int64_t mm = std::min<int64_t>(2, M - m);
      const T* a0 = x + m * K;
      const T* a1 = x + (m + (mm > 1 ? 1 : 0)) * K;
      V c00 = S::zero(), c01 = S::zero(), c02 = S::zero(), c03 = S::zero();
      V c10 = S::zero(), c11 = S::zero(), c12 = S::zero(), c13 = S::zero();
      int64_t k = 0;
      for (; k + L <= K; k += L) {
        const V v0 = S::load(b0 + k), v1 = S::load(b1 + k), v2 = S::load(b2 + k), v3 = S::load(b3 + k);
        const V u0 = S::load(a0 + k), u1 = S::load(a1 + k);
        c00 = S::fma(u0, v0, c00), c01 = S::fma(u0, v1, c01), c02 = S::fma(u0, v2, c02), c03 = S::fma(u0, v3, c03);
        c10 = S::fma(u1, v0, c10), c11 = S::fma(u1, v1, c11), c12 = S::fma(u1, v2, c12), c13 = S::fma(u1, v3, c13);
      }
      T r[2][4] = {{S::sum(c00), S::sum(c01), S::sum(c02), S::sum(c03)},
                   {S::sum(c10), S::sum(c11), S::sum(c12), S::sum(c13)}};
      const T* bs[4] = {b0, b1, b2, b3};
      const T* as[2] = {a0, a1};
      for (int64_t i = 0; i < mm; ++i)
        for (int64_t j = 0; j < nn; ++j) {
          T part = r[i][j];
          for (int64_t kk = k; kk < K; ++kk) part += as[i][kk] * bs[j][kk];
          y[(m + i) * N + n + j] = (bias != nullptr ? bias[n + j] : T(0)) + part;
        }
    }
  }
}
#undef LA_TARGET
#endif

template <typename T>
SmallFn<T> pick_small() {
#ifdef LINEAR_ACT_X86
  if (has_avx2_fma()) return &small_m_avx2<T>;
#endif
  return &small_m_portable<T>;
}

template <typename T>
void small_m(const opkit::Context& ctx, const T* x, const T* w, const T* bias, T* y, int64_t M, int64_t N, int64_t K,
             Act act) {
  const ActFn<T> activate = pick_act<T>();
  const SmallFn<T> small = pick_small<T>();
  ctx.parallel_for((N + 3) / 4, [&](int64_t q0, int64_t q1) {
    small(x, w, bias, y, M, N, K, q0, q1);
    if (act != Act::kNone) {
      const int64_t n0 = q0 * 4, n1 = std::min(N, q1 * 4);
      for (int64_t m = 0; m < M; ++m) activate(y + m * N + n0, n1 - n0, act);
    }
  }, /*cost_per_item=*/8.0 * static_cast<double>(M * K));
}

// ---- the packed path (AVX-512): weight packed once, in prepare, into panels --------------------
// (OPKIT_LINEAR_ACT_NO_AVX512=1 in the environment turns it off, to test the other paths on such a CPU.)
// Panel p holds weight's rows n = p*NR .. p*NR+NR-1 (zero beyond N) transposed: for each k, NR values in a
// row, 64-byte aligned. A tile of y, R rows x NR columns, is 2R vector accumulators (R = MR = 12: 24 of the
// 32 registers); each step over k loads 2 vectors of the panel and broadcasts one value of each x row.
// Each thread takes whole panels, so weight is read from memory once per call, and the panel stays in the
// caches while every row tile of x passes over it.

template <typename T>
constexpr int64_t packed_nr() { return 2 * 64 / static_cast<int64_t>(sizeof(T)); }  // 2 AVX-512 vectors

// The sum over k is blocked: kKBlock steps at a time, each block's sum from zero and then added to y (a
// shorter running sum rounds less than one over all of K, and the blocks stay in the caches).
constexpr int64_t kKBlock = 256;
// Up to this many rows of x, the packed weight is read by packed_rows (two panels at a time) instead of tiles.
constexpr int64_t kFewRows = 6;
// y up to this size stays in the caches between blocks of k; above it, each tile fetches the next one's y.
constexpr double kYInCache = 1024.0 * 1024;
template <typename T>
bool y_beyond_caches(int64_t M, int64_t N) {
  return static_cast<double>(M) * static_cast<double>(N) * sizeof(T) > kYInCache;
}

// weight [N, K] -> for each block of k (kKBlock, the last shorter), for each panel of NR of weight's rows
// (zero beyond N), the block transposed: [kb][ceil(N / NR)][kk][NR]. A thread's panels of one block are
// then one contiguous stream. bias [N] -> [ceil(N / NR) * NR] (zero beyond N, and when absent).
template <typename T>
void pack_weight(const T* w, const T* bias, int64_t N, int64_t K, opkit::Buffer<T>& panels, opkit::Buffer<T>& b) {
  constexpr int64_t NR = packed_nr<T>();
  const int64_t np = (N + NR - 1) / NR;
  panels = opkit::Buffer<T>(np * K * NR);  // 2 MB pages when large: the stream needs fewer TLB entries
  b = opkit::Buffer<T>(np * NR);
  for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
    const int64_t kb = std::min(kKBlock, K - k0);
    for (int64_t p = 0; p < np; ++p) {
      T* dst = panels.data() + k0 * np * NR + p * kb * NR;
      for (int64_t j = 0; j < NR; ++j) {  // weight's row n -> column j of the panel
        const int64_t n = p * NR + j;
        for (int64_t kk = 0; kk < kb; ++kk) dst[kk * NR + j] = n < N ? w[n * K + k0 + kk] : T(0);
      }
    }
  }
  for (int64_t n = 0; n < np * NR; ++n) b[n] = n < N && bias != nullptr ? bias[n] : T(0);
}

#ifndef LINEAR_ACT_MR
#define LINEAR_ACT_MR 12  // rows of x per tile: 24 of the 32 vector registers accumulate
#endif
#ifdef LINEAR_ACT_X86
#define LA_AVX512 __attribute__((target("avx512f"), always_inline)) inline
struct Avx512F32 {
  using V = __m512;
  LA_AVX512 static V load(const float* p) { return _mm512_load_ps(p); }
  LA_AVX512 static V load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  LA_AVX512 static void store(float* p, __mmask16 m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  LA_AVX512 static V add(V a, V b) { return _mm512_add_ps(a, b); }
  LA_AVX512 static V set1(float v) { return _mm512_set1_ps(v); }
  LA_AVX512 static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};
struct Avx512F64 {
  using V = __m512d;
  LA_AVX512 static V load(const double* p) { return _mm512_load_pd(p); }
  LA_AVX512 static V load(const double* p, __mmask16 m) { return _mm512_maskz_loadu_pd(static_cast<__mmask8>(m), p); }
  LA_AVX512 static void store(double* p, __mmask16 m, V v) { _mm512_mask_storeu_pd(p, static_cast<__mmask8>(m), v); }
  LA_AVX512 static V add(V a, V b) { return _mm512_add_pd(a, b); }
  LA_AVX512 static V set1(double v) { return _mm512_set1_pd(v); }
  LA_AVX512 static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
};
template <typename T> struct Avx512Of;
template <> struct Avx512Of<float> { using type = Avx512F32; };
template <> struct Avx512Of<double> { using type = Avx512F64; };

// The lanes of a 16-lane vector that hold the first n (<= 0: none) of a panel's columns.
inline __mmask16 column_mask(int64_t n) {
  return static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << std::max<int64_t>(n, 0)) - 1);
}

// out[0..R) x [0..NR) (row stride ldo) = sums (row stride lds) + a . block over one block of k (kb steps):
// `a` is x's rows of the tile, packed ([kk][MR]), `block` the panel's ([kk][NR]); the packed bias instead
// of `sums` when `first`. `sums` is the running sum of the blocks before (y itself, or a buffer with
// padded rows, see packed_panels). `mask0` / `mask1` select the columns of each vector that exist in y (the
// last panel of a weight whose N is not a multiple of NR). `snext` (or null) is the next tile's sums, MR
// rows: their lines are fetched during this tile's first MR steps, two a step, so that adding to them does
// not wait for memory (rows lds apart, a stride the hardware prefetchers do not follow; measured 4-5 % of
// the time at 512 x 4096 x 4096).

template <typename T, int R, bool kPrefetch>
LA_AVX512 void packed_tile(const T* __restrict a, const T* __restrict block, const T* bias, const T* sums,
                           int64_t lds, T* out, int64_t ldo, int64_t kb, bool first, __mmask16 mask0,
                           __mmask16 mask1, const T* next, const T* snext) {
  using S = typename Avx512Of<T>::type;
  using V = typename S::V;
  constexpr int64_t NR = packed_nr<T>(), L = NR / 2;
  V acc[R][2];
  const V zero = S::set1(T(0));
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) acc[i][0] = zero, acc[i][1] = zero;
  const T* w = block;
  for (int64_t k = 0; k < kb; ++k, w += NR, a += LINEAR_ACT_MR) {
    if constexpr (kPrefetch) {  // the thread's next block, while this one computes (it comes from memory)
      _mm_prefetch(reinterpret_cast<const char*>(next + k * NR), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(next + k * NR + L), _MM_HINT_T0);
    }
    if (snext != nullptr && k < LINEAR_ACT_MR) {
      _mm_prefetch(reinterpret_cast<const char*>(snext + k * lds), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(snext + k * lds + L), _MM_HINT_T0);
    }
    const V w0 = S::load(w), w1 = S::load(w + L);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const V ai = S::set1(a[i]);
      acc[i][0] = S::fma(ai, w0, acc[i][0]);
      acc[i][1] = S::fma(ai, w1, acc[i][1]);
    }
  }
  const V c0 = first ? S::load(bias) : zero, c1 = first ? S::load(bias + L) : zero;
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    const T* sr = sums + i * lds;
    T* o = out + i * ldo;
    S::store(o, mask0, S::add(acc[i][0], first ? c0 : S::load(sr, mask0)));
    S::store(o + L, mask1, S::add(acc[i][1], first ? c1 : S::load(sr + L, mask1)));
  }
}

// A tile of `rows` (1..R) rows; the first tile of a block (`next` not null) prefetches the next block.
template <typename T, int R>
LA_AVX512 void packed_tile_rows(int64_t rows, const T* a, const T* block, const T* bias, const T* sums, int64_t lds,
                                T* out, int64_t ldo, int64_t kb, bool first, __mmask16 mask0, __mmask16 mask1,
                                const T* next, const T* snext) {
  if (rows == R) {
    if (next != nullptr)
      return packed_tile<T, R, true>(a, block, bias, sums, lds, out, ldo, kb, first, mask0, mask1, next, snext);
    return packed_tile<T, R, false>(a, block, bias, sums, lds, out, ldo, kb, first, mask0, mask1, next, snext);
  }
  if constexpr (R > 1)
    packed_tile_rows<T, R - 1>(rows, a, block, bias, sums, lds, out, ldo, kb, first, mask0, mask1, next, snext);
}

// Panels [p0, p1) of y = act(x . weight^T + bias), every row of x. Blocks of k outermost: x's block
// (M x kKBlock), packed into `apack` (tiles of MR rows, [kk][MR]: the broadcasts read one stream instead
// of MR rows K apart, which share L1 sets when K is a multiple of 1024), stays in L2 while the thread's
// panels pass; each panel's block stays in L1 while x's row tiles pass over it.
// `runs` (or null): M x running_stride(...) elements for the running sums between blocks of k, when y is
// larger than the caches and K spans several blocks. y's rows are N apart, and with N a multiple of 1024
// a tile's 12 rows fall in the same L1 sets: the adds into y stalled (~9 % of the samples at 512 x 4096 x
// 4096). Rows padded by one line do not collide: 51.0 -> 47.3-47.8 ms there, 14.5 -> 14.1 ms at 128 rows.
// The last block of k reads the sums there and writes y.
template <typename T>
constexpr int64_t running_stride(int64_t panels) {
  return panels * packed_nr<T>() + 64 / static_cast<int64_t>(sizeof(T));  // one line of padding
}
template <typename T>
bool wants_running_sums(int64_t M, int64_t N, int64_t K) {
  return y_beyond_caches<T>(M, N) && K > kKBlock;
}

template <typename T>
__attribute__((target("avx512f"))) void packed_panels(const T* x, const T* panels, const T* bias, T* y, int64_t M,
                                                      int64_t N, int64_t K, int64_t p0, int64_t p1, Act act,
                                                      ActFn<T> activate, T* apack, T* runs) {
  constexpr int64_t NR = packed_nr<T>(), L = NR / 2;
  constexpr int MR = LINEAR_ACT_MR;
  const int64_t np = (N + NR - 1) / NR;
  const bool fetch_y = y_beyond_caches<T>(M, N);
  const int64_t ldr = running_stride<T>(p1 - p0);
  for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
    const int64_t k1 = std::min(K, k0 + kKBlock), kb = k1 - k0;
    for (int64_t m = 0; m < M; m += MR) {  // x's block -> apack, tile by tile
      if (m + MR <= M) {  // a whole tile: stores in order (half the time of strided ones, measured)
        const T* src = x + m * K + k0;
        T* dst = apack + m * kb;
        for (int64_t kk = 0; kk < kb; ++kk)
#pragma GCC unroll 16
          for (int64_t i = 0; i < MR; ++i) dst[kk * MR + i] = src[i * K + kk];
        continue;
      }
      // the last tile, M - m rows: a tile of that many rows reads no others (zeroing them cost more than
      // the arithmetic of a few rows: 2 x 4096 through 5 outputs took 28 us, 8 of them here)
      const int64_t rows = M - m;
      const T* src = x + m * K + k0;
      T* dst = apack + m * kb;
      for (int64_t kk = 0; kk < kb; ++kk)
        for (int64_t i = 0; i < rows; ++i) dst[kk * MR + i] = src[i * K + kk];
    }
    const int64_t k2 = std::min(K, k1 + kKBlock);  // the next block of k
    for (int64_t p = p0; p < p1; ++p) {
      const T* block = panels + k0 * np * NR + p * kb * NR;
      // the block this thread reads next, as long as this one's (next panel; else the next k block's first)
      const T* next = p + 1 < p1 ? block + kb * NR : k1 < K && k2 - k1 == kb ? panels + k1 * np * NR + p0 * kb * NR : nullptr;
      const int64_t n0 = p * NR, cols = std::min(NR, N - n0);
      const __mmask16 mask0 = column_mask(cols), mask1 = column_mask(cols - L);
      for (int64_t m = 0; m < M; m += MR) {
        const int64_t rows = std::min<int64_t>(MR, M - m);
        T* ym = y + m * N + n0;
        // the running sums: y's rows, or padded ones in `runs` until the last block of k writes y
        T* sm = runs != nullptr ? runs + m * ldr + (n0 - p0 * NR) : ym;
        const int64_t lds = runs != nullptr ? ldr : N;
        const bool to_y = runs == nullptr || k1 == K;
        packed_tile_rows<T, MR>(rows, apack + m * kb, block, bias + n0, sm, lds, to_y ? ym : sm, to_y ? N : ldr,
                                kb, k0 == 0, mask0, mask1, m == 0 ? next : nullptr,
                                fetch_y && m + 2 * MR <= M ? sm + MR * lds : nullptr);
        if (k1 == K && act != Act::kNone)  // the tile is final: its activation while it is in cache
          for (int64_t i = 0; i < rows; ++i) activate(ym + i * N, cols, act);
      }
    }
  }
}

// A few rows of x (1-6: tokens at decode time) over the packed weight, panels [p0, p1): two panels at a
// time, so that 4R sums in flight hide the FMA's latency (a tile of 2 rows has 4, of 4 rows 8: at 2 x 4096
// x 4096 and 4 x 1024 x 1024 tiles took 1.09-1.16x and 1.08-1.13x ONNX Runtime), read straight from x's
// rows (too few to pack). Each column's sum is in a tile's order (per block of k from zero, then added),
// so a row gives the same bits alone as in a batch.
// Memory-bound: each thread streams its panels of a block once, fetching 2 KB ahead (on the 2 MB pages of
// opkit::Buffer: faster than OpenBLAS's GEMV over weight's rows, docs/kernel-state.md).
template <typename T, int R>
__attribute__((target("avx512f"))) void packed_rows(const T* x, int64_t ldx, const T* panels, const T* bias, T* y,
                                                    int64_t N, int64_t K, int64_t p0, int64_t p1) {
  using S = typename Avx512Of<T>::type;
  using V = typename S::V;
  constexpr int64_t NR = packed_nr<T>(), L = NR / 2, kAhead = 2048 / sizeof(T);
  const int64_t np = (N + NR - 1) / NR;
  for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
    const int64_t kb = std::min(kKBlock, K - k0);
    for (int64_t p = p0; p < p1; p += 2) {
      const int P = p + 1 < p1 ? 2 : 1;  // the last panel of an odd count alone
      const T* w = panels + k0 * np * NR + p * kb * NR;
      const T* w2 = P == 2 ? w + kb * NR : w;  // (computed twice for a lone panel, stored once)
      V acc[R][4];
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = S::set1(T(0));
      for (int64_t kk = 0; kk < kb; ++kk, w += NR, w2 += NR) {
        _mm_prefetch(reinterpret_cast<const char*>(w + kAhead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(w + kAhead + L), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(w2 + kAhead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(w2 + kAhead + L), _MM_HINT_T0);
        const V v0 = S::load(w), v1 = S::load(w + L), v2 = S::load(w2), v3 = S::load(w2 + L);
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) {
          const V xi = S::set1(x[i * ldx + k0 + kk]);
          acc[i][0] = S::fma(xi, v0, acc[i][0]);
          acc[i][1] = S::fma(xi, v1, acc[i][1]);
          acc[i][2] = S::fma(xi, v2, acc[i][2]);
          acc[i][3] = S::fma(xi, v3, acc[i][3]);
        }
      }
      for (int j = 0; j < P; ++j) {
        const int64_t n0 = (p + j) * NR, cols = std::min(NR, N - n0);
        const __mmask16 mask0 = column_mask(cols), mask1 = column_mask(cols - L);
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) {
          T* yp = y + i * N + n0;
          S::store(yp, mask0, S::add(acc[i][2 * j], k0 == 0 ? S::load(bias + n0) : S::load(yp, mask0)));
          S::store(yp + L, mask1, S::add(acc[i][2 * j + 1], k0 == 0 ? S::load(bias + n0 + L) : S::load(yp + L, mask1)));
        }
      }
    }
  }
}
#undef LA_AVX512
#endif

template <typename T>
void packed_gemm(const opkit::Context& ctx, const T* x, const T* panels, const T* bias, T* y, int64_t M, int64_t N,
                 int64_t K, Act act) {
#ifdef LINEAR_ACT_X86
  constexpr int64_t NR = packed_nr<T>();
  const ActFn<T> activate = pick_act<T>();
  constexpr int64_t MR = LINEAR_ACT_MR;
  const int64_t np = (N + NR - 1) / NR, tiles = (M + MR - 1) / MR;
  // Many rows for the columns (M >= N / 4): one part per thread takes whole tiles of rows over every panel,
  // so each packs only its rows of x; split by panels, every part packed all of x, a cost that few panels
  // per thread do not amortise (300 x 4096 through 1000 outputs: 8.0-8.1 ms by panels, 7.1-7.6 by rows).
  if (4 * M >= N && tiles >= ctx.num_threads()) {
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>({ctx.num_threads(), tiles, M * N * K / 65536}));
    ctx.parallel_for(parts, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t m0 = tiles * t / parts * MR, m1 = std::min(M, tiles * (t + 1) / parts * MR);
        T* apack = ctx.scratch<T>(static_cast<size_t>((m1 - m0 + MR - 1) / MR * MR * std::min(K, kKBlock)));
        T* runs = wants_running_sums<T>(m1 - m0, N, K) ? ctx.scratch<T>((m1 - m0) * running_stride<T>(np)) : nullptr;
        packed_panels<T>(x + m0 * K, panels, bias, y + m0 * N, m1 - m0, N, K, 0, np, act, activate, apack, runs);
      }
    }, /*cost_per_item=*/1e9);
    return;
  }
  // Otherwise one part per thread (whole panels each): every part packs x's blocks once for its panels.
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>({ctx.num_threads(), np, M * N * K / 65536}));
  ctx.parallel_for(parts, [&](int64_t t0, int64_t t1) {
    T* apack = ctx.scratch<T>(static_cast<size_t>((M + MR - 1) / MR * MR * std::min(K, kKBlock)));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t q0 = np * t / parts, q1 = np * (t + 1) / parts;
      T* runs = wants_running_sums<T>(M, N, K) ? ctx.scratch<T>(M * running_stride<T>(q1 - q0)) : nullptr;
      packed_panels<T>(x, panels, bias, y, M, N, K, q0, q1, act, activate, apack, runs);
    }
  }, /*cost_per_item=*/1e9);
#else
  (void)ctx, (void)x, (void)panels, (void)bias, (void)y, (void)M, (void)N, (void)K, (void)act;
  throw opkit::Error("internal: the packed path needs x86-64 with AVX-512");
#endif
}

// 1-6 rows of x over the packed weight: whole panels per thread, then the activation of its columns.
template <typename T>
void packed_few_rows(const opkit::Context& ctx, const T* x, const T* panels, const T* bias, T* y, int64_t M,
                     int64_t N, int64_t K, Act act) {
#ifdef LINEAR_ACT_X86
  constexpr int64_t NR = packed_nr<T>();
  const ActFn<T> activate = pick_act<T>();
  const int64_t np = (N + NR - 1) / NR;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>({ctx.num_threads(), np, M * N * K / 65536}));
  ctx.parallel_for(parts, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t q0 = np * t / parts, q1 = np * (t + 1) / parts;
      switch (M) {
        case 1: packed_rows<T, 1>(x, K, panels, bias, y, N, K, q0, q1); break;
        case 2: packed_rows<T, 2>(x, K, panels, bias, y, N, K, q0, q1); break;
        case 3: packed_rows<T, 3>(x, K, panels, bias, y, N, K, q0, q1); break;
        case 4: packed_rows<T, 4>(x, K, panels, bias, y, N, K, q0, q1); break;
        case 5: packed_rows<T, 5>(x, K, panels, bias, y, N, K, q0, q1); break;
        default: packed_rows<T, 6>(x, K, panels, bias, y, N, K, q0, q1); break;
      }
      if (act != Act::kNone)
        for (int64_t m = 0; m < M; ++m) activate(y + m * N + q0 * NR, std::min(N, q1 * NR) - q0 * NR, act);
    }
  }, /*cost_per_item=*/1e9);  // one item per thread
#else
  (void)ctx, (void)x, (void)panels, (void)bias, (void)y, (void)M, (void)N, (void)K, (void)act;
  throw opkit::Error("internal: the packed path needs x86-64 with AVX-512");
#endif
}

// One row of x (a single token), no AVX-512: OpenBLAS's GEMV over blocks of weight's rows, one per thread; weight is
// read once (its GEMM would copy it into packed panels first).
template <typename T>
void blas_gemv(const opkit::Context& ctx, const T* x, const T* w, const T* bias, T* y, int64_t N, int64_t K, Act act) {
  const ActFn<T> activate = pick_act<T>();
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(ctx.num_threads(), N * K / 65536));
  ctx.parallel_for(parts, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n0 = N * p / parts, n1 = N * (p + 1) / parts;
      if (bias != nullptr) std::memcpy(y + n0, bias + n0, static_cast<size_t>(n1 - n0) * sizeof(T));
      opkit::blas::gemv(false, n1 - n0, K, T(1), w + n0 * K, K, x, bias != nullptr ? T(1) : T(0), y + n0);
      if (act != Act::kNone) activate(y + n0, n1 - n0, act);
    }
  }, /*cost_per_item=*/1e9);  // one item per thread
}

// OpenBLAS's GEMM on the runtime's threads, bias and activation applied to each block as it finishes.
template <typename T>
void blas_gemm(const opkit::Context& ctx, const T* x, const T* w, const T* bias, T* y, int64_t M, int64_t N,
               int64_t K, Act act) {
  const ActFn<T> activate = pick_act<T>();
  opkit::blas::parallel_gemm<T>(ctx, /*trans_b=*/true, M, N, K, T(1), x, K, w, K, T(0), y, N,
                                [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    for (int64_t m = m0; m < m1; ++m) {
      T* yr = y + m * N;
      if (bias != nullptr)
        for (int64_t n = n0; n < n1; ++n) yr[n] += bias[n];
      if (act != Act::kNone) activate(yr + n0, n1 - n0, act);
    }
  });
}

}  // namespace

// Prepared once per node (at session creation when weight and bias are initializers): the activation,
// parsed from its attribute, the layer's shape, checked against bias, and (AVX-512) the packed weight and
// bias. The other paths use the weight in place (OpenBLAS packs its panels inside each GEMM call and has no
// API to keep them packed between calls).
template <typename T>
struct LinearAct::State {
  Act act = Act::kNone;
  int64_t N = 0, K = 0;       // weight is [N, K]
  opkit::Buffer<T> panels;    // packed weight: [blocks of k][ceil(N / NR)][kk][NR]; empty without AVX-512
  opkit::Buffer<T> bias;      // packed bias: [ceil(N / NR) * NR]
};

template <typename T>
LinearAct::State<T> LinearAct::prepare(const Attrs& attrs, const opkit::Input<T>& weight,
                                       const opkit::Optional<T>& bias) {
  State<T> s;
  s.act = parse_act(attrs.activation);
  if (weight.rank() != 2)
    throw opkit::Error("input 'weight' must be [out_features, in_features], got rank " + std::to_string(weight.rank()));
  s.N = weight.dim(0);
  s.K = weight.dim(1);
  if (bias && !(bias->rank() == 1 && bias->dim(0) == s.N))
    throw opkit::Error("input 'bias' must be [out_features] = [" + std::to_string(s.N) + "]");
  if (has_avx512() && s.N > 0 && s.K > 0) pack_weight(weight.data(), bias ? bias->data() : nullptr, s.N, s.K, s.panels, s.bias);
  return s;
}

template <typename T>
void LinearAct::compute(opkit::Context& ctx, const Attrs&, const State<T>& state, const opkit::Input<T>& x,
                        const opkit::Input<T>& weight, const opkit::Optional<T>& bias, opkit::Output<T>& y) {
  if (x.rank() < 1) throw opkit::Error("input 'x' must have rank >= 1 ([..., in_features])");
  const int64_t K = x.dim(-1);
  const int64_t N = state.N;
  if (state.K != K)
    throw opkit::Error("input 'weight' is [" + std::to_string(N) + ", " + std::to_string(state.K) +
                       "] but x has in_features = " + std::to_string(K));
  if (y.size() == 0) return;
  const int64_t M = y.size() / N;
  const T* b = bias ? bias->data() : nullptr;
  // Measured (docs/kernel-state.md): with AVX-512 -> the packed weight (1-6 rows: two panels at a time,
  // else tiles); else one row -> OpenBLAS's GEMV; a few rows over a weight too large for the caches -> the
  // hand-written dot products, which read weight once; else OpenBLAS's GEMM.
  if (K == 0) {  // an empty sum: y = act(bias) (BLAS would return early and leave y unwritten)
    const ActFn<T> activate = pick_act<T>();
    for (int64_t m = 0; m < M; ++m) {
      T* yr = y.data() + m * N;
      for (int64_t n = 0; n < N; ++n) yr[n] = b != nullptr ? b[n] : T(0);
      activate(yr, N, state.act);
    }
    return;
  }
  const bool streams = static_cast<double>(N) * static_cast<double>(K) * sizeof(T) > kCacheBytes;
  if (M <= kFewRows && state.panels)
    packed_few_rows<T>(ctx, x.data(), state.panels.data(), state.bias.data(), y.data(), M, N, K, state.act);
  else if (M == 1) blas_gemv<T>(ctx, x.data(), weight.data(), b, y.data(), N, K, state.act);
  else if (state.panels)
    packed_gemm<T>(ctx, x.data(), state.panels.data(), state.bias.data(), y.data(), M, N, K, state.act);
  else if (M <= kSmallM && streams) small_m<T>(ctx, x.data(), weight.data(), b, y.data(), M, N, K, state.act);
  else blas_gemm<T>(ctx, x.data(), weight.data(), b, y.data(), M, N, K, state.act);
}

}  // namespace opkit::ops
