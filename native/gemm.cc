// GEMM, BLIS style: C = beta*C + op(A)·op(B) + bias.
//
// op(B) is packed into panels of KC×NR (row k of a panel = NR consecutive columns) and op(A) into
// panels of MR×KC (row i at stride KC), both in thread-local buffers that grow and are never freed,
// so the hot path does not allocate. A register-blocked microkernel computes one MR×NR tile of C per
// call: it keeps the tile in registers, loads NR/16 vectors of B per k and broadcasts MR values of A.
// One driver serves three microkernels chosen by active_isa() (the one dispatch point, `impl()`):
// AVX-512 14×32, AVX2+FMA 6×16, portable C++ 4×16 (auto-vectorised for the baseline ISA).
// ISA-specific functions carry target attributes, so the addon still loads on CPUs without them.
//
// Blocking: a kc×NC block of B (≤ 1.3 MB) stays in L2 while the thread sweeps its rows of A in MR-row
// panels; each A panel (MR×kc, ≤ 16 KB) stays in L1 while the sweep runs across the block's NR panels.
// Threads split the (M, N) plane into tm×tn shares chosen to balance compute and packing cost, so a
// single short sequence (small M) still uses every thread by splitting N; each share is cut into a few
// tasks taken dynamically. Every element of C is summed by one thread in one order: results do not
// depend on the thread count.
//
// Also here: prepacked weights (gemm_packed: op(B) = Wᵀ packed once in the layout the driver reads) and
// the FMA peak probe.
#if !defined(MB_X86)
#if defined(__x86_64__) || defined(__i386__)
#define MB_X86 1
#else
#define MB_X86 0  // other CPUs build the portable kernels only
#endif
#endif
#if MB_X86
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu_features.h"
#include "kernels.h"
#include "threadpool.h"

#define MB_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define MB_AVX2 __attribute__((target("avx2,fma")))

namespace mb {
namespace {

// Largest depth of a packed block. Also the row stride of a packed A panel, a compile-time constant so the
// microkernel addresses the MR rows of A with immediate offsets.
constexpr int KC = 288;

// Depth of each block when K is cut into equal blocks of at most KC (the last may be shorter): K = 768 as
// 3 × 256 and 1152 as 4 × 288, not 256s and a short tail whose calls pay the same C traffic for less work.
int depth_block(int K) {
  const int blocks = std::max(1, (K + KC - 1) / KC);
  return std::max(1, (K + blocks - 1) / blocks);  // 1 for K = 0, so loops over no blocks do not divide by 0
}
// Target width of a B block: kc×NC floats (1.2 MB at kc = 256, 1.3 MB at 288) sits in a 2 MB L2 next to the C
// rows being updated. 1152 columns (the model's intermediate size) keep 1152- and 2304-column products in whole
// blocks: A is packed once per block (dW of mlp.Wo over 4096 tokens: 60 -> 66 % of the FMA probe against 1024).
constexpr int NC_TARGET = 1152;
// With transA, rows of op(A) are packed this many MR-row panels at a time (≤ 224 KB, in L2).
constexpr int A_CHUNK_PANELS = 16;

// Computes the MR×NR tile sum_k Ap[i*KC+k]·Bp[k*NR+j] and writes its top-left mr×nr corner to C
// (row stride ldc): C = tile (+ C when `load`) (+ bias[j] when bias != nullptr).
using MicroKernel = void (*)(int kc, const float* Ap, const float* Bp, float* C, int ldc, int mr, int nr, bool load,
                             const float* bias);

// Packs one kc×NR panel of op(B) = Wᵀ from W [N, K] (row length ld): dst[k*NR + j] = W[j0+j, k0+k] for
// j < w, zero for w <= j < NR.
using PackTransposed = void (*)(float* dst, const float* W, int ld, int k0, int kc, int j0, int w);

// Packs rows [c0, c1) of op(A) = Aᵀ from A [K, M] (transA, row length ld) as consecutive MR×KC panels,
// reading A row by row: row i lands at dst[((i-c0)/MR)*MR*KC + ((i-c0)%MR)*KC + k], rows up to the next
// multiple of MR are zero.
using PackATransposed = void (*)(float* dst, const float* A, int ld, int MR, int c0, int c1, int k0, int kc);

struct Impl {
  int MR, NR;
  MicroKernel kernel;
  PackTransposed packTransposed;
  PackATransposed packATransposed;
};

// ---------------------------------------------------------------------------------------------------
// Microkernels and the ISA-specific transposing packers

template <int MR, int NR>
void kernel_portable(int kc, const float* Ap, const float* Bp, float* C, int ldc, int mr, int nr, bool load,
                     const float* bias) {
  float acc[MR][NR] = {};
  for (int k = 0; k < kc; k++) {
    const float* b = Bp + k * NR;
    for (int i = 0; i < MR; i++) {
      const float a = Ap[i * KC + k];
      for (int j = 0; j < NR; j++) acc[i][j] += a * b[j];
    }
  }
  for (int i = 0; i < mr; i++) {
    float* c = C + size_t(i) * ldc;
    for (int j = 0; j < nr; j++) c[j] = acc[i][j] + (load ? c[j] : 0.f) + (bias ? bias[j] : 0.f);
  }
}

template <int NR>
void pack_transposed_portable(float* dst, const float* W, int ld, int k0, int kc, int j0, int w) {
  if (w < NR)
    for (int k = 0; k < kc; k++) std::fill(dst + k * NR + w, dst + (k + 1) * NR, 0.f);
  // 8-column strips, so each k row of the panel is written in few cache lines.
  for (int jb = 0; jb < w; jb += 8) {
    const int jw = std::min(8, w - jb);
    const float* rows[8];
    for (int j = 0; j < jw; j++) rows[j] = W + size_t(j0 + jb + j) * ld + k0;
    for (int k = 0; k < kc; k++) {
      float* d = dst + k * NR + jb;
      for (int j = 0; j < jw; j++) d[j] = rows[j][k];
    }
  }
}

inline float* a_row(float* dst, int MR, int r) { return dst + size_t(r / MR) * MR * KC + (r % MR) * KC; }

void pack_a_transposed_portable(float* dst, const float* A, int ld, int MR, int c0, int c1, int k0, int kc) {
  const int rows = c1 - c0, padded = (rows + MR - 1) / MR * MR;
  for (int k = 0; k < kc; k++) {
    const float* src = A + size_t(k0 + k) * ld + c0;
    for (int r = 0; r < rows; r++) a_row(dst, MR, r)[k] = src[r];
  }
  for (int r = rows; r < padded; r++) std::memset(a_row(dst, MR, r), 0, sizeof(float) * kc);
}

#if MB_X86
// 6×16: 12 accumulators + 2 B vectors + 1 broadcast of the 16 ymm registers.
MB_AVX2 void kernel_avx2(int kc, const float* Ap, const float* Bp, float* C, int ldc, int mr, int nr, bool load,
                         const float* bias) {
  constexpr int MR = 6;
  for (int i = 0; i < mr; i++) _mm_prefetch(reinterpret_cast<const char*>(C + size_t(i) * ldc), _MM_HINT_T0);
  __m256 c0[MR], c1[MR];
  for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm256_setzero_ps();
  for (int k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_loadu_ps(Bp + k * 16), b1 = _mm256_loadu_ps(Bp + k * 16 + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      const __m256 a = _mm256_broadcast_ss(Ap + i * KC + k);
      c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
    }
  }
  if (nr == 16) {
    const __m256 bias0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    const __m256 bias1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      if (i >= mr) break;
      float* c = C + size_t(i) * ldc;
      __m256 x0 = _mm256_add_ps(c0[i], bias0), x1 = _mm256_add_ps(c1[i], bias1);
      if (load) {
        x0 = _mm256_add_ps(x0, _mm256_loadu_ps(c));
        x1 = _mm256_add_ps(x1, _mm256_loadu_ps(c + 8));
      }
      _mm256_storeu_ps(c, x0);
      _mm256_storeu_ps(c + 8, x1);
    }
    return;
  }
  // Edge tile: spill to a small array and finish in scalar code.
  alignas(32) float t[MR][16];
  for (int i = 0; i < MR; i++) {
    _mm256_store_ps(t[i], c0[i]);
    _mm256_store_ps(t[i] + 8, c1[i]);
  }
  for (int i = 0; i < mr; i++) {
    float* c = C + size_t(i) * ldc;
    for (int j = 0; j < nr; j++) c[j] = t[i][j] + (load ? c[j] : 0.f) + (bias ? bias[j] : 0.f);
  }
}

// 14×32: 28 accumulators + 2 B vectors + 1 broadcast A value of the 32 zmm registers. Its k loop alone runs at
// ~91 % of the FMA probe's rate on L1-resident data (as do 12×32, 8×48, 6×64; 93–97 % without the two B
// prefetches, which B streaming from L2 needs); a call with kc = 256 at 85–90 %.
MB_AVX512 void kernel_avx512(int kc, const float* Ap, const float* Bp, float* C, int ldc, int mr, int nr, bool load,
                             const float* bias) {
  constexpr int MR = 14;
  // The C tile is touched only after the k loop; fetch its lines now so the epilogue does not stall on
  // memory when C is larger than the caches (M = 16384 tokens).
  for (int i = 0; i < mr; i++) {
    _mm_prefetch(reinterpret_cast<const char*>(C + size_t(i) * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + size_t(i) * ldc + 16), _MM_HINT_T0);
  }
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
  for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm512_setzero_ps();
  for (int k = 0; k < kc; k++) {
    // B streams from L2; the hardware prefetcher alone leaves ~6% on the table (measured).
    _mm_prefetch(reinterpret_cast<const char*>(Bp + (k + 8) * 32), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(Bp + (k + 8) * 32 + 16), _MM_HINT_T0);
    const __m512 b0 = _mm512_loadu_ps(Bp + k * 32), b1 = _mm512_loadu_ps(Bp + k * 32 + 16);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
      const __m512 a = _mm512_set1_ps(Ap[i * KC + k]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
  }
  const __mmask16 m0 = nr >= 16 ? 0xFFFF : __mmask16((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? 0xFFFF : nr > 16 ? __mmask16((1u << (nr - 16)) - 1) : 0;
  const __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
  for (int i = 0; i < MR; i++) {
    if (i >= mr) break;
    float* c = C + size_t(i) * ldc;
    __m512 x0 = _mm512_add_ps(c0[i], bias0), x1 = _mm512_add_ps(c1[i], bias1);
    if (load) {
      x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(m0, c));
      x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, c + 16));
    }
    _mm512_mask_storeu_ps(c, m0, x0);
    _mm512_mask_storeu_ps(c + 16, m1, x1);
  }
}

// In-register 16×16 transpose: r[j] (row j, 16 floats) becomes column j.
MB_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // r[4q + c] holds, per 128-bit lane l, rows 4q..4q+3 of column 4l + c.
  for (int c = 0; c < 4; c++) {
    t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);       // cols c, 8+c; rows 0-7
    t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);   // cols 4+c, 12+c; rows 0-7
    t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);   // cols c, 8+c; rows 8-15
    t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);  // cols 4+c, 12+c; rows 8-15
  }
  for (int c = 0; c < 8; c++) {
    r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
  }
}

// 16×16 blocks: 16 rows of A (16 k) × 16 consecutive i, transposed in registers.
MB_AVX512 void pack_a_transposed_avx512(float* dst, const float* A, int ld, int MR, int c0, int c1, int k0, int kc) {
  const int rows = c1 - c0, padded = (rows + MR - 1) / MR * MR;
  for (int kb = 0; kb < kc; kb += 16) {
    const int kw = std::min(16, kc - kb);
    const __mmask16 km = kw == 16 ? 0xFFFF : __mmask16((1u << kw) - 1);
    // Ask for the next 16 rows now: each row contributes only rows*4 bytes, too short for the hardware
    // prefetcher, and the rows are M floats apart. Into L2: they map onto few L1 sets.
    for (int k = kb + 16, ke = std::min(kc, kb + 32); k < ke; k++)
      for (int b = 0; b < rows; b += 16)
        _mm_prefetch(reinterpret_cast<const char*>(A + size_t(k0 + k) * ld + c0 + b), _MM_HINT_T1);
    for (int rb = 0; rb < padded; rb += 16) {
      const int valid = std::max(0, std::min(16, rows - rb));
      const __mmask16 im = valid == 16 ? 0xFFFF : __mmask16((1u << valid) - 1);
      __m512 r[16];
#pragma GCC unroll 16
      for (int k = 0; k < 16; k++)
        r[k] = k < kw ? _mm512_maskz_loadu_ps(im, A + size_t(k0 + kb + k) * ld + c0 + rb) : _mm512_setzero_ps();
      transpose16(r);
      for (int j = 0, e = std::min(16, padded - rb); j < e; j++)
        _mm512_mask_storeu_ps(a_row(dst, MR, rb + j) + kb, km, r[j]);
    }
  }
}

MB_AVX512 void pack_transposed_avx512(float* dst, const float* W, int ld, int k0, int kc, int j0, int w) {
  constexpr int NR = 32;
  for (int kb = 0; kb < kc; kb += 16) {
    const int kw = std::min(16, kc - kb);
    const __mmask16 km = kw == 16 ? 0xFFFF : __mmask16((1u << kw) - 1);
    for (int half = 0; half < 2; half++) {
      __m512 r[16];
#pragma GCC unroll 16
      for (int j = 0; j < 16; j++) {
        const int jj = half * 16 + j;
        r[j] = jj < w ? _mm512_maskz_loadu_ps(km, W + size_t(j0 + jj) * ld + k0 + kb) : _mm512_setzero_ps();
      }
      transpose16(r);
#pragma GCC unroll 16
      for (int k = 0; k < 16; k++)
        if (k < kw) _mm512_storeu_ps(dst + (kb + k) * NR + half * 16, r[k]);
    }
  }
}

#endif  // MB_X86

const Impl& impl() {
  static const Impl chosen = [] {
    switch (active_isa()) {
#if MB_X86
      case Isa::Avx512: return Impl{14, 32, kernel_avx512, pack_transposed_avx512, pack_a_transposed_avx512};
      case Isa::Avx2: return Impl{6, 16, kernel_avx2, pack_transposed_portable<16>, pack_a_transposed_portable};
#endif
      default: return Impl{4, 16, kernel_portable<4, 16>, pack_transposed_portable<16>, pack_a_transposed_portable};
    }
  }();
  return chosen;
}

// ---------------------------------------------------------------------------------------------------
// Packing

// Grow-only, 64-byte aligned scratch; one per thread and role.
struct Scratch {
  float* p = nullptr;
  size_t n = 0;
  float* get(size_t need) {
    if (need > n) {
      std::free(p);
      n = (need + 15) & ~size_t(15);
      p = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
    }
    return p;
  }
  ~Scratch() { std::free(p); }
};
thread_local Scratch scratchA, scratchB;

struct Operands {
  float* C;
  const float* A;
  const float* B;       // unpacked B, or nullptr when Bpacked is used
  const float* Bpacked;  // prepacked weight (pack_weight layout), or nullptr
  const float* bias;
  int M, N, K;
  bool transA, transB;
  float beta;
};

// A not transposed: Ap[i*KC + k] = A[i0+i, k0+k] for i < mr, zero for mr <= i < MR.
void pack_a(float* Ap, const Operands& o, int MR, int i0, int mr, int k0, int kc) {
  for (int i = 0; i < mr; i++) std::memcpy(Ap + i * KC, o.A + size_t(i0 + i) * o.K + k0, sizeof(float) * kc);
  for (int i = mr; i < MR; i++) std::memset(Ap + i * KC, 0, sizeof(float) * kc);
}

// Prefetches part `part` of `parts` of the cache lines pack_a will read for the panel at rows
// [i0, i0+mr): called across the kernel calls of the previous panel, so the next panel's rows of A
// (far larger than the caches at M = 16384) arrive while the current one computes.
void prefetch_a(const Operands& o, int i0, int mr, int k0, int kc, int part, int parts) {
  const int perRow = (kc + 15) / 16, lines = mr * perRow;
  for (int l = part * lines / parts, e = (part + 1) * lines / parts; l < e; l++)
    __builtin_prefetch(o.A + size_t(i0 + l / perRow) * o.K + k0 + (l % perRow) * 16, 0, 3);
}

// One KC×NR panel per NR columns of [n0, n0+nw): Bp[p*kc*NR + k*NR + j] = op(B)[k0+k, n0+p*NR+j], zero
// beyond the edge. `src` is B [K, N] (transB false) or [N, K] (transB true) with row length ld.
void pack_b(float* Bp, const float* src, int ld, bool transB, int NR, PackTransposed packTransposed, int k0, int kc,
            int n0, int nw) {
  for (int p = 0; p * NR < nw; p++) {
    float* dst = Bp + size_t(p) * kc * NR;
    const int j0 = n0 + p * NR, w = std::min(NR, nw - p * NR);
    if (!transB) {
      for (int k = 0; k < kc; k++) {
        float* d = dst + k * NR;
        std::memcpy(d, src + size_t(k0 + k) * ld + j0, sizeof(float) * w);
        std::fill(d + w, d + NR, 0.f);
      }
    } else {
      packTransposed(dst, src, ld, k0, kc, j0, w);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Driver

// Rows [m0, m1) × columns [n0, n1) of C (n0 a multiple of NR), on the calling thread.
// Loops: column blocks of NC (backwards when `reverse`) → depth blocks of kc ≤ KC (the kc×NC block of op(B),
// ≤ 1.3 MB, packed once unless prepacked, stays in L2) → MR-row panels of A over all the rows (each packed panel,
// ≤ 16 KB, stays in L1) → NR-column panels of B. The next A panel's rows are prefetched while the current one
// computes, and the kernel prefetches its C tile, since at M = 16384 tokens neither A nor C fits in the caches.
void gemm_block(const Impl& im, const Operands& o, int m0, int m1, int n0, int n1, bool reverse) {
  const int MR = im.MR, NR = im.NR, K = o.K, kcMax = depth_block(K);
  const int nBlocks = (n1 - n0 + NC_TARGET - 1) / NC_TARGET;
  const int NC = ((n1 - n0 + nBlocks - 1) / nBlocks + NR - 1) / NR * NR;
  const int Npad = (o.N + NR - 1) / NR * NR;
  float* Ap = scratchA.get(size_t(o.transA ? A_CHUNK_PANELS : 1) * MR * KC);
  float* Bp = o.Bpacked ? nullptr : scratchB.get(size_t(KC) * NC);
  const int ncBlocks = (n1 - n0 + NC - 1) / NC;
  for (int bi = 0; bi < ncBlocks; bi++) {
    const int nc0 = n0 + (reverse ? ncBlocks - 1 - bi : bi) * NC;
    const int nw = std::min(NC, n1 - nc0);
    const int panels = (nw + NR - 1) / NR;
    for (int k0 = 0; k0 < K; k0 += kcMax) {
      const int kc = std::min(kcMax, K - k0);
      const float* Bblk;
      if (o.Bpacked) {
        Bblk = o.Bpacked + size_t(k0) * Npad + size_t(nc0) * kc;
      } else {
        pack_b(Bp, o.B, o.transB ? K : o.N, o.transB, NR, im.packTransposed, k0, kc, nc0, nw);
        Bblk = Bp;
      }
      const bool first = k0 == 0;
      const bool load = !first || o.beta != 0.f;
      const float* bias = first && o.bias ? o.bias + nc0 : nullptr;
      // With transA, A [K, M] is packed a chunk of panels at a time, reading its rows sequentially
      // (one panel alone would read kc rows at a stride of M floats, a few L1 sets, from memory).
      for (int c0 = m0; c0 < m1; c0 += o.transA ? A_CHUNK_PANELS * MR : m1 - m0) {
        const int c1 = o.transA ? std::min(m1, c0 + A_CHUNK_PANELS * MR) : m1;
        if (o.transA) im.packATransposed(Ap, o.A, o.M, MR, c0, c1, k0, kc);
        for (int i0 = c0; i0 < c1; i0 += MR) {
          const int mr = std::min(MR, c1 - i0), next = i0 + MR;
          const float* panel = Ap + (o.transA ? size_t(i0 - c0) * KC : 0);
          if (!o.transA) pack_a(Ap, o, MR, i0, mr, k0, kc);
          float* Crow = o.C + size_t(i0) * o.N + nc0;
          for (int p = 0; p < panels; p++) {
            if (!o.transA && next < c1) prefetch_a(o, next, std::min(MR, c1 - next), k0, kc, p, panels);
            im.kernel(kc, panel, Bblk + size_t(p) * kc * NR, Crow + p * NR, o.N, mr, std::min(NR, nw - p * NR), load,
                      bias ? bias + p * NR : nullptr);
          }
        }
      }
    }
  }
}

// The layout gemm_block reads: for each depth block (kc = depth_block(K) deep, the last may be shorter) starting at
// k0, at offset k0*Npad, the Npad/NR panels of kc×NR, i.e. the whole of op(B) = Wᵀ packed as one block per depth
// block. `fn(panel, k0, kc, j0, w)` runs once per panel (in parallel): the panel holding columns [j0, j0+w) of
// op(B), rows [k0, k0+kc).
template <typename Fn>
void for_each_weight_panel(int N, int K, Fn fn) {
  const int NR = impl().NR;
  const int Npad = (N + NR - 1) / NR * NR;
  const int panels = Npad / NR;
  const int kcMax = depth_block(K), kBlocks = (K + kcMax - 1) / kcMax;
  parallel_for(kBlocks * panels, [&](int t) {
    const int kb = t / panels, p = t % panels;
    const int k0 = kb * kcMax, kc = std::min(kcMax, K - k0);
    fn(size_t(k0) * Npad + size_t(p) * kc * NR, k0, kc, p * NR, std::min(NR, N - p * NR));
  });
}

// Packs op(B) (`src` is B [K, N], or [N, K] when transB, row length ld) whole, in that layout, on the pool.
void pack_op_b(float* dst, const float* src, int ld, bool transB, int N, int K) {
  const Impl& im = impl();
  for_each_weight_panel(N, K, [&](size_t panel, int k0, int kc, int j0, int w) {
    pack_b(dst + panel, src, ld, transB, im.NR, im.packTransposed, k0, kc, j0, w);
  });
}

// op(B) packed once for a call that several row shares would otherwise each pack (grow-only; kernels are called
// from one thread at a time).
Scratch sharedB;

void run(const Operands& in) {
  Operands o = in;
  const int M = o.M, N = o.N, K = o.K;
  if (M == 0 || N == 0) return;
  if (K == 0) {  // no product: C = beta*C + bias
    for (int i = 0; i < M; i++) {
      float* c = o.C + size_t(i) * N;
      for (int j = 0; j < N; j++) c[j] = (o.beta != 0.f ? c[j] : 0.f) + (o.bias ? o.bias[j] : 0.f);
    }
    return;
  }
  const Impl& im = impl();
  const int MR = im.MR, NR = im.NR;
  const int threads = num_threads();
  // Split the threads into tm (over M) × tn (over N), minimising the slowest thread's estimated cycles:
  // FMAs / (FMA lanes per cycle) plus packing (B once per column range, A once per B block of every column
  // task: a split over N cuts each thread's columns into kTasksPerThread tasks, and each packs the thread's
  // rows of A again).
  constexpr int kTasksPerThread = 4;
  int tm = 1, tn = 1;
  const double flops = double(M) * N * K;
  if (threads > 1 && flops >= double(1 << 18)) {
    double best = 1e300;
    for (int a = 1; a <= threads; a++) {
      if (threads % a) continue;
      const int b = threads / a;
      const double mt = double((M + a * MR - 1) / (a * MR) * MR);
      const double nt = double((N + b * NR - 1) / (b * NR) * NR);
      // Packing B: each thread packs its columns, or with a > 1 the threads pack all of it once, together.
      const double bPack = o.Bpacked ? 0.0 : (o.transB ? 1.0 : 0.25) * (a > 1 ? double(N) / threads : nt);
      const int columnTasks = b > 1 ? kTasksPerThread : 1;
      const double aPasses = columnTasks * std::ceil(nt / columnTasks / NC_TARGET);
      const double cost = mt * nt * K / 32.0 + bPack * K + 0.1 * mt * K * aPasses;
      if (cost < best) best = cost, tm = a, tn = b;
    }
  }
  // Several row shares would each pack all of op(B): pack it once, on every thread, as a prepacked weight
  // (dX = dY·W and dW += dYᵀ·X in training). Up to 64 MB, which the buffer then keeps; a larger op(B) (the
  // MLM decoder's 50368 × 768 in dX) is packed block by block per thread as before.
  const size_t packedSize = packed_weight_size(N, K);
  if (!o.Bpacked && tm > 1 && packedSize <= (size_t(16) << 20)) {
    float* packed = sharedB.get(packedSize);
    pack_op_b(packed, o.B, o.transB ? K : N, o.transB, N, K);
    o.Bpacked = packed;
    o.B = nullptr;
  }
  // Cut each thread's share into tasks taken dynamically, so a thread that starts late (woken slowly, or sharing
  // its core with another process) does less of the work instead of holding up the call. Along M: with B
  // prepacked (a weight, or packed once above), tasks of about 512 rows and at least kTasksPerThread per thread,
  // so the threads finish together and fewer of a task's C rows leave the caches between depth blocks (16384 ×
  // 768 × 1152 on two threads: 70–77 % of the FMA probe in 2048-row tasks, 77–80 % in 512); otherwise only when
  // each task has at least 1024 rows, since a task that packs its own B block by block pays about as much as
  // 8-32 rows of FMAs per pack.
  const int splitM = tm == 1 ? 1
                     : o.Bpacked ? std::max(kTasksPerThread, M / (tm * 512))
                     : M >= tm * 4 * 1024 ? kTasksPerThread : 1;
  const int splitN = tn > 1 ? kTasksPerThread : 1;
  // At least 256 rows per task along M: each task streams its own pass over op(B), which a task of few rows
  // reuses too little (dW += dYᵀ·X over 4096 tokens with 768 rows: 61 % of the FMA probe in 7 tasks, 70 % in 2).
  const int tasksM = tm * std::max(1, std::min(splitM, M / (tm * 256)));
  const int tasksN = std::max(1, std::min(tn * splitN, (N + 2 * NR - 1) / (2 * NR)));
  const int rowsPer = (M + tasksM * MR - 1) / (tasksM * MR) * MR;
  const int colsPer = (N + tasksN * NR - 1) / (tasksN * NR) * NR;
  // The task body captures one reference, so std::function keeps it inline instead of allocating.
  struct Split {
    const Impl& im;
    const Operands& o;
    int tasksN, rowsPer, colsPer;
  } split{im, o, tasksN, rowsPer, colsPer};
  parallel_for(tasksM * tasksN, [&split](int t) {
    const Operands& o = split.o;
    const int m0 = (t / split.tasksN) * split.rowsPer, n0 = (t % split.tasksN) * split.colsPer;
    const int m1 = std::min(o.M, m0 + split.rowsPer), n1 = std::min(o.N, n0 + split.colsPer);
    // Odd tasks sweep the column blocks backwards, so two threads seldom stream the same block of B at once
    // (measured +3 % at 8647 × 2304 × 768 on two threads); each element's summation order is unchanged.
    if (m0 < m1 && n0 < n1) gemm_block(split.im, o, m0, m1, n0, n1, t & 1);
  });
}

}  // namespace

void gemm(float* C, const float* A, const float* B, const float* bias, int M, int N, int K, bool transA, bool transB,
          float beta) {
  run(Operands{C, A, B, nullptr, bias, M, N, K, transA, transB, beta});
}

size_t packed_weight_size(int N, int K) {
  const int NR = impl().NR;
  return size_t((N + NR - 1) / NR * NR) * K;
}

void pack_weight(float* Wp, const float* W, int N, int K) { pack_op_b(Wp, W, K, true, N, K); }

// The inverse of pack_weight (exact: packing only moves values), so an inference model can keep the packed
// copy alone and still hand back W when training or saving needs it.
void unpack_weight(float* W, const float* Wp, int N, int K) {
  const int NR = impl().NR;
  for_each_weight_panel(N, K, [&](size_t panel, int k0, int kc, int j0, int w) {
    for (int j = 0; j < w; j++) {
      float* row = W + size_t(j0 + j) * K + k0;
      for (int k = 0; k < kc; k++) row[k] = Wp[panel + size_t(k) * NR + j];
    }
  });
}

void gemm_packed(float* C, const float* A, const float* Wp, const float* bias, int M, int N, int K, float beta) {
  run(Operands{C, A, nullptr, Wp, bias, M, N, K, false, true, beta});
}

// ---------------------------------------------------------------------------------------------------
// FMA peak probe: independent FMA chains on registers only, at the widest width the ISA has (the
// same instructions the GEMM microkernel issues), on every pool thread.

namespace {

// Lambdas do not inherit a function's target attribute, so each probe spells out its timing loop.
double elapsed_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

#if MB_X86
MB_AVX512 double fma_probe_avx512(double seconds) {
  constexpr int chains = 16;
  __m512 acc[chains];
  for (int c = 0; c < chains; c++) acc[c] = _mm512_set1_ps(0.001f * c);
  const __m512 mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-7f);
  double flops = 0;
  const auto start = std::chrono::steady_clock::now();
  while (elapsed_since(start) < seconds) {
    for (int it = 0; it < 4096; it++)
#pragma GCC unroll 16
      for (int c = 0; c < chains; c++) acc[c] = _mm512_fmadd_ps(acc[c], mul, add);
    flops += 4096.0 * chains * 16 * 2;
  }
  __m512 s = acc[0];
  for (int c = 1; c < chains; c++) s = _mm512_add_ps(s, acc[c]);
  return flops + (_mm512_reduce_add_ps(s) == 12345.f ? 1 : 0);
}

MB_AVX2 double fma_probe_avx2(double seconds) {
  constexpr int chains = 12;
  __m256 acc[chains];
  for (int c = 0; c < chains; c++) acc[c] = _mm256_set1_ps(0.001f * c);
  const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
  double flops = 0;
  const auto start = std::chrono::steady_clock::now();
  while (elapsed_since(start) < seconds) {
    for (int it = 0; it < 4096; it++)
#pragma GCC unroll 12
      for (int c = 0; c < chains; c++) acc[c] = _mm256_fmadd_ps(acc[c], mul, add);
    flops += 4096.0 * chains * 8 * 2;
  }
  alignas(32) float t[8];
  __m256 s = acc[0];
  for (int c = 1; c < chains; c++) s = _mm256_add_ps(s, acc[c]);
  _mm256_store_ps(t, s);
  return flops + (t[0] == 12345.f ? 1 : 0);
}

#endif  // MB_X86

double fma_probe_portable(double seconds) {
  constexpr int chains = 16, width = 16;
  float acc[chains][width];
  for (int c = 0; c < chains; c++)
    for (int w = 0; w < width; w++) acc[c][w] = 0.001f * (c + w);
  double flops = 0;
  const auto start = std::chrono::steady_clock::now();
  while (elapsed_since(start) < seconds) {
    for (int it = 0; it < 4096; it++)
      for (int c = 0; c < chains; c++)
        for (int w = 0; w < width; w++) acc[c][w] = acc[c][w] * 0.999999f + 1e-7f;
    flops += 4096.0 * chains * width * 2;
  }
  return flops + (acc[3][5] == 12345.f ? 1 : 0);
}

}  // namespace

double fma_peak_gflops(double seconds) {
  const int threads = num_threads();
  std::vector<double> flops(threads, 0.0);
  [[maybe_unused]] const Isa isa = active_isa();
  const auto t0 = std::chrono::steady_clock::now();
  parallel_for(threads, [&](int t) {
#if MB_X86
    if (isa == Isa::Avx512) flops[t] = fma_probe_avx512(seconds);
    else if (isa == Isa::Avx2) flops[t] = fma_probe_avx2(seconds);
    else
#endif
      flops[t] = fma_probe_portable(seconds);
  });
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double total = 0;
  for (double f : flops) total += f;
  return total / elapsed / 1e9;
}

}  // namespace mb
