// LinearAct: y = act(x @ weight^T + bias), a GEMM with bias and activation fused into its epilogue.
//
// x [M, K] (the leading dims flattened), weight [N, K] (torch's linear layout), y [M, N].
// y is cut into blocks of MC rows x NC columns, spread over ORT's thread pool. Each block is
// initialised with the bias, then accumulated over K in slices of KC: the task packs the KC x NC
// slice of weight into panels of NR output columns ([KC][NR] each, zero-padded, read contiguously;
// one panel stays in L1) and an MR x NR register-tile micro-kernel runs over the MC rows of x (whose
// MC x KC slice stays in L2). Last, the activation is applied to the block while it is in cache.
// Packing per task costs one extra pass over the weight slice per MC rows of x: small next to the
// 2 * MC flops per weight element, and nothing is packed that is not used.
// The micro-kernel has an AVX2+FMA version (chosen at run time when the CPU has it; the library
// itself is built for the baseline ISA) and a portable one.
#include "linear_act.opkit.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

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

constexpr int64_t kMR = 6;    // rows of the register tile
constexpr int64_t kMC = 96;   // rows of a block (a multiple of kMR)
constexpr int64_t kKC = 256;  // depth of a K slice

template <typename T> struct Tile;  // columns of the register tile: two 256-bit vectors
template <> struct Tile<float> { static constexpr int64_t NR = 16; static constexpr int64_t NC = 256; };
template <> struct Tile<double> { static constexpr int64_t NR = 8; static constexpr int64_t NC = 128; };

// C[MR x NR] (row stride ldc) += A[MR x kc] (row pointers) * B[kc x NR] (packed).
template <typename T>
using MicroFn = void (*)(const T* const* a, const T* b, int64_t kc, T* c, int64_t ldc);

template <typename T>
void micro_portable(const T* const* a, const T* b, int64_t kc, T* c, int64_t ldc) {
  constexpr int64_t NR = Tile<T>::NR;
  T acc[kMR][NR];
  for (int64_t i = 0; i < kMR; ++i)
    for (int64_t j = 0; j < NR; ++j) acc[i][j] = c[i * ldc + j];
  for (int64_t k = 0; k < kc; ++k) {
    const T* bk = b + k * NR;
    for (int64_t i = 0; i < kMR; ++i) {
      const T av = a[i][k];
      for (int64_t j = 0; j < NR; ++j) acc[i][j] += av * bk[j];
    }
  }
  for (int64_t i = 0; i < kMR; ++i)
    for (int64_t j = 0; j < NR; ++j) c[i * ldc + j] = acc[i][j];
}

#ifdef LINEAR_ACT_X86
#define LA_ROW_F32(i)                                            \
  {                                                              \
    const __m256 av = _mm256_broadcast_ss(a##i + k);             \
    c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);                  \
    c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1);                  \
  }
__attribute__((target("avx2,fma"))) void micro_avx2(const float* const* a, const float* b, int64_t kc, float* c,
                                                    int64_t ldc) {
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
  __m256 c00 = _mm256_loadu_ps(c), c01 = _mm256_loadu_ps(c + 8);
  __m256 c10 = _mm256_loadu_ps(c + ldc), c11 = _mm256_loadu_ps(c + ldc + 8);
  __m256 c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
  __m256 c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
  __m256 c40 = _mm256_loadu_ps(c + 4 * ldc), c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
  __m256 c50 = _mm256_loadu_ps(c + 5 * ldc), c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b + k * 16);
    const __m256 b1 = _mm256_load_ps(b + k * 16 + 8);
    LA_ROW_F32(0) LA_ROW_F32(1) LA_ROW_F32(2) LA_ROW_F32(3) LA_ROW_F32(4) LA_ROW_F32(5)
  }
  _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
  _mm256_storeu_ps(c + ldc, c10), _mm256_storeu_ps(c + ldc + 8, c11);
  _mm256_storeu_ps(c + 2 * ldc, c20), _mm256_storeu_ps(c + 2 * ldc + 8, c21);
  _mm256_storeu_ps(c + 3 * ldc, c30), _mm256_storeu_ps(c + 3 * ldc + 8, c31);
  _mm256_storeu_ps(c + 4 * ldc, c40), _mm256_storeu_ps(c + 4 * ldc + 8, c41);
  _mm256_storeu_ps(c + 5 * ldc, c50), _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}
#undef LA_ROW_F32

#define LA_ROW_F64(i)                                            \
  {                                                              \
    const __m256d av = _mm256_broadcast_sd(a##i + k);            \
    c##i##0 = _mm256_fmadd_pd(av, b0, c##i##0);                  \
    c##i##1 = _mm256_fmadd_pd(av, b1, c##i##1);                  \
  }
__attribute__((target("avx2,fma"))) void micro_avx2(const double* const* a, const double* b, int64_t kc, double* c,
                                                    int64_t ldc) {
  const double *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
  __m256d c00 = _mm256_loadu_pd(c), c01 = _mm256_loadu_pd(c + 4);
  __m256d c10 = _mm256_loadu_pd(c + ldc), c11 = _mm256_loadu_pd(c + ldc + 4);
  __m256d c20 = _mm256_loadu_pd(c + 2 * ldc), c21 = _mm256_loadu_pd(c + 2 * ldc + 4);
  __m256d c30 = _mm256_loadu_pd(c + 3 * ldc), c31 = _mm256_loadu_pd(c + 3 * ldc + 4);
  __m256d c40 = _mm256_loadu_pd(c + 4 * ldc), c41 = _mm256_loadu_pd(c + 4 * ldc + 4);
  __m256d c50 = _mm256_loadu_pd(c + 5 * ldc), c51 = _mm256_loadu_pd(c + 5 * ldc + 4);
  for (int64_t k = 0; k < kc; ++k) {
    const __m256d b0 = _mm256_load_pd(b + k * 8);
    const __m256d b1 = _mm256_load_pd(b + k * 8 + 4);
    LA_ROW_F64(0) LA_ROW_F64(1) LA_ROW_F64(2) LA_ROW_F64(3) LA_ROW_F64(4) LA_ROW_F64(5)
  }
  _mm256_storeu_pd(c, c00), _mm256_storeu_pd(c + 4, c01);
  _mm256_storeu_pd(c + ldc, c10), _mm256_storeu_pd(c + ldc + 4, c11);
  _mm256_storeu_pd(c + 2 * ldc, c20), _mm256_storeu_pd(c + 2 * ldc + 4, c21);
  _mm256_storeu_pd(c + 3 * ldc, c30), _mm256_storeu_pd(c + 3 * ldc + 4, c31);
  _mm256_storeu_pd(c + 4 * ldc, c40), _mm256_storeu_pd(c + 4 * ldc + 4, c41);
  _mm256_storeu_pd(c + 5 * ldc, c50), _mm256_storeu_pd(c + 5 * ldc + 4, c51);
}
#undef LA_ROW_F64

bool has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

template <typename T>
MicroFn<T> pick_micro() {
#ifdef LINEAR_ACT_X86
  if (has_avx2_fma()) return static_cast<MicroFn<T>>(&micro_avx2);
#endif
  return &micro_portable<T>;
}

// ---- activations (applied to one block row segment, in place) --------------------------------
inline float gelu(float v) { return 0.5f * v * (1.0f + opkit::fast::erf(v * 0.70710678118654752f)); }
inline double gelu(double v) { return 0.5 * v * (1.0 + std::erf(v * 0.70710678118654752440)); }
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
      for (int64_t j = 0; j < n; ++j) y[j] = gelu(y[j]);
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
constexpr int64_t kSmallM = 16;

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

// Packs weight rows [n0, n1) x columns [k0, k0 + kc) into panels of NR rows, [kc][NR] each, zero-padded.
template <typename T, int64_t NR>
void pack_weight(const T* __restrict w, int64_t K, int64_t n0, int64_t n1, int64_t k0, int64_t kc, T* __restrict bp) {
  for (int64_t p = n0; p < n1; p += NR, bp += kc * NR) {
    for (int64_t j = 0; j < NR; ++j) {
      if (p + j < n1) {
        const T* wr = w + (p + j) * K + k0;
        for (int64_t k = 0; k < kc; ++k) bp[k * NR + j] = wr[k];
      } else {
        for (int64_t k = 0; k < kc; ++k) bp[k * NR + j] = T(0);
      }
    }
  }
}

// The weight packed once (prepare) into panels of NR rows: for each block of NC output columns and
// each K slice of KC, the panels [kc][NR] (zero-padded) that the micro-kernel reads contiguously.
// Block nb starts at nb * NC * K; its slice k0 at k0 * (the block's padded width).
struct AlignedFree {
  void operator()(void* p) const { ::operator delete[](p, std::align_val_t(64)); }
};
template <typename T>
using AlignedArray = std::unique_ptr<T[], AlignedFree>;  // the micro-kernel's aligned loads need 32 bytes

template <typename T>
AlignedArray<T> pack_all(const T* w, int64_t N, int64_t K) {
  constexpr int64_t NR = Tile<T>::NR;
  constexpr int64_t NC = Tile<T>::NC;
  const int64_t nblocks = (N + NC - 1) / NC;
  const int64_t last_w = N - (nblocks - 1) * NC;
  const size_t size = static_cast<size_t>(((nblocks - 1) * NC + (last_w + NR - 1) / NR * NR) * K);
  AlignedArray<T> packed(static_cast<T*>(::operator new[](size * sizeof(T), std::align_val_t(64))));
  for (int64_t nb = 0; nb < nblocks; ++nb) {
    const int64_t n0 = nb * NC, n1 = std::min(N, n0 + NC);
    const int64_t padw = (n1 - n0 + NR - 1) / NR * NR;
    for (int64_t k0 = 0; k0 < K; k0 += kKC)
      pack_weight<T, NR>(w, K, n0, n1, k0, std::min(kKC, K - k0), packed.get() + n0 * K + k0 * padw);
  }
  return packed;
}

template <typename T>
void gemm_packed(const opkit::Context& ctx, const T* x, const T* packed, const T* bias, T* y, int64_t M, int64_t N,
                 int64_t K, Act act) {
  constexpr int64_t NR = Tile<T>::NR;
  constexpr int64_t NC = Tile<T>::NC;  // a multiple of NR
  const ActFn<T> activate = pick_act<T>();
  const MicroFn<T> micro = pick_micro<T>();
  const int64_t mblocks = (M + kMC - 1) / kMC;
  const int64_t nblocks = (N + NC - 1) / NC;
  // Tasks are blocks of y; consecutive tasks share their weight columns (m varies fastest).
  ctx.parallel_for(mblocks * nblocks, [&](int64_t t0, int64_t t1) {
    alignas(64) T edge[kMR * NR];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t m0 = (t % mblocks) * kMC, m1 = std::min(M, m0 + kMC);
      const int64_t n0 = (t / mblocks) * NC, n1 = std::min(N, n0 + NC);
      const int64_t padw = (n1 - n0 + NR - 1) / NR * NR;
      for (int64_t m = m0; m < m1; ++m) {
        T* yr = y + m * N;
        if (bias != nullptr) std::memcpy(yr + n0, bias + n0, static_cast<size_t>(n1 - n0) * sizeof(T));
        else std::fill(yr + n0, yr + n1, T(0));
      }
      for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const int64_t kc = std::min(kKC, K - k0);
        const T* bp_all = packed + n0 * K + k0 * padw;
        for (int64_t n = n0; n < n1; n += NR) {
          const T* bp = bp_all + ((n - n0) / NR) * kc * NR;
          const int64_t nr = std::min(NR, n1 - n);
          for (int64_t m = m0; m < m1; m += kMR) {
            const int64_t mr = std::min(kMR, m1 - m);
            const T* a[kMR];
            for (int64_t i = 0; i < kMR; ++i) a[i] = x + (m + (i < mr ? i : 0)) * K + k0;
            if (mr == kMR && nr == NR) {
              micro(a, bp, kc, y + m * N + n, N);
            } else {  // an edge tile: compute it in a local tile, copy back the valid part
              for (int64_t i = 0; i < mr; ++i)
                for (int64_t j = 0; j < nr; ++j) edge[i * NR + j] = y[(m + i) * N + n + j];
              micro(a, bp, kc, edge, NR);
              for (int64_t i = 0; i < mr; ++i)
                for (int64_t j = 0; j < nr; ++j) y[(m + i) * N + n + j] = edge[i * NR + j];
            }
          }
        }
      }
      if (act != Act::kNone)
        for (int64_t m = m0; m < m1; ++m) activate(y + m * N + n0, n1 - n0, act);
    }
  }, /*cost_per_item=*/2.0 * static_cast<double>(std::min(M, kMC) * std::min(N, NC)) * static_cast<double>(K));
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

enum class Path { kSmall, kPacked, kBlas };

Path path_override() {
  const char* e = std::getenv("LINEAR_ACT_PATH");
  if (e == nullptr) return Path::kBlas;
  const std::string v = e;
  return v == "small" ? Path::kSmall : v == "packed" ? Path::kPacked : Path::kBlas;
}

}  // namespace

template <typename T>
struct LinearAct::State {
  Act act = Act::kNone;
  int64_t N = 0, K = 0;
  AlignedArray<T> packed;  // weight in the micro-kernel's panels (pack_all)
  bool auto_path = true;
  Path forced = Path::kBlas;
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
  const char* e = std::getenv("LINEAR_ACT_PATH");
  s.auto_path = e == nullptr;
  s.forced = path_override();
  if (s.N > 0 && s.K > 0 && (s.auto_path || s.forced == Path::kPacked)) s.packed = pack_all(weight.data(), s.N, s.K);
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
  const Path path = state.auto_path ? (M <= kSmallM ? Path::kSmall : Path::kBlas) : state.forced;
  switch (path) {
    case Path::kSmall: small_m<T>(ctx, x.data(), weight.data(), b, y.data(), M, N, K, state.act); break;
    case Path::kPacked: gemm_packed<T>(ctx, x.data(), state.packed.get(), b, y.data(), M, N, K, state.act); break;
    case Path::kBlas: blas_gemm<T>(ctx, x.data(), weight.data(), b, y.data(), M, N, K, state.act); break;
  }
}

}  // namespace opkit::ops
