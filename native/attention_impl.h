// Flash attention, forward and backward, for ONE instruction set: included by attention.cc once per ISA, inside
// that ISA's namespace and `#pragma GCC target` region, after vec_isa.h (no include guard on purpose).
//
// Layout of the work: a tile is (block of keys) × (block of queries). Scores are kept transposed, St[key][query],
// so the online-softmax statistics (max, sum) of W queries sit in one vector and every step is lane-parallel.
// All products go through tile_gemm, a register-blocked C (+)= A·B whose A operand is read element by element
// with arbitrary strides (packed rows of K or V, or Pᵀ), so only Qᵀ (and dOᵀ in the backward) is transposed.

// Rows of C that one microkernel call holds in registers, for nv vectors of columns.
constexpr int rows_for(int nv) {
#if MB_VEC_ISA == 2
  return nv >= 4 ? 6 : 8;  // ≤ 24 accumulators of the 32 zmm registers
#else
  return nv >= 2 ? 4 : 6;  // ≤ 12 accumulators of the 16 ymm registers
#endif
}
#if MB_VEC_ISA == 2
constexpr int kMaxNv = 4;
#else
constexpr int kMaxNv = 2;
#endif
constexpr int kMaxRows = 8;

// C[RB, NV·W] (+)= Σ_k A[r·ars + k·aks] · B[k·ldb + 0:NV·W].
template <int RB, int NV, bool ACC>
static void tile_kernel(float* C, int ldc, const float* A, int ars, int aks, const float* B, int ldb, int K) {
  Vf acc[RB][NV];
#pragma GCC unroll 8
  for (int r = 0; r < RB; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[r][v] = ACC ? load(C + r * ldc + v * W) : zero();
  for (int k = 0; k < K; k++) {
    Vf b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) b[v] = load(B + size_t(k) * ldb + v * W);
    const float* a = A + size_t(k) * aks;
#pragma GCC unroll 8
    for (int r = 0; r < RB; r++) {
      const Vf ar = set1(a[size_t(r) * ars]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[r][v] = fma(ar, b[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < RB; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) store(C + r * ldc + v * W, acc[r][v]);
}

using TileFn = void (*)(float*, int, const float*, int, int, const float*, int, int);

template <bool ACC, int RB, int... NV>
constexpr std::array<TileFn, kMaxNv> tile_row(std::integer_sequence<int, NV...>) {
  return {{&tile_kernel<RB, NV + 1, ACC>...}};
}
template <bool ACC, int... RB>
constexpr std::array<std::array<TileFn, kMaxNv>, kMaxRows> tile_table(std::integer_sequence<int, RB...>) {
  return {{tile_row<ACC, RB + 1>(std::make_integer_sequence<int, kMaxNv>())...}};
}

// Bytes to request into L2 while a product runs.
struct Prefetch {
  const float* base = nullptr;
  size_t bytes = 0;
};

// C[R, N] (+)= A[R, K] · B[K, N] with A[r, k] = A[r·ars + k·aks]; N is a multiple of W; ldc, ldb in floats.
// Meanwhile prefetches `pf` into L2, a few lines between microkernel calls: data the next tile needs, requested
// early without stalling on a burst of misses.
template <bool ACC>
static void tile_gemm(float* C, int ldc, const float* A, int ars, int aks, const float* B, int ldb, int R, int N,
                      int K, const Prefetch& pf = Prefetch()) {
  static constexpr auto table = tile_table<ACC>(std::make_integer_sequence<int, kMaxRows>());
  const int calls = (N + kMaxNv * W - 1) / (kMaxNv * W) * ((R + rows_for(kMaxNv) - 1) / rows_for(kMaxNv));
  const char* pfc = reinterpret_cast<const char*>(pf.base);
  const size_t step = ((pf.bytes + 63) / 64 + calls - 1) / std::max(1, calls) * 64;
  size_t done = 0;
  for (int n0 = 0; n0 < N; n0 += kMaxNv * W) {
    const int nv = std::min(kMaxNv, (N - n0) / W);
    const int rb = rows_for(nv);
    for (int r0 = 0; r0 < R; r0 += rb) {
      for (const size_t end = std::min(pf.bytes, done + step); done < end; done += 64)
        _mm_prefetch(pfc + done, _MM_HINT_T1);
      const int rows = std::min(rb, R - r0);
      table[rows - 1][nv - 1](C + size_t(r0) * ldc + n0, ldc, A + size_t(r0) * ars, ars, aks, B + n0, ldb, K);
    }
  }
}

static inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

// Per-thread scratch, grown on demand and reused across calls (no allocation in the steady state).
static float* scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// dst[d·ld + i] = mul·src[i·stride + d] for i < n, d < Dh; columns n..cols-1 are zeroed.
// Blocks of 32 rows, so the rows' cache lines stay in L1 while all Dh columns are read from them.
static void transpose_in(float* dst, int ld, const float* src, size_t stride, int n, int cols, int Dh, float mul) {
  for (int i0 = 0; i0 < n; i0 += 32) {
    const int i1 = std::min(n, i0 + 32);
    for (int d = 0; d < Dh; d++) {
      float* o = dst + size_t(d) * ld;
      for (int i = i0; i < i1; i++) o[i] = mul * src[i * stride + d];
    }
  }
  for (int d = 0; d < Dh; d++) std::fill(dst + size_t(d) * ld + n, dst + size_t(d) * ld + cols, 0.f);
}

constexpr float kLog2e = 1.44269504088896341f, kLn2 = 0.69314718055994531f;

// dst[i·Dp + d] = src[i·stride + d] for i < n, d < Dh, zero for Dh <= d < Dp: rows of one head gathered into a
// contiguous, W-padded block. Rows of qkv sit 3·H·Dh floats apart, a stride that maps them onto a few L1 sets and
// defeats the prefetcher; packed once, the tiles stream them and every vector load is in bounds.
static void pack_rows(float* dst, const float* src, size_t stride, int n, int Dh, int Dp) {
  for (int i = 0; i < n; i++) {
    const float* r = src + i * stride;
    float* o = dst + size_t(i) * Dp;
    for (int d = 0; d < Dp; d += W) store(o + d, d + W <= Dh ? load(r + d) : loadn(r + d, std::max(0, Dh - d)));
  }
}

// In St[nk][ld] (key kb+j, query q0+i), every score outside the window |query − key| ≤ window becomes -inf.
// Only queries i < nq are meaningful; the padding columns are left alone.
static void mask_window(float* St, int ld, int kb, int nk, int q0, int nq, int window) {
  if (window < 0) return;
  // The whole tile lies inside the band: nothing to do.
  if (kb + nk - 1 - q0 <= window && q0 + nq - 1 - kb <= window) return;
  const float ninf = -INFINITY;
  for (int j = 0; j < nk; j++) {
    const int key = kb + j;
    const int lo = key - window - q0, hi = key + window + 1 - q0;  // valid i in [lo, hi)
    if (lo <= 0 && hi >= nq) continue;
    float* row = St + size_t(j) * ld;
    for (int i = 0; i < nq; i += W) store(row + i, keep_range(load(row + i), i, lo, hi, ninf));
  }
}

// Tile sizes (Bq a multiple of 32, at most 128; measured at 8192 tokens, Dh 64). Local layers use small blocks so
// the band |i−j| ≤ window wastes less of each tile; global layers take 128 queries per block so every K/V tile
// streamed from memory serves more queries.
static void block_sizes(int window, int* Bq, int* Bk) {
  if (window >= 0 && window <= 96) {
    *Bq = 32;
    *Bk = 32;
  } else {
    *Bq = 128;
    *Bk = 64;
  }
}

struct QueryBlock { int seq, q0, q1; };

// One tile of the online softmax, lane-parallel over NV·W queries: St[nk][NV·W] holds base-2 scores and
// becomes P; the running max m, sum l and this tile's rescale factor corr (all [NV·W]) are updated. Rows of St
// are visited in order with one accumulator per query vector, so the chains of different vectors overlap and
// (NV being a constant) stay in registers.
template <int NV>
static void online_softmax(float* St, int nk, float* m, float* l, float* corr) {
  constexpr int ld = NV * W;
  Vf acc[NV], msafe[NV];
  for (int v = 0; v < NV; v++) acc[v] = load(St + v * W);
  for (int j = 1; j < nk; j++)
    for (int v = 0; v < NV; v++) acc[v] = vmax(acc[v], load(St + size_t(j) * ld + v * W));
  for (int v = 0; v < NV; v++) {
    const Vf mold = load(m + v * W);
    const Vf mnew = vmax(mold, acc[v]);
    // A query with no visible key yet keeps m = -inf; subtract 0 then so exp2(-inf) gives 0, not NaN.
    msafe[v] = select_eq(mnew, set1(-INFINITY), zero(), mnew);
    store(corr + v * W, vexp2(mold - msafe[v]));
    store(m + v * W, mnew);
    acc[v] = zero();
  }
  for (int j = 0; j < nk; j++)
    for (int v = 0; v < NV; v++) {
      float* p = St + size_t(j) * ld + v * W;
      const Vf e = vexp2(load(p) - msafe[v]);
      store(p, e);
      acc[v] = acc[v] + e;
    }
  for (int v = 0; v < NV; v++) store(l + v * W, fma(load(l + v * W), load(corr + v * W), acc[v]));
}

static void attention_forward(float* out, float* lse, const float* qkv, const int32_t* cu, int numSeqs, int H,
                              int Dh, int window, float scale) {
  const int hidden = H * Dh;
  const size_t stride = size_t(3) * hidden;
  const int T = cu[numSeqs];
  const int Dp = round_up(Dh, W);
  int Bq, Bk;
  block_sizes(window, &Bq, &Bk);
  // Tasks: (query block, head); blocks never cross a sequence boundary, so one long sequence still gives
  // many tasks and keeps every core busy.
  static thread_local std::vector<QueryBlock> blocks;
  blocks.clear();
  for (int s = 0; s < numSeqs; s++)
    for (int q = cu[s]; q < cu[s + 1]; q += Bq) blocks.push_back({s, q, std::min(cu[s + 1], q + Bq)});
  const int nb = int(blocks.size());
  const QueryBlock* blk = blocks.data();
  // K and V of every head, packed once: [H][T][Dp] each. Shared by all tasks; kernels are called from one
  // thread at a time (the pool is not re-entrant), so one buffer per process suffices.
  static std::vector<float> kvbuf;
  float* Kall = scratch(kvbuf, 2 * size_t(H) * T * Dp);
  float* Vall = Kall + size_t(H) * T * Dp;
  const int packGrain = 256;
  parallel_for((T + packGrain - 1) / packGrain, [&](int c) {
    const int t0 = c * packGrain, n = std::min(T, t0 + packGrain) - t0;
    for (int h = 0; h < H; h++) {
      pack_rows(Kall + (size_t(h) * T + t0) * Dp, qkv + t0 * stride + hidden + h * Dh, stride, n, Dh, Dp);
      pack_rows(Vall + (size_t(h) * T + t0) * Dp, qkv + t0 * stride + 2 * hidden + h * Dh, stride, n, Dh, Dp);
    }
  });
  parallel_for(nb * H, [&](int task) {
    const FlushDenormals ftz;
    const QueryBlock b = blk[task / H];
    const int h = task % H;
    const int start = cu[b.seq], end = cu[b.seq + 1];
    const int q0 = b.q0, nq = b.q1 - b.q0;
    static thread_local std::vector<float> buf;
    float* Qt = scratch(buf, size_t(Dh) * Bq + size_t(Bk) * Bq + size_t(Bq) * Dp + 3 * size_t(Bq));
    float* St = Qt + size_t(Dh) * Bq;
    float* O = St + size_t(Bk) * Bq;
    float* m = O + size_t(Bq) * Dp;
    float* l = m + Bq;
    float* corr = l + Bq;

    // Scores come out in base-2 units, s·log2 e, so the softmax can use exp2.
    transpose_in(Qt, Bq, qkv + q0 * stride + h * Dh, stride, nq, Bq, Dh, scale * kLog2e);
    std::fill(O, O + size_t(Bq) * Dp, 0.f);
    std::fill(m, m + Bq, -INFINITY);
    std::fill(l, l + Bq, 0.f);

    int kLo = start, kHi = end;
    if (window >= 0) {
      kLo = std::max(start, q0 - window);
      kHi = std::min(end, q0 + nq + window);
    }
    const int nv = Bq / W;  // query vectors per key row
    for (int kb = kLo; kb < kHi; kb += Bk) {
      const int nk = std::min(Bk, kHi - kb);
      const float* Kp = Kall + (size_t(h) * T + kb) * Dp;
      const float* Vp = Vall + (size_t(h) * T + kb) * Dp;
      // St[j][i] = log2 e · scale · k_j · q_i. K and V stream from memory once per query block, and the hardware
      // prefetcher alone leaves the microkernels waiting on them: each product prefetches the next tile's rows.
      const size_t nextBytes = size_t(std::max(0, std::min(Bk, kHi - kb - Bk))) * Dp * sizeof(float);
      tile_gemm<false>(St, Bq, Kp, Dp, 1, Qt, Bq, nk, Bq, Dh, {Kp + size_t(Bk) * Dp, nextBytes});
      mask_window(St, Bq, kb, nk, q0, nq, window);
      if (nv == 128 / W) online_softmax<128 / W>(St, nk, m, l, corr);
      else if (nv == 64 / W) online_softmax<64 / W>(St, nk, m, l, corr);
      else online_softmax<32 / W>(St, nk, m, l, corr);
      for (int i = 0; i < nq; i++) {
        if (corr[i] == 1.f) continue;
        const Vf c = set1(corr[i]);
        for (int d = 0; d < Dp; d += W) store(O + size_t(i) * Dp + d, load(O + size_t(i) * Dp + d) * c);
      }
      // O[i] += Σ_j P[j][i] v_j
      tile_gemm<true>(O, Dp, St, 1, Bq, Vp, Dp, nq, Dp, nk, {Vp + size_t(Bk) * Dp, nextBytes});
    }
    for (int i = 0; i < nq; i++) {
      float* o = out + size_t(q0 + i) * hidden + h * Dh;
      const float inv = 1.f / l[i];
      for (int d = 0; d < Dh; d++) o[d] = O[size_t(i) * Dp + d] * inv;
      if (lse) lse[size_t(h) * T + q0 + i] = m[i] * kLn2 + std::log(l[i]);
    }
  });
}

#if MB_VEC_ISA == 2
// ---- bf16 forward (inference with dtype 'bf16' on CPUs with AMX or AVX512-BF16) ----
// The same query blocks, key blocks and online softmax (with a lazy max: online_softmax_lazy) as
// attention_forward, but both products take bf16 operands with float32 accumulation: Q (already scaled by
// scale·log2 e), K, V and P are rounded to bf16 (nearest even); scores, the softmax statistics, the rescale and O
// stay float32. The products run on AMX tiles (amx_gemm) or VDPBF16PS (tile_gemm_bf16), the bf16 path the Linears
// use. Both instructions multiply PAIRS along the reduction dimension, so the operands are laid out with pairs in 32-bit lanes
// (low half first), in the shapes AMX tiles load:
//   St[key][query]  = K·Qᵀ reduces over Dh: K2 = bf16 rows [key][Dhp], Qt2 = [Dh pair][query] pairs;
//   Ot[d][query]   += Vᵀ·P reduces over keys: Vt = bf16 rows [d][key] (keys in pair order), P2 = [key pair][query].
// O is kept transposed so the per-query rescale is a row-wise vector product. Key pairs start at even offsets from
// their sequence's start, so a pair never spans two sequences; a key block starts at an even offset too (the extra
// key is outside the window and masked), and the odd last key of a block is paired with P = 0.
// Dh is padded to Dhp (a multiple of 32) with zeros; keys past a block (to a multiple of 32, read by whole AMX
// tiles) meet P = 0, and the buffers have 32 zero keys of slack at their ends.
#define MB_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,avx512bf16")))
#define MB_AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,avx512bf16,amx-tile,amx-bf16")))

// C[RB, NV·16] (+)= Σ_k A[r·ars + k·aks] · B[k·ldb + 0:NV·16] where each term is a pair product
// a.lo·b.lo + a.hi·b.hi (K pairs in all): tile_kernel for VDPBF16PS.
template <int RB, int NV, bool ACC>
static MB_BF16_TARGET void tile_kernel_bf16(float* C, int ldc, const uint32_t* A, int ars, int aks, const uint32_t* B,
                                            int ldb, int K) {
  __m512 acc[RB][NV];
#pragma GCC unroll 8
  for (int r = 0; r < RB; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[r][v] = ACC ? _mm512_loadu_ps(C + r * ldc + v * W) : _mm512_setzero_ps();
  for (int k = 0; k < K; k++) {
    __m512bh b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) b[v] = (__m512bh)_mm512_loadu_si512(B + size_t(k) * ldb + v * W);
    const uint32_t* a = A + size_t(k) * aks;
#pragma GCC unroll 8
    for (int r = 0; r < RB; r++) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(int(a[size_t(r) * ars]));
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], ar, b[v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < RB; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) _mm512_storeu_ps(C + r * ldc + v * W, acc[r][v]);
}

using TileFnBf16 = void (*)(float*, int, const uint32_t*, int, int, const uint32_t*, int, int);

template <bool ACC, int RB, int... NV>
constexpr std::array<TileFnBf16, kMaxNv> tile_row_bf16(std::integer_sequence<int, NV...>) {
  return {{&tile_kernel_bf16<RB, NV + 1, ACC>...}};
}
template <bool ACC, int... RB>
constexpr std::array<std::array<TileFnBf16, kMaxNv>, kMaxRows> tile_table_bf16(std::integer_sequence<int, RB...>) {
  return {{tile_row_bf16<ACC, RB + 1>(std::make_integer_sequence<int, kMaxNv>())...}};
}

// tile_gemm with pair operands: C[R, N] (+)= A[R, K pairs] · B[K pairs, N], N a multiple of 16.
template <bool ACC>
static void tile_gemm_bf16(float* C, int ldc, const uint32_t* A, int ars, int aks, const uint32_t* B, int ldb, int R,
                           int N, int K) {
  static constexpr auto table = tile_table_bf16<ACC>(std::make_integer_sequence<int, kMaxRows>());
  for (int n0 = 0; n0 < N; n0 += kMaxNv * W) {
    const int nv = std::min(kMaxNv, (N - n0) / W);
    const int rb = rows_for(nv);
    for (int r0 = 0; r0 < R; r0 += rb)
      table[std::min(rb, R - r0) - 1][nv - 1](C + size_t(r0) * ldc + n0, ldc, A + size_t(r0) * ars, ars, aks, B + n0, ldb, K);
  }
}

// AMX: every tile is 16 rows × 64 bytes (16 floats, or 32 bf16 = 16 pairs); 0-3 accumulate a 32×32 block of C,
// 4-5 hold A (32 rows × 32 k), 6-7 hold B (16 k pairs × 32 columns). The config lives in a global because
// _tile_loadconfig's asm declares a read of one byte only (see gemm_bf16.cc).
struct alignas(64) AmxConfig {
  uint8_t palette = 1, startRow = 0, reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
static const AmxConfig amxConfig;

// C[R, N] (+)= A[R, K] · B[K/2 pairs, N] for R, N, K multiples of 32: A bf16 rows (lda elements apart), B pair
// rows (ldb pairs apart), C float rows (ldc apart). ACC loads C first.
template <bool ACC>
static MB_AMX_TARGET void amx_gemm(float* C, int ldc, const uint16_t* A, int lda, const uint32_t* B, int ldb, int R,
                                   int N, int K) {
  const size_t cs = size_t(ldc) * 4, as = size_t(lda) * 2, bs = size_t(ldb) * 4;
  for (int r0 = 0; r0 < R; r0 += 32)
    for (int n0 = 0; n0 < N; n0 += 32) {
      float* c = C + size_t(r0) * ldc + n0;
      if (ACC) {
        _tile_loadd(0, c, cs);
        _tile_loadd(1, c + 16, cs);
        _tile_loadd(2, c + size_t(16) * ldc, cs);
        _tile_loadd(3, c + size_t(16) * ldc + 16, cs);
      } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
      }
      for (int k = 0; k < K; k += 32) {
        _tile_loadd(4, A + size_t(r0) * lda + k, as);
        _tile_loadd(5, A + size_t(r0 + 16) * lda + k, as);
        _tile_loadd(6, B + size_t(k / 2) * ldb + n0, bs);
        _tile_loadd(7, B + size_t(k / 2) * ldb + n0 + 16, bs);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      _tile_stored(0, c, cs);
      _tile_stored(1, c + 16, cs);
      _tile_stored(2, c + size_t(16) * ldc, cs);
      _tile_stored(3, c + size_t(16) * ldc + 16, cs);
    }
}
static MB_AMX_TARGET void amx_begin() { _tile_loadconfig(&amxConfig); }
static MB_AMX_TARGET void amx_end() { _tile_release(); }

// 16 pairs (lo[i], hi[i]) rounded to bf16 (nearest even), lo in the low half of each 32-bit lane.
static MB_BF16_TARGET __m512i pair_bf16(__m512 lo, __m512 hi) {
  // cvtne2ps gives lo0..lo15 then hi0..hi15 as 16-bit elements; interleave them.
  alignas(64) static const uint16_t interleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                      8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
  return _mm512_permutexvar_epi16(_mm512_load_si512(interleave), both);
}

// dst[d] = bf16(mul·src[d]) for d < Dh, 0 for Dh <= d < n (n a multiple of 16).
static MB_BF16_TARGET void bf16_row(uint16_t* dst, const float* src, int Dh, int n, float mul) {
  const __m512 vm = _mm512_set1_ps(mul);
  for (int d = 0; d < n; d += W) {
    const __m512 x = _mm512_maskz_loadu_ps(first_n(std::max(0, std::min(W, Dh - d))), src + d);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + d), (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(vm, x)));
  }
}

// Transposes the 16×16 matrix of 32-bit lanes whose rows are r[0..15], in place.
static MB_BF16_TARGET void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++) {
      t[8 * i + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + 4 + j], 0xdd);
    }
  for (int j = 0; j < 8; j++) {
    r[j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0xdd);
  }
}

// online_softmax with a lazy max: a query's reference m only moves when the tile's max exceeds it by more than
// 2^8 (in base-2 units: P ≤ 256, far from float32's range), so most tiles after the first few leave every corr
// at 1 and the rescale of O is skipped. l and O stay relative to the same m, so O / l and m·ln 2 + log l are
// unchanged; bf16 rounding of P is relative, so its error does not depend on the scale.
template <int NV>
static void online_softmax_lazy(float* St, int nk, float* m, float* l, float* corr) {
  constexpr int ld = NV * W;
  Vf acc[NV], msafe[NV];
  for (int v = 0; v < NV; v++) acc[v] = load(St + v * W);
  for (int j = 1; j < nk; j++)
    for (int v = 0; v < NV; v++) acc[v] = vmax(acc[v], load(St + size_t(j) * ld + v * W));
  for (int v = 0; v < NV; v++) {
    const Vf mold = load(m + v * W);
    // A query whose tile max is within 2^8 of m keeps m (also when both are -inf); otherwise m = the tile's max.
    const Vf mnew = select_gt(acc[v], mold + set1(8.f), acc[v], mold);
    msafe[v] = select_eq(mnew, set1(-INFINITY), zero(), mnew);
    store(corr + v * W, select_eq(mnew, mold, set1(1.f), vexp2(mold - msafe[v])));
    store(m + v * W, mnew);
    acc[v] = zero();
  }
  for (int j = 0; j < nk; j++)
    for (int v = 0; v < NV; v++) {
      float* p = St + size_t(j) * ld + v * W;
      const Vf e = vexp2(load(p) - msafe[v]);
      store(p, e);
      acc[v] = acc[v] + e;
    }
  for (int v = 0; v < NV; v++) store(l + v * W, fma(load(l + v * W), load(corr + v * W), acc[v]));
}

// One pair of keys (tok, tok + 1) of a sequence, or (tok, none) for an odd last key.
struct KeyPair { int tok, n; };

template <bool AMX>
static MB_BF16_TARGET void attention_forward_bf16(float* out, float* lse, const float* qkv, const int32_t* cu,
                                                  int numSeqs, int H, int Dh, int window, float scale) {
  const int hidden = H * Dh;
  const size_t stride = size_t(3) * hidden;
  const int T = cu[numSeqs];
  const int Dhp = round_up(Dh, 32);
  int Bq, Bk;
  block_sizes(window, &Bq, &Bk);  // multiples of 32: key blocks keep the pairing and fill whole AMX tiles
  static thread_local std::vector<QueryBlock> blocks;
  blocks.clear();
  for (int s = 0; s < numSeqs; s++)
    for (int q = cu[s]; q < cu[s + 1]; q += Bq) blocks.push_back({s, q, std::min(cu[s + 1], q + Bq)});
  const int nb = int(blocks.size());
  const QueryBlock* blk = blocks.data();
  static std::vector<KeyPair> pairs;
  static std::vector<int> pairBase;
  pairs.clear();
  pairBase.assign(numSeqs, 0);
  for (int s = 0; s < numSeqs; s++) {
    pairBase[s] = int(pairs.size());
    for (int t = cu[s]; t < cu[s + 1]; t += 2) pairs.push_back({t, std::min(2, cu[s + 1] - t)});
  }
  const int NP = int(pairs.size());
  // Per head: K2 [T + 32][Dhp] and Vt [Dhp][ldv] in bf16, ldv ≥ 2·NP + 32 keys; packed once per call. Rows of
  // Vt are an odd number of cache lines apart: at a multiple of 4 KB, the 16 rows one AMX tile load reads would all
  // map to the same L1 set.
  const int ldv = (round_up(2 * NP + 32, 32) / 32 | 1) * 32;
  const size_t kSize = (size_t(T) + 32) * Dhp, vSize = size_t(Dhp) * ldv;
  static std::vector<uint16_t> kvbuf;
  if (kvbuf.size() < size_t(H) * (kSize + vSize)) kvbuf.resize(size_t(H) * (kSize + vSize));
  uint16_t* K2 = kvbuf.data();
  uint16_t* Vt = K2 + size_t(H) * kSize;
  const int packGrain = 256;
  parallel_for((T + packGrain - 1) / packGrain, [&](int c) {
    const int t0 = c * packGrain, t1 = std::min(T, t0 + packGrain);
    for (int h = 0; h < H; h++) {
      uint16_t* Kh = K2 + h * kSize;
      for (int t = t0; t < t1; t++) bf16_row(Kh + size_t(t) * Dhp, qkv + t * stride + hidden + h * Dh, Dh, Dhp, 1.f);
      if (t1 == T) std::fill(Kh + size_t(T) * Dhp, Kh + kSize, uint16_t(0));
    }
  });
  // Vt: for each block of 16 key pairs and 16 dimensions, the 16×16 pair matrix is transposed in registers into
  // 16 rows of Vt, one cache line each. Pairs past NP (in the last block) are zero, and so is the rest of each row.
  parallel_for((NP + 15) / 16, [&](int c) {
    const int p0 = c * 16, np = std::min(16, NP - p0);
    for (int h = 0; h < H; h++) {
      uint32_t* Vh = reinterpret_cast<uint32_t*>(Vt + h * vSize);
      for (int d = 0; d < Dhp; d += W) {
        const __mmask16 k = first_n(std::max(0, std::min(W, Dh - d)));
        __m512i r[16];
        for (int q = 0; q < 16; q++) {
          r[q] = _mm512_setzero_si512();
          if (q >= np) continue;
          const float* v0 = qkv + pairs[p0 + q].tok * stride + 2 * hidden + h * Dh + d;
          r[q] = pair_bf16(_mm512_maskz_loadu_ps(k, v0),
                           pairs[p0 + q].n == 2 ? _mm512_maskz_loadu_ps(k, v0 + stride) : _mm512_setzero_ps());
        }
        transpose16(r);
        for (int e = 0; e < 16; e++) {
          uint32_t* row = Vh + size_t(d + e) * (ldv / 2);
          _mm512_storeu_si512(row + p0, r[e]);
          if (p0 + 16 >= NP) std::fill(row + p0 + 16, row + ldv / 2, 0u);
        }
      }
    }
  });
  const int* base = pairBase.data();
  // Tasks run in chunks, so each thread loads the AMX tile configuration once per chunk, not once per task.
  const int tasks = nb * H;
  const int chunk = std::max(1, tasks / (8 * num_threads()));
  // Everything by value: with the build's -fno-strict-aliasing, captured references are reloaded after every
  // store.
  parallel_for((tasks + chunk - 1) / chunk, [=](int c) {
    const FlushDenormals ftz;
    if (AMX) amx_begin();
    for (int task = c * chunk; task < std::min(tasks, (c + 1) * chunk); task++) {
      const QueryBlock b = blk[task / H];
      const int h = task % H;
      const int start = cu[b.seq], end = cu[b.seq + 1];
      const int q0 = b.q0, nq = b.q1 - b.q0;
      static thread_local std::vector<float> buf;
      static thread_local std::vector<uint32_t> buf2;
      float* St = scratch(buf, size_t(Bk) * Bq + size_t(Dhp) * Bq + 4 * size_t(Bq));
      float* Ot = St + size_t(Bk) * Bq;
      float* m = Ot + size_t(Dhp) * Bq;
      float* l = m + Bq;
      float* corr = l + Bq;
      float* inv = corr + Bq;
      const size_t need2 = 2 * size_t(Dhp / 2) * Bq + size_t(Bk / 2) * Bq;
      if (buf2.size() < need2) buf2.resize(need2);
      uint32_t* Qt2 = buf2.data();
      uint32_t* P2 = Qt2 + size_t(Dhp / 2) * Bq;
      uint32_t* Qrows = P2 + size_t(Bk / 2) * Bq;
      const uint16_t* Kh = K2 + h * kSize;
      const uint16_t* Vh = Vt + h * vSize;

      // Qᵀ in pairs, scores in base-2 units as in the float32 path; query columns past nq are zero. The rows are
      // rounded first, all of them, so their cache misses overlap, then transposed.
      const float mul = scale * kLog2e;
      for (int i = 0; i < nq; i++)
        bf16_row(reinterpret_cast<uint16_t*>(Qrows + size_t(i) * (Dhp / 2)), qkv + (q0 + i) * stride + h * Dh, Dh, Dhp, mul);
      std::fill(Qrows + size_t(nq) * (Dhp / 2), Qrows + size_t(Bq) * (Dhp / 2), 0u);
      for (int i = 0; i < Bq; i += W)
        for (int p = 0; p < Dhp / 2; p += W) {
          __m512i r[16];
          for (int e = 0; e < 16; e++) r[e] = _mm512_loadu_si512(Qrows + size_t(i + e) * (Dhp / 2) + p);
          transpose16(r);
          for (int e = 0; e < 16; e++) _mm512_storeu_si512(Qt2 + size_t(p + e) * Bq + i, r[e]);
        }
      std::fill(Ot, Ot + size_t(Dhp) * Bq, 0.f);
      std::fill(m, m + Bq, -INFINITY);
      std::fill(l, l + Bq, 0.f);

      int kLo = start, kHi = end;
      if (window >= 0) {
        kLo = std::max(start, q0 - window);
        kHi = std::min(end, q0 + nq + window);
      }
      kLo = start + ((kLo - start) & ~1);
      const int nv = Bq / W;
      for (int kb = kLo; kb < kHi; kb += Bk) {
        const int nk = std::min(Bk, kHi - kb), nk2 = (nk + 1) / 2, nkt = round_up(nk, 32);
        const uint16_t* Kp = Kh + size_t(kb) * Dhp;
        const uint16_t* Vp = Vh + 2 * size_t(base[b.seq] + (kb - start) / 2);
        // St[j][i] = log2 e · scale · k_j · q_i (rows past nk hold other keys' scores and are not read).
        if (AMX) amx_gemm<false>(St, Bq, Kp, Dhp, Qt2, Bq, nkt, Bq, Dhp);
        else tile_gemm_bf16<false>(St, Bq, reinterpret_cast<const uint32_t*>(Kp), Dhp / 2, 1, Qt2, Bq, nk, Bq, Dhp / 2);
        mask_window(St, Bq, kb, nk, q0, nq, window);
        if (nv == 128 / W) online_softmax_lazy<128 / W>(St, nk, m, l, corr);
        else if (nv == 64 / W) online_softmax_lazy<64 / W>(St, nk, m, l, corr);
        else online_softmax_lazy<32 / W>(St, nk, m, l, corr);
        // Rescale Ot's columns by corr, skipping groups of W queries whose max did not move.
        for (int i = 0; i < Bq; i += W) {
          const Vf c = load(corr + i);
          if (_mm512_cmpneq_ps_mask(c.v, _mm512_set1_ps(1.f)) == 0) continue;
          for (int d = 0; d < Dh; d++) store(Ot + size_t(d) * Bq + i, load(Ot + size_t(d) * Bq + i) * c);
        }
        // P2[j2][i] = (P[2·j2][i], P[2·j2 + 1][i]) in bf16; the odd last key's partner and the pairs past the block
        // up to a whole tile get P = 0.
        for (int j2 = 0; j2 < nkt / 2; j2++) {
          const float* lo = St + size_t(2 * j2) * Bq;
          const bool first = 2 * j2 < nk, second = 2 * j2 + 1 < nk;
          for (int i = 0; i < Bq; i += W)
            _mm512_storeu_si512(P2 + size_t(j2) * Bq + i,
                                pair_bf16(first ? _mm512_loadu_ps(lo + i) : _mm512_setzero_ps(),
                                          second ? _mm512_loadu_ps(lo + Bq + i) : _mm512_setzero_ps()));
        }
        // Ot[d][i] += Σ_j v_j[d] P[j][i]
        if (AMX) amx_gemm<true>(Ot, Bq, Vp, ldv, P2, Bq, Dhp, Bq, nkt);
        else tile_gemm_bf16<true>(Ot, Bq, reinterpret_cast<const uint32_t*>(Vp), ldv / 2, 1, P2, Bq, Dh, Bq, nk2);
      }
      for (int i = 0; i < nq; i++) {
        inv[i] = 1.f / l[i];
        if (lse) lse[size_t(h) * T + q0 + i] = m[i] * kLn2 + std::log(l[i]);
      }
      // out[q0 + i][h·Dh + d] = Ot[d][i] / l[i], 16×16 blocks of Ot transposed.
      for (int i = 0; i < nq; i += W)
        for (int d = 0; d < Dh; d += W) {
          __m512i r[16];
          for (int e = 0; e < 16; e++) r[e] = _mm512_loadu_si512(Ot + size_t(d + e) * Bq + i);
          transpose16(r);
          const __mmask16 k = first_n(std::min(W, Dh - d));
          for (int e = 0; e < std::min(W, nq - i); e++)
            _mm512_mask_storeu_ps(out + size_t(q0 + i + e) * hidden + h * Dh + d, k,
                                  _mm512_mul_ps(_mm512_castsi512_ps(r[e]), _mm512_set1_ps(inv[i + e])));
        }
    }
    if (AMX) amx_end();
  });
}
#undef MB_BF16_TARGET
#undef MB_AMX_TARGET
#endif  // MB_VEC_ISA == 2

// FlashAttention-2 backward. One task per (sequence, head) owns every write to that head's rows of dqkv, so the
// tasks never race: for each key block it accumulates dK and dV over the query blocks that see it, and adds
// that tile's share into a per-task dQ accumulator. P is recomputed from the saved lse.
static void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out, const float* lse,
                               const int32_t* cu, int numSeqs, int H, int Dh, int window, float scale) {
  const int hidden = H * Dh;
  const size_t stride = size_t(3) * hidden;
  const int T = cu[numSeqs];
  const int Dp = round_up(Dh, W);
  int Bq, Bk;
  block_sizes(window, &Bq, &Bk);
  parallel_for(numSeqs * H, [&](int task) {
    const FlushDenormals ftz;
    const int s = task / H, h = task % H;
    const int start = cu[s], end = cu[s + 1], n = end - start;
    if (n == 0) return;
    // Everything this (sequence, head) reads, packed once: Qᵀ and dOᵀ as [Dh][n + Bq] (zero columns past n, so
    // a block starting anywhere reads Bq valid-or-zero columns), Q, dO, K, V as [n][Dp] rows; then the
    // accumulators and one tile of P and dS.
    const int ldt = n + Bq;
    static thread_local std::vector<float> buf;
    const size_t need = 2 * size_t(Dh) * ldt + 5 * size_t(n) * Dp + size_t(n) + 2 * size_t(Bk) * Bq + 2 * size_t(Bk) * Dp;
    float* Qt = scratch(buf, need);
    float* dOt = Qt + size_t(Dh) * ldt;
    float* Qp = dOt + size_t(Dh) * ldt;
    float* dOp = Qp + size_t(n) * Dp;
    float* Kp = dOp + size_t(n) * Dp;
    float* Vp = Kp + size_t(n) * Dp;
    float* dQ = Vp + size_t(n) * Dp;
    float* Dvec = dQ + size_t(n) * Dp;
    float* P = Dvec + n;
    float* dS = P + size_t(Bk) * Bq;
    float* dK = dS + size_t(Bk) * Bq;
    float* dV = dK + size_t(Bk) * Dp;
    const float* q = qkv + size_t(start) * stride + h * Dh;
    const float* dO = dout + size_t(start) * hidden + h * Dh;
    transpose_in(Qt, ldt, q, stride, n, ldt, Dh, scale * kLog2e);  // scores in base-2 units, as in the forward
    transpose_in(dOt, ldt, dO, hidden, n, ldt, Dh, 1.f);
    pack_rows(Qp, q, stride, n, Dh, Dp);
    pack_rows(dOp, dO, hidden, n, Dh, Dp);
    pack_rows(Kp, q + hidden, stride, n, Dh, Dp);
    pack_rows(Vp, q + 2 * hidden, stride, n, Dh, Dp);
    const float* lseh = lse + size_t(h) * T;

    std::fill(dQ, dQ + size_t(n) * Dp, 0.f);
    // D_i = dO_i · O_i
    for (int i = 0; i < n; i++) {
      const float* a = dout + size_t(start + i) * hidden + h * Dh;
      const float* o = out + size_t(start + i) * hidden + h * Dh;
      Vf acc = zero();
      int d = 0;
      for (; d + W <= Dh; d += W) acc = fma(load(a + d), load(o + d), acc);
      if (d < Dh) acc = fma(loadn(a + d, Dh - d), loadn(o + d, Dh - d), acc);
      Dvec[i] = hsum(acc);
    }
    const Vf vscale = set1(scale);
    for (int kb = start; kb < end; kb += Bk) {
      const int nk = std::min(Bk, end - kb);
      const float* Kb = Kp + size_t(kb - start) * Dp;
      const float* Vb = Vp + size_t(kb - start) * Dp;
      std::fill(dK, dK + size_t(Bk) * Dp, 0.f);
      std::fill(dV, dV + size_t(Bk) * Dp, 0.f);
      int qLo = start, qHi = end;
      if (window >= 0) {
        qLo = std::max(start, kb - window);
        qHi = std::min(end, kb + nk + window);
      }
      for (int q0 = qLo; q0 < qHi; q0 += Bq) {
        const int nq = std::min(Bq, qHi - q0), qi = q0 - start;
        // P[j][i] = exp(scale·k_j·q_i − lse_i) = 2^(log2 e·(scale·k_j·q_i − lse_i)); dP[j][i] = v_j · dO_i.
        // (Unlike the forward, software prefetching of the next query block measured slower here.)
        tile_gemm<false>(P, Bq, Kb, Dp, 1, Qt + qi, ldt, nk, Bq, Dh);
        mask_window(P, Bq, kb, nk, q0, nq, window);
        tile_gemm<false>(dS, Bq, Vb, Dp, 1, dOt + qi, ldt, nk, Bq, Dh);
        for (int i = 0; i < Bq; i += W) {
          const int valid = std::min(W, nq - i);
          if (valid <= 0) break;
          const Vf L = loadn(lseh + q0 + i, valid) * set1(kLog2e);
          const Vf D = loadn(Dvec + qi + i, valid);
          for (int j = 0; j < nk; j++) {
            float* p = P + size_t(j) * Bq + i;
            float* ds = dS + size_t(j) * Bq + i;
            const Vf e = vexp2(load(p) - L);
            store(p, e);
            // dS = P ⊙ (dP − D), with the softmax scale folded in for dQ and dK.
            store(ds, e * (load(ds) - D) * vscale);
          }
        }
        // dV_j += Σ_i P[j][i] dO_i;  dK_j += Σ_i dS[j][i] q_i;  dQ_i += Σ_j dS[j][i] k_j
        tile_gemm<true>(dV, Dp, P, Bq, 1, dOp + size_t(qi) * Dp, Dp, nk, Dp, nq);
        tile_gemm<true>(dK, Dp, dS, Bq, 1, Qp + size_t(qi) * Dp, Dp, nk, Dp, nq);
        tile_gemm<true>(dQ + size_t(qi) * Dp, Dp, dS, 1, Bq, Kb, Dp, nq, Dp, nk);
      }
      for (int j = 0; j < nk; j++) {
        float* row = dqkv + size_t(kb + j) * stride + h * Dh;
        std::memcpy(row + hidden, dK + size_t(j) * Dp, sizeof(float) * Dh);
        std::memcpy(row + 2 * hidden, dV + size_t(j) * Dp, sizeof(float) * Dh);
      }
    }
    for (int i = 0; i < n; i++)
      std::memcpy(dqkv + size_t(start + i) * stride + h * Dh, dQ + size_t(i) * Dp, sizeof(float) * Dh);
  });
}
