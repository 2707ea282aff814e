// bf16 GEMM for the forward Linear: C = beta*C + bf16(A)·bf16(W)ᵀ + bias, float32 accumulation and output.
//
// The weight W [N, K] is packed once (pack_weight_bf16) into AMX B-tile order: for each panel of 16
// output columns and each block of 32 k, a 16×16×2 tile whose row r holds, for every column n, the pair
// (W[n, 2r], W[n, 2r+1]) rounded to bf16 (round to nearest even). N is padded to 32 and K to 32 with
// zeros. The activations A [M, K] are rounded to bf16 on the fly, a chunk of rows at a time, into a
// row-major thread-local scratch (K padded to 32, rows to 32).
// The same two layouts feed three paths, picked once per process (`path()`):
//   amx        — Intel AMX tiles: 2×2 tiles of 16×16 C per step (TDPBF16PS), needs arch_prctl permission;
//   avx512bf16 — VDPBF16PS: a B-tile row is exactly one zmm of 16 column pairs, A pairs are broadcast;
//   portable   — plain loops over the same bf16 data in float32 (correct everywhere, not fast).
// MODERNBERT_ISA caps the choice as for float32 (below avx512: portable); MODERNBERT_BF16=avx512bf16 or
// portable caps it further (the tests use this to cover every path on an AMX machine).
#if !defined(MB_X86)
#if defined(__x86_64__) || defined(__i386__)
#define MB_X86 1
#else
#define MB_X86 0  // other CPUs build the portable path only
#endif
#endif
#if MB_X86
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "cpu_features.h"
#include "kernels.h"
#include "threadpool.h"

#define MB_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))
#define MB_AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma,prfchw,amx-tile,amx-bf16")))

namespace mb {
namespace {

enum class Bf16Path : int { Portable = 0, Avx512Bf16 = 1, Amx = 2 };

// Linux keeps AMX tile data disabled until the process asks for it.
bool request_amx() {
#if defined(__linux__) && defined(__x86_64__) && MB_X86
  constexpr long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
  return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
  return false;
#endif
}

Bf16Path path() {
  static const Bf16Path chosen = [] {
    if (!MB_X86) return Bf16Path::Portable;
    const CpuFeatures& f = cpu_features();
    if (active_isa() != Isa::Avx512 || !f.avx512bf16) return Bf16Path::Portable;
    Bf16Path best = f.amxBf16 ? Bf16Path::Amx : Bf16Path::Avx512Bf16;
    if (const char* env = std::getenv("MODERNBERT_BF16")) {
      if (!std::strcmp(env, "portable")) best = Bf16Path::Portable;
      else if (!std::strcmp(env, "avx512bf16")) best = std::min(best, Bf16Path::Avx512Bf16);
    }
    if (best == Bf16Path::Amx && !request_amx()) best = Bf16Path::Avx512Bf16;
    return best;
  }();
  return chosen;
}

inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

// float -> bf16, round to nearest even (NaN stays NaN).
inline uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}
inline float from_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// Grow-only, 64-byte aligned scratch, one per thread.
template <typename T>
struct Scratch {
  T* p = nullptr;
  size_t n = 0;
  T* get(size_t need) {
    if (need > n) {
      std::free(p);
      n = (need * sizeof(T) + 63) / 64 * 64 / sizeof(T);
      p = static_cast<T*>(std::aligned_alloc(64, n * sizeof(T)));
    }
    return p;
  }
  ~Scratch() { std::free(p); }
};
thread_local Scratch<uint16_t> activations;
thread_local Scratch<float> partialSums;  // AMX: a 32-row slice's sums across a column block, between depth blocks

void convert_row_portable(uint16_t* dst, const float* src, int K, int Kp) {
  for (int k = 0; k < K; k++) dst[k] = to_bf16(src[k]);
  for (int k = K; k < Kp; k++) dst[k] = 0;
}

struct Problem {
  float* C;
  const float* A;
  const uint16_t* Wp;  // packed weight
  const float* bias;
  int M, N, K, Kp;
  float beta;
};

// Offset (in uint16) of the B tile for 16-column panel jp and 32-deep block kb.
inline size_t tile_offset(int jp, int kb, int KB) { return (size_t(jp) * KB + kb) * 512; }

// Blocking, per thread: chunks of MCB rows of A are rounded to bf16 into thread-local scratch (≤ 384 KB
// at K = 768, in L2), then swept against column blocks of NCB (the block's B tiles, 384 KB at K = 768,
// also in L2); each 32-row slice of the chunk is reused across the block's NCB/32 column pairs. AMX also cuts
// the depth into blocks of KCB 32-deep steps (256), so a 32-row slice's A tiles for one block (16 KB) stay in L1
// across the column pairs while their B tiles (16 KB) stream from L2.
constexpr int MCB = 256, NCB = 256, KCB = 8;

// --- Portable: the same products in float32, one output at a time.
void block_portable(const Problem& p, const uint16_t* Ab, int m0, int m1, int n0, int n1) {
  const int KB = p.Kp / 32;
  for (int i = m0; i < m1; i++) {
    const uint16_t* a = Ab + size_t(i - m0) * p.Kp;
    for (int j = n0; j < n1; j++) {
      float s = 0.f;
      for (int kb = 0; kb < KB; kb++) {
        const uint16_t* b = p.Wp + tile_offset(j / 16, kb, KB) + (j % 16) * 2;
        for (int r = 0; r < 16; r++)
          s += from_bf16(a[kb * 32 + 2 * r]) * from_bf16(b[r * 32]) +
               from_bf16(a[kb * 32 + 2 * r + 1]) * from_bf16(b[r * 32 + 1]);
      }
      float* c = p.C + size_t(i) * p.N + j;
      *c = s + (p.beta != 0.f ? *c : 0.f) + (p.bias ? p.bias[j] : 0.f);
    }
  }
}

#if MB_X86
// One row of A into bf16 row `dst` of length Kp (zero beyond K).
MB_AVX512BF16 void convert_row_avx512(uint16_t* dst, const float* src, int K, int Kp) {
  int k = 0;
  for (; k + 32 <= K; k += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k));
    _mm512_storeu_si512(dst + k, (__m512i)v);
  }
  for (; k < K; k++) dst[k] = to_bf16(src[k]);
  for (; k < Kp; k++) dst[k] = 0;
}

// C[i0 + i, j0 + j] = acc[i*ldacc + j] + beta*C + bias for the mr×nr corner.
MB_AVX512BF16 void store_tile_avx512(const Problem& p, const float* acc, int ldacc, int i0, int mr, int j0, int nr) {
  for (int jb = 0; jb < nr; jb += 16) {
    const int w = std::min(16, nr - jb);
    const __mmask16 m = w == 16 ? 0xFFFF : __mmask16((1u << w) - 1);
    const __m512 b = p.bias ? _mm512_maskz_loadu_ps(m, p.bias + j0 + jb) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
      float* c = p.C + size_t(i0 + i) * p.N + j0 + jb;
      __m512 x = _mm512_add_ps(_mm512_loadu_ps(acc + i * ldacc + jb), b);
      if (p.beta != 0.f) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, c));
      _mm512_mask_storeu_ps(c, m, x);
    }
  }
}

// --- AMX: tiles 0-3 accumulate a 32×32 block of C, 4-5 hold A (16 rows × 32 k), 6-7 hold B.
struct alignas(64) TileConfig {
  uint8_t palette = 1, startRow = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tile state is per thread: configure before a task, release after it.
// The config lives in a global: _tile_loadconfig's asm declares a read of one byte only, so the compiler
// would drop the stores filling a local one.
const TileConfig tileConfig = [] {
  TileConfig c;
  for (int t = 0; t < 8; t++) c.colsb[t] = 64, c.rows[t] = 16;
  return c;
}();
MB_AMX void amx_begin() { _tile_loadconfig(&tileConfig); }
MB_AMX void amx_end() { _tile_release(); }

MB_AMX void block_amx(const Problem& p, const uint16_t* Ab, int m0, int m1, int n0, int n1) {
  const int KB = p.Kp / 32;
  const size_t lda = size_t(p.Kp) * 2;  // bytes per A row
  // The 32 × NCB partial sums of the current 32-row slice between depth blocks (32 KB, in L1/L2). Depth blocks
  // took 16384 × 2304 × 768 on two cores from 2.0–2.2 to 2.3–2.5 TFLOP/s in paired runs: the tile loads from L2
  // were the limit (AMX alone runs 3.8 TFLOP/s per core, tile loads from L1 included).
  float* partial = partialSums.get(size_t(32) * NCB);
  for (int nc0 = n0; nc0 < n1; nc0 += NCB) {
    const int nc1 = std::min(n1, nc0 + NCB);
    for (int i0 = m0; i0 < m1; i0 += 32) {
      const uint16_t* a0 = Ab + size_t(i0 - m0) * p.Kp;
      const uint16_t* a1 = a0 + size_t(16) * p.Kp;
      const int mr = std::min(32, m1 - i0);
      for (int kc0 = 0; kc0 < KB; kc0 += KCB) {
        const int kc1 = std::min(KB, kc0 + KCB);
        const bool firstK = kc0 == 0, lastK = kc1 == KB;
        for (int j0 = nc0; j0 < nc1; j0 += 32) {
          const uint16_t* b0 = p.Wp + tile_offset(j0 / 16, 0, KB);
          const uint16_t* b1 = p.Wp + tile_offset(j0 / 16 + 1, 0, KB);
          const int nr = std::min(32, n1 - j0);
          float* acc = partial + (j0 - nc0);  // this column pair's 32 columns of the slice
          // A whole tile without bias (the model's case) moves between C and the tile registers directly:
          // beta = 1 loads C as the accumulators' start. Edge tiles and bias go through `acc`.
          const bool direct = mr == 32 && nr == 32 && !p.bias;
          float* c = p.C + size_t(i0) * p.N + j0;
          const size_t ldc = size_t(p.N) * 4;
          if (!firstK) {
            _tile_loadd(0, acc, NCB * 4);
            _tile_loadd(1, acc + 16, NCB * 4);
            _tile_loadd(2, acc + 16 * NCB, NCB * 4);
            _tile_loadd(3, acc + 16 * NCB + 16, NCB * 4);
          } else if (direct && p.beta != 0.f) {
            _tile_loadd(0, c, ldc);
            _tile_loadd(1, c + 16, ldc);
            _tile_loadd(2, c + size_t(16) * p.N, ldc);
            _tile_loadd(3, c + size_t(16) * p.N + 16, ldc);
          } else {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
          }
          // C is written after the last depth block: start fetching its lines now (150 MB at M = 16384).
          if (lastK)
            for (int i = 0; i < mr; i++) {
              __builtin_prefetch(c + size_t(i) * p.N, 1, 3);
              __builtin_prefetch(c + size_t(i) * p.N + 16, 1, 3);
            }
          for (int kb = kc0; kb < kc1; kb++) {
            // The next step's B tiles into L1 (+4 % over the hardware prefetchers alone).
            if (kb + 1 < KB)
              for (int l = 0; l < 16; l++) {
                _mm_prefetch(reinterpret_cast<const char*>(b0 + size_t(kb + 1) * 512) + l * 64, _MM_HINT_T0);
                _mm_prefetch(reinterpret_cast<const char*>(b1 + size_t(kb + 1) * 512) + l * 64, _MM_HINT_T0);
              }
            _tile_loadd(4, a0 + kb * 32, lda);
            _tile_loadd(5, a1 + kb * 32, lda);
            _tile_loadd(6, b0 + size_t(kb) * 512, 64);
            _tile_loadd(7, b1 + size_t(kb) * 512, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
          }
          if (lastK && direct) {
            _tile_stored(0, c, ldc);
            _tile_stored(1, c + 16, ldc);
            _tile_stored(2, c + size_t(16) * p.N, ldc);
            _tile_stored(3, c + size_t(16) * p.N + 16, ldc);
          } else {
            _tile_stored(0, acc, NCB * 4);
            _tile_stored(1, acc + 16, NCB * 4);
            _tile_stored(2, acc + 16 * NCB, NCB * 4);
            _tile_stored(3, acc + 16 * NCB + 16, NCB * 4);
            if (lastK) store_tile_avx512(p, acc, NCB, i0, mr, j0, nr);
          }
        }
      }
    }
  }
}

// --- AVX512-BF16: 8 rows × 32 columns, 16 accumulators; per k pair, two B rows and 8 broadcast A pairs.
MB_AVX512BF16 void block_avx512bf16(const Problem& p, const uint16_t* Ab, int m0, int m1, int n0, int n1) {
  const int KB = p.Kp / 32;
  alignas(64) float acc[8 * 32];
  for (int nc0 = n0; nc0 < n1; nc0 += NCB) {
    const int nc1 = std::min(n1, nc0 + NCB);
    for (int i0 = m0; i0 < m1; i0 += 8) {
      const uint32_t* a = reinterpret_cast<const uint32_t*>(Ab + size_t(i0 - m0) * p.Kp);
      const size_t lda = size_t(p.Kp) / 2;  // k pairs per row
      for (int j0 = nc0; j0 < nc1; j0 += 32) {
        __m512 c0[8], c1[8];
        for (int i = 0; i < 8; i++) c0[i] = c1[i] = _mm512_setzero_ps();
        for (int kb = 0; kb < KB; kb++) {
          const uint16_t* b0 = p.Wp + tile_offset(j0 / 16, kb, KB);
          const uint16_t* b1 = p.Wp + tile_offset(j0 / 16 + 1, kb, KB);
          for (int r = 0; r < 16; r++) {
            const __m512bh v0 = (__m512bh)_mm512_loadu_si512(b0 + r * 32);
            const __m512bh v1 = (__m512bh)_mm512_loadu_si512(b1 + r * 32);
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
              const __m512bh ai = (__m512bh)_mm512_set1_epi32(int(a[i * lda + kb * 16 + r]));
              c0[i] = _mm512_dpbf16_ps(c0[i], ai, v0);
              c1[i] = _mm512_dpbf16_ps(c1[i], ai, v1);
            }
          }
        }
        for (int i = 0; i < 8; i++) {
          _mm512_store_ps(acc + i * 32, c0[i]);
          _mm512_store_ps(acc + i * 32 + 16, c1[i]);
        }
        store_tile_avx512(p, acc, 32, i0, std::min(8, m1 - i0), j0, std::min(32, n1 - j0));
      }
    }
  }
}

#endif  // MB_X86

// Rows [m0, m1) × columns [n0, n1) of C on the calling thread, on the process's bf16 path.
void run_block(const Problem& p, int m0, int m1, int n0, int n1) {
  [[maybe_unused]] const Bf16Path pth = path();
#if MB_X86
  if (pth == Bf16Path::Amx) amx_begin();
#endif
  uint16_t* Ab = activations.get(size_t(MCB) * p.Kp);
  for (int mc0 = m0; mc0 < m1; mc0 += MCB) {
    const int mc1 = std::min(m1, mc0 + MCB);
    // Round this chunk of A to bf16; rows up to the next multiple of 32 are zero so whole tiles load.
    for (int i = mc0, e = mc0 + round_up(mc1 - mc0, 32); i < e; i++) {
      uint16_t* dst = Ab + size_t(i - mc0) * p.Kp;
      if (i >= p.M) std::memset(dst, 0, sizeof(uint16_t) * p.Kp);
#if MB_X86
      else if (pth != Bf16Path::Portable) convert_row_avx512(dst, p.A + size_t(i) * p.K, p.K, p.Kp);
#endif
      else convert_row_portable(dst, p.A + size_t(i) * p.K, p.K, p.Kp);
    }
#if MB_X86
    if (pth == Bf16Path::Amx) block_amx(p, Ab, mc0, mc1, n0, n1);
    else if (pth == Bf16Path::Avx512Bf16) block_avx512bf16(p, Ab, mc0, mc1, n0, n1);
    else
#endif
      block_portable(p, Ab, mc0, mc1, n0, n1);
  }
#if MB_X86
  if (pth == Bf16Path::Amx) amx_end();
#endif
}

}  // namespace

const char* bf16_path_name() {
  switch (path()) {
    case Bf16Path::Amx: return "amx";
    case Bf16Path::Avx512Bf16: return "avx512bf16";
    default: return "portable";
  }
}

size_t packed_weight_bf16_size(int N, int K) { return size_t(round_up(N, 32)) * round_up(K, 32); }

void pack_weight_bf16(uint16_t* Wp, const float* W, int N, int K) {
  const int Np = round_up(N, 32), KB = round_up(K, 32) / 32;
  parallel_for(Np / 16, [&](int jp) {
    for (int kb = 0; kb < KB; kb++) {
      uint16_t* t = Wp + tile_offset(jp, kb, KB);
      for (int r = 0; r < 16; r++)
        for (int n = 0; n < 16; n++)
          for (int e = 0; e < 2; e++) {
            const int row = jp * 16 + n, k = kb * 32 + 2 * r + e;
            t[r * 32 + n * 2 + e] = row < N && k < K ? to_bf16(W[size_t(row) * K + k]) : 0;
          }
    }
  });
}

void gemm_bf16(float* C, const float* A, const uint16_t* Wp, const float* bias, int M, int N, int K, float beta) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // no product: C = beta*C + bias
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        float* c = C + size_t(i) * N + j;
        *c = (beta != 0.f ? *c : 0.f) + (bias ? bias[j] : 0.f);
      }
    return;
  }
  path();  // choose the path (and ask for AMX) on the calling thread, before the workers need it
  const Problem p{C, A, Wp, bias, M, N, K, round_up(K, 32), beta};
  // Split rows (in 32-row blocks) when there are enough, else columns (32-column pairs), into a few
  // tasks per thread taken dynamically (a thread that starts late does less).
  const int threads = num_threads();
  const int rowBlocks = round_up(M, 32) / 32, colBlocks = round_up(N, 32) / 32;
  const bool byRows = rowBlocks >= 4 * threads || rowBlocks >= colBlocks;
  const int units = byRows ? rowBlocks : colBlocks;
  const int tasks = std::min(units, threads > 1 ? 4 * threads : 1);
  // The task body captures one reference, so std::function keeps it inline instead of allocating.
  struct Split {
    const Problem& p;
    bool byRows;
    int units, tasks;
  } split{p, byRows, units, tasks};
  parallel_for(tasks, [&split](int t) {
    const Problem& p = split.p;
    const int u0 = split.units * t / split.tasks, u1 = split.units * (t + 1) / split.tasks;
    int m0 = 0, m1 = p.M, n0 = 0, n1 = p.N;
    if (split.byRows) m0 = u0 * 32, m1 = std::min(p.M, u1 * 32);
    else n0 = u0 * 32, n1 = std::min(p.N, u1 * 32);
    if (m0 < m1 && n0 < n1) run_block(p, m0, m1, n0, n1);
  });
}

}  // namespace mb
