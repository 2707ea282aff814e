// Float vectors and their maths for ONE instruction set, chosen by MB_VEC_ISA (0 portable, 1 AVX2, 2 AVX-512).
// No include guard on purpose: a kernel file includes this once per ISA, each time inside its own namespace and
// inside a `#pragma GCC target` region that enables that ISA, so the addon still loads on CPUs without AVX-512
// (see attention.cc). <immintrin.h>, <cmath> and <cstring> must be included before, at file scope.
//
// Vf holds W floats. exp and the normal CDF are polynomial approximations accurate to ~1e-7 relative
// (checked against the TypeScript reference in test/kernels/elementwise.test.ts).

#define MB_INLINE static inline __attribute__((always_inline))

#if MB_VEC_ISA == 2
constexpr int W = 16;
struct Vf { __m512 v; };
MB_INLINE Vf load(const float* p) { return {_mm512_loadu_ps(p)}; }
MB_INLINE void store(float* p, Vf a) { _mm512_storeu_ps(p, a.v); }
MB_INLINE __mmask16 first_n(int n) { return __mmask16((1u << n) - 1u); }
// The first n lanes (0 <= n <= W) from p, zeros elsewhere; never reads past p[n-1].
MB_INLINE Vf loadn(const float* p, int n) { return {_mm512_maskz_loadu_ps(first_n(n), p)}; }
MB_INLINE void storen(float* p, Vf a, int n) { _mm512_mask_storeu_ps(p, first_n(n), a.v); }
MB_INLINE Vf set1(float x) { return {_mm512_set1_ps(x)}; }
MB_INLINE Vf zero() { return {_mm512_setzero_ps()}; }
MB_INLINE Vf fma(Vf a, Vf b, Vf c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
MB_INLINE Vf fnma(Vf a, Vf b, Vf c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; }  // c - a*b
MB_INLINE Vf operator+(Vf a, Vf b) { return {_mm512_add_ps(a.v, b.v)}; }
MB_INLINE Vf operator-(Vf a, Vf b) { return {_mm512_sub_ps(a.v, b.v)}; }
MB_INLINE Vf operator*(Vf a, Vf b) { return {_mm512_mul_ps(a.v, b.v)}; }
MB_INLINE Vf operator/(Vf a, Vf b) { return {_mm512_div_ps(a.v, b.v)}; }
MB_INLINE Vf vmax(Vf a, Vf b) { return {_mm512_max_ps(a.v, b.v)}; }
MB_INLINE Vf vmin(Vf a, Vf b) { return {_mm512_min_ps(a.v, b.v)}; }
MB_INLINE Vf vabs(Vf a) { return {_mm512_abs_ps(a.v)}; }
MB_INLINE float hsum(Vf a) { return _mm512_reduce_add_ps(a.v); }
MB_INLINE float hmax(Vf a) { return _mm512_reduce_max_ps(a.v); }
// a == b ? x : y, lane-wise.
MB_INLINE Vf select_eq(Vf a, Vf b, Vf x, Vf y) { return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ), y.v, x.v)}; }
// a > b ? x : y, lane-wise.
MB_INLINE Vf select_gt(Vf a, Vf b, Vf x, Vf y) { return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ), y.v, x.v)}; }
// Lanes whose index base+lane lies outside [lo, hi) become `fill`.
MB_INLINE Vf keep_range(Vf x, int base, int lo, int hi, float fill) {
  const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(base), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  const __mmask16 in = _mm512_cmpge_epi32_mask(idx, _mm512_set1_epi32(lo)) & _mm512_cmplt_epi32_mask(idx, _mm512_set1_epi32(hi));
  return {_mm512_mask_blend_ps(in, _mm512_set1_ps(fill), x.v)};
}
// round to nearest integer (as float) and 2^n scaling; scalef underflows to exactly 0 and overflows to inf.
MB_INLINE Vf vround(Vf a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
MB_INLINE Vf scale_pow2(Vf p, Vf n) { return {_mm512_scalef_ps(p.v, n.v)}; }
// 1/a for finite non-zero a: the 14-bit estimate refined by one Newton step (~1 ulp), far cheaper than vdivps.
MB_INLINE Vf vrecip(Vf a) {
  const __m512 r = _mm512_rcp14_ps(a.v);
  return {_mm512_fmadd_ps(_mm512_fnmadd_ps(a.v, r, _mm512_set1_ps(1.f)), r, r)};
}

#elif MB_VEC_ISA == 1
constexpr int W = 8;
struct Vf { __m256 v; };
MB_INLINE Vf load(const float* p) { return {_mm256_loadu_ps(p)}; }
MB_INLINE void store(float* p, Vf a) { _mm256_storeu_ps(p, a.v); }
MB_INLINE __m256i first_n(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
MB_INLINE Vf loadn(const float* p, int n) { return {_mm256_maskload_ps(p, first_n(n))}; }
MB_INLINE void storen(float* p, Vf a, int n) { _mm256_maskstore_ps(p, first_n(n), a.v); }
MB_INLINE Vf set1(float x) { return {_mm256_set1_ps(x)}; }
MB_INLINE Vf zero() { return {_mm256_setzero_ps()}; }
MB_INLINE Vf fma(Vf a, Vf b, Vf c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
MB_INLINE Vf fnma(Vf a, Vf b, Vf c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; }
MB_INLINE Vf operator+(Vf a, Vf b) { return {_mm256_add_ps(a.v, b.v)}; }
MB_INLINE Vf operator-(Vf a, Vf b) { return {_mm256_sub_ps(a.v, b.v)}; }
MB_INLINE Vf operator*(Vf a, Vf b) { return {_mm256_mul_ps(a.v, b.v)}; }
MB_INLINE Vf operator/(Vf a, Vf b) { return {_mm256_div_ps(a.v, b.v)}; }
MB_INLINE Vf vmax(Vf a, Vf b) { return {_mm256_max_ps(a.v, b.v)}; }
MB_INLINE Vf vmin(Vf a, Vf b) { return {_mm256_min_ps(a.v, b.v)}; }
MB_INLINE Vf vabs(Vf a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.f), a.v)}; }
MB_INLINE float hsum(Vf a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
MB_INLINE float hmax(Vf a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
MB_INLINE Vf select_eq(Vf a, Vf b, Vf x, Vf y) { return {_mm256_blendv_ps(y.v, x.v, _mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ))}; }
MB_INLINE Vf select_gt(Vf a, Vf b, Vf x, Vf y) { return {_mm256_blendv_ps(y.v, x.v, _mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ))}; }
MB_INLINE Vf keep_range(Vf x, int base, int lo, int hi, float fill) {
  const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i in = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), idx),
                                         _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), idx));
  return {_mm256_blendv_ps(_mm256_set1_ps(fill), x.v, _mm256_castsi256_ps(in))};
}
MB_INLINE Vf vround(Vf a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
// 1/a for finite non-zero a: the 12-bit estimate refined by one Newton step (~1e-7 relative).
MB_INLINE Vf vrecip(Vf a) {
  const __m256 r = _mm256_rcp_ps(a.v);
  return {_mm256_fmadd_ps(_mm256_fnmadd_ps(a.v, r, _mm256_set1_ps(1.f)), r, r)};
}
// p·2^n for integral n; results below 2^-126 flush to 0 and n > 127 gives inf, like the AVX-512 scalef path
// up to denormals (which no kernel here depends on).
MB_INLINE Vf scale_pow2(Vf p, Vf n) {
  const __m256 nc = _mm256_min_ps(_mm256_max_ps(n.v, _mm256_set1_ps(-127.f)), _mm256_set1_ps(128.f));
  // Split 2^n into two factors so n = 128 and n = -127 stay representable.
  const __m256i half = _mm256_cvtps_epi32(_mm256_mul_ps(nc, _mm256_set1_ps(0.5f)));
  const __m256i rest = _mm256_sub_epi32(_mm256_cvtps_epi32(nc), half);
  const __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
  const __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest, _mm256_set1_epi32(127)), 23));
  const __m256 r = _mm256_mul_ps(_mm256_mul_ps(p.v, f1), f2);
  return {_mm256_blendv_ps(r, _mm256_setzero_ps(), _mm256_cmp_ps(n.v, _mm256_set1_ps(-126.f), _CMP_LT_OQ))};
}

#else
// Portable: plain loops over 8 lanes (the compiler vectorises them with whatever the baseline target has).
constexpr int W = 8;
struct Vf { float v[W]; };
#define MB_LANES(expr)            \
  Vf r;                           \
  for (int i = 0; i < W; i++) r.v[i] = (expr); \
  return r
MB_INLINE Vf load(const float* p) { Vf r; std::memcpy(r.v, p, sizeof r.v); return r; }
MB_INLINE void store(float* p, Vf a) { std::memcpy(p, a.v, sizeof a.v); }
MB_INLINE Vf loadn(const float* p, int n) { MB_LANES(i < n ? p[i] : 0.f); }
MB_INLINE void storen(float* p, Vf a, int n) { for (int i = 0; i < n; i++) p[i] = a.v[i]; }
MB_INLINE Vf set1(float x) { MB_LANES(x); }
MB_INLINE Vf zero() { MB_LANES(0.f); }
MB_INLINE Vf fma(Vf a, Vf b, Vf c) { MB_LANES(std::fma(a.v[i], b.v[i], c.v[i])); }
MB_INLINE Vf fnma(Vf a, Vf b, Vf c) { MB_LANES(std::fma(-a.v[i], b.v[i], c.v[i])); }
MB_INLINE Vf operator+(Vf a, Vf b) { MB_LANES(a.v[i] + b.v[i]); }
MB_INLINE Vf operator-(Vf a, Vf b) { MB_LANES(a.v[i] - b.v[i]); }
MB_INLINE Vf operator*(Vf a, Vf b) { MB_LANES(a.v[i] * b.v[i]); }
MB_INLINE Vf operator/(Vf a, Vf b) { MB_LANES(a.v[i] / b.v[i]); }
MB_INLINE Vf vmax(Vf a, Vf b) { MB_LANES(a.v[i] > b.v[i] ? a.v[i] : b.v[i]); }
MB_INLINE Vf vmin(Vf a, Vf b) { MB_LANES(a.v[i] < b.v[i] ? a.v[i] : b.v[i]); }
MB_INLINE Vf vabs(Vf a) { MB_LANES(std::fabs(a.v[i])); }
MB_INLINE float hsum(Vf a) { float s = 0.f; for (int i = 0; i < W; i++) s += a.v[i]; return s; }
MB_INLINE float hmax(Vf a) { float s = a.v[0]; for (int i = 1; i < W; i++) s = a.v[i] > s ? a.v[i] : s; return s; }
MB_INLINE Vf select_eq(Vf a, Vf b, Vf x, Vf y) { MB_LANES(a.v[i] == b.v[i] ? x.v[i] : y.v[i]); }
MB_INLINE Vf select_gt(Vf a, Vf b, Vf x, Vf y) { MB_LANES(a.v[i] > b.v[i] ? x.v[i] : y.v[i]); }
MB_INLINE Vf keep_range(Vf x, int base, int lo, int hi, float fill) { MB_LANES(base + i >= lo && base + i < hi ? x.v[i] : fill); }
MB_INLINE Vf vround(Vf a) { MB_LANES(std::nearbyint(a.v[i])); }
MB_INLINE Vf scale_pow2(Vf p, Vf n) { MB_LANES(std::ldexp(p.v[i], int(n.v[i]))); }
MB_INLINE Vf vrecip(Vf a) { MB_LANES(1.f / a.v[i]); }
#undef MB_LANES
#endif

// exp(x) by Cody–Waite range reduction and Cephes' degree-7 polynomial: about 1 ulp; exp(-inf) = 0 exactly.
MB_INLINE Vf vexp(Vf x) {
  x = vmin(vmax(x, set1(-104.f)), set1(88.7228391f));
  const Vf n = vround(x * set1(1.44269504088896341f));
  Vf r = fnma(n, set1(0.693359375f), x);
  r = fnma(n, set1(-2.12194440e-4f), r);
  Vf p = set1(1.9875691500e-4f);
  p = fma(p, r, set1(1.3981999507e-3f));
  p = fma(p, r, set1(8.3334519073e-3f));
  p = fma(p, r, set1(4.1665795894e-2f));
  p = fma(p, r, set1(1.6666665459e-1f));
  p = fma(p, r, set1(5.0000001201e-1f));
  p = fma(p * r, r, r + set1(1.f));
  return scale_pow2(p, n);
}

// 2^x by rounding x to an integer n (r = x − n is exact) and Cephes' degree-6 polynomial for 2^r on
// [−1/2, 1/2]: about 2 ulps; 2^(−inf) = 0 exactly. The attention softmax works in base 2 (scores pre-scaled by
// log2 e), which saves exp's range reduction.
MB_INLINE Vf vexp2(Vf x) {
  x = vmin(vmax(x, set1(-200.f)), set1(127.f));
  const Vf n = vround(x);
  const Vf r = x - n;
  Vf p = set1(1.535336188319500e-4f);
  p = fma(p, r, set1(1.339887440266574e-3f));
  p = fma(p, r, set1(9.618437357674640e-3f));
  p = fma(p, r, set1(5.550332471162809e-2f));
  p = fma(p, r, set1(2.402264791363012e-1f));
  p = fma(p, r, set1(6.931472028550421e-1f));
  p = fma(p, r, set1(1.f));
  return scale_pow2(p, n);
}

// Φ(x), the standard normal CDF = 0.5·(1 + erf(x/√2)), through erfc so neither tail cancels: Numerical Recipes'
// erfc fit (fractional error < 1.2e-7 everywhere, the one the TypeScript reference uses), evaluated in float32.
MB_INLINE Vf vnormcdf(Vf x) {
  // Beyond |x| = 40, Φ is 0 or 1 in float; the clamp keeps the reciprocal finite.
  const Vf z = vmin(vabs(x), set1(40.f)) * set1(0.70710678118654752f);
  const Vf t = vrecip(fma(set1(0.5f), z, set1(1.f)));
  Vf p = set1(0.17087277f);
  p = fma(p, t, set1(-0.82215223f));
  p = fma(p, t, set1(1.48851587f));
  p = fma(p, t, set1(-1.13520398f));
  p = fma(p, t, set1(0.27886807f));
  p = fma(p, t, set1(-0.18628806f));
  p = fma(p, t, set1(0.09678418f));
  p = fma(p, t, set1(0.37409196f));
  p = fma(p, t, set1(1.00002368f));
  p = fma(p, t, set1(-1.26551223f));
  const Vf half_erfc = set1(0.5f) * t * vexp(fnma(z, z, p));  // 0.5·erfc(|x|/√2) = Φ(−|x|)
  return select_gt(x, zero(), set1(1.f) - half_erfc, half_erfc);
}
