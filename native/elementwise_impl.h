// Row-wise and element-wise kernels (forward and backward) for ONE instruction set: included by elementwise.cc
// once per ISA, inside that ISA's namespace and `#pragma GCC target` region, after vec_isa.h (no include guard).

// exp(x) capped at e^80 (finite), for the sigmoids 1/(1 + e^-x): their value at e^80 and beyond is below 2e-35,
// and a finite denominator keeps the reciprocal's Newton step away from inf·0.
MB_INLINE Vf vexp_bounded(Vf x) { return vexp(vmin(x, set1(80.f))); }

// act(x) for a compile-time activation. Exact GELU is x·Φ(x) with Φ from erfc, accurate in the negative tail
// where 1 + erf(x/√2) would cancel; tanh-GELU is written x·sigmoid(2y) (= 0.5x(1 + tanh y)), which avoids
// the cancellation of 1 + tanh y for negative x.
template <int A>
MB_INLINE Vf act_v(Vf x) {
  if constexpr (A == int(Activation::GeluErf)) {
    return x * vnormcdf(x);
  } else if constexpr (A == int(Activation::GeluTanh)) {
    const Vf y = set1(0.7978845608028654f) * fma(set1(0.044715f) * x * x, x, x);
    return x * vrecip(set1(1.f) + vexp_bounded(set1(-2.f) * y));
  } else if constexpr (A == int(Activation::Silu)) {
    return x * vrecip(set1(1.f) + vexp_bounded(zero() - x));
  } else if constexpr (A == int(Activation::Relu)) {
    return vmax(x, zero());
  } else {
    return x;
  }
}

// act'(x), the derivative of act_v.
template <int A>
MB_INLINE Vf act_grad_v(Vf x) {
  if constexpr (A == int(Activation::GeluErf)) {
    // Φ(x) + x·φ(x)
    const Vf cdf = vnormcdf(x);
    const Vf pdf = set1(0.3989422804014327f) * vexp(set1(-0.5f) * x * x);
    return fma(x, pdf, cdf);
  } else if constexpr (A == int(Activation::GeluTanh)) {
    // s = sigmoid(2y) = 1/(1+e), e = exp(−2y): d/dx [x·s] = s + 2x·s(1−s)·y', with 1−s = e·s (no cancellation).
    const Vf x2 = x * x;
    const Vf y = set1(0.7978845608028654f) * fma(set1(0.044715f) * x2, x, x);
    const Vf dy = set1(0.7978845608028654f) * fma(set1(3.f * 0.044715f), x2, set1(1.f));
    const Vf e = vexp_bounded(set1(-2.f) * y);
    const Vf s = vrecip(set1(1.f) + e);
    return fma(set1(2.f) * x * s * (e * s), dy, s);
  } else if constexpr (A == int(Activation::Silu)) {
    const Vf e = vexp_bounded(zero() - x);
    const Vf s = vrecip(set1(1.f) + e);
    return fma(x * s, e * s, s);
  } else if constexpr (A == int(Activation::Relu)) {
    return select_gt(x, zero(), set1(1.f), zero());
  } else {
    return set1(1.f);
  }
}

// Calls f(Vf x at i, n valid lanes, i) over [0, n) in vectors, the tail with a partial vector.
template <typename F>
MB_INLINE void for_vectors(int64_t n, F&& f) {
  int64_t i = 0;
  for (; i + W <= n; i += W) f(i, W);
  if (i < n) f(i, int(n - i));
}

MB_INLINE Vf ld(const float* p, int n) { return n == W ? load(p) : loadn(p, n); }
MB_INLINE void st(float* p, Vf a, int n) {
  if (n == W) store(p, a);
  else storen(p, a, n);
}

template <int A>
static void activation_t(float* out, const float* x, int64_t n) {
  for_vectors(n, [&](int64_t i, int k) { st(out + i, act_v<A>(ld(x + i, k)), k); });
}
template <int A>
static void activation_backward_t(float* dx, const float* dout, const float* x, int64_t n) {
  for_vectors(n, [&](int64_t i, int k) { st(dx + i, ld(dout + i, k) * act_grad_v<A>(ld(x + i, k)), k); });
}
template <int A>
static void geglu_t(float* out, const float* x, int I) {
  for_vectors(I, [&](int64_t i, int k) { st(out + i, act_v<A>(ld(x + i, k)) * ld(x + I + i, k), k); });
}
template <int A>
static void geglu_backward_t(float* dx, const float* dout, const float* x, int I) {
  for_vectors(I, [&](int64_t i, int k) {
    const Vf a = ld(x + i, k), g = ld(x + I + i, k), d = ld(dout + i, k);
    st(dx + i, d * g * act_grad_v<A>(a), k);
    st(dx + I + i, d * act_v<A>(a), k);
  });
}

// One switch per call, outside the loops.
#define MB_ACT_DISPATCH(act, fn, ...)                                              \
  switch (act) {                                                                   \
    case Activation::GeluErf: fn<int(Activation::GeluErf)>(__VA_ARGS__); break;   \
    case Activation::GeluTanh: fn<int(Activation::GeluTanh)>(__VA_ARGS__); break; \
    case Activation::Silu: fn<int(Activation::Silu)>(__VA_ARGS__); break;         \
    case Activation::Relu: fn<int(Activation::Relu)>(__VA_ARGS__); break;         \
    default: fn<int(Activation::Identity)>(__VA_ARGS__); break;                   \
  }

static void activation_rows(float* out, const float* x, int64_t n, Activation act) {
  MB_ACT_DISPATCH(act, activation_t, out, x, n);
}
static void activation_backward_rows(float* dx, const float* dout, const float* x, int64_t n, Activation act) {
  MB_ACT_DISPATCH(act, activation_backward_t, dx, dout, x, n);
}
static void geglu_row(float* out, const float* x, int I, Activation act) { MB_ACT_DISPATCH(act, geglu_t, out, x, I); }
static void geglu_backward_row(float* dx, const float* dout, const float* x, int I, Activation act) {
  MB_ACT_DISPATCH(act, geglu_backward_t, dx, dout, x, I);
}
#undef MB_ACT_DISPATCH

static void layernorm_row(float* o, const float* x, const float* w, const float* b, int D, float eps, float* mean,
                          float* rstd) {
  Vf s = zero();
  for_vectors(D, [&](int64_t d, int k) { s = s + ld(x + d, k); });
  const float mu = hsum(s) / float(D);
  const Vf vmu = set1(mu);
  Vf v = zero();
  for_vectors(D, [&](int64_t d, int k) {
    // Padding lanes of a partial vector hold 0 − mu: mask them out of the variance.
    const Vf c = keep_range(ld(x + d, k) - vmu, 0, 0, k, 0.f);
    v = fma(c, c, v);
  });
  const float rs = 1.f / std::sqrt(hsum(v) / float(D) + eps);
  const Vf vrs = set1(rs);
  for_vectors(D, [&](int64_t d, int k) {
    const Vf y = (ld(x + d, k) - vmu) * vrs * ld(w + d, k);
    st(o + d, b ? y + ld(b + d, k) : y, k);
  });
  if (mean) *mean = mu;
  if (rstd) *rstd = rs;
}

// One row of the LayerNorm backward: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dout·w;
// adds dout·x̂ into dwp and dout into dbp (this task's partial sums).
static void layernorm_backward_row(float* dx, float* dwp, float* dbp, const float* dy, const float* x, const float* w,
                                   float mu, float rs, int D) {
  const Vf vmu = set1(mu), vrs = set1(rs);
  Vf sg = zero(), sgx = zero();
  for_vectors(D, [&](int64_t d, int k) {
    const Vf xh = (ld(x + d, k) - vmu) * vrs;
    const Vf g = ld(dy + d, k) * ld(w + d, k);  // zero in padding lanes
    sg = sg + g;
    sgx = fma(g, xh, sgx);
    st(dwp + d, fma(ld(dy + d, k), xh, ld(dwp + d, k)), k);
    st(dbp + d, ld(dbp + d, k) + ld(dy + d, k), k);
  });
  const Vf a = set1(hsum(sg) / float(D)), c = set1(hsum(sgx) / float(D));
  for_vectors(D, [&](int64_t d, int k) {
    const Vf xh = (ld(x + d, k) - vmu) * vrs;
    const Vf g = ld(dy + d, k) * ld(w + d, k);
    st(dx + d, vrs * fnma(xh, c, g - a), k);
  });
}

// x1' = x1·c − x2·sn, x2' = x2·c + x1·sn on the two halves of one head; sign = −1 rotates back (the backward).
static void rope_head(float* x, const float* c, const float* s, int half, float sign) {
  const Vf vsign = set1(sign);
  for_vectors(half, [&](int64_t i, int k) {
    const Vf x1 = ld(x + i, k), x2 = ld(x + half + i, k), cv = ld(c + i, k), sv = ld(s + i, k) * vsign;
    st(x + i, fnma(x2, sv, x1 * cv), k);
    st(x + half + i, fma(x1, sv, x2 * cv), k);
  });
}

// One row of cross-entropy against class y: returns max + log Σ exp(x − max) − x[y]; with grad (which may alias
// x), writes (softmax − onehot(y))·scale. exp in float32 (vexp, a few ulps), the row's sum in float32 lanes.
static double cross_entropy_row(float* grad, const float* x, int C, int y, float scale) {
  Vf mv = set1(-INFINITY);
  for_vectors(C, [&](int64_t c, int k) { mv = vmax(mv, keep_range(ld(x + c, k), 0, 0, k, -INFINITY)); });
  const float mx = hmax(mv), target = x[y];  // x[y] read before grad overwrites it
  const Vf vm = set1(mx);
  Vf s = zero();
  for_vectors(C, [&](int64_t c, int k) {
    const Vf e = keep_range(vexp(ld(x + c, k) - vm), 0, 0, k, 0.f);
    s = s + e;
    if (grad) st(grad + c, e, k);
  });
  const double z = hsum(s);
  if (grad) {
    const Vf sc = set1(float(scale / z));
    for_vectors(C, [&](int64_t c, int k) { st(grad + c, ld(grad + c, k) * sc, k); });
    grad[y] -= scale;
  }
  return double(mx) + std::log(z) - double(target);
}

static void add_rows(float* dst, const float* src, int n) {
  for_vectors(n, [&](int64_t i, int k) { st(dst + i, ld(dst + i, k) + ld(src + i, k), k); });
}
