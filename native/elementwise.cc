// Row-wise and element-wise kernels: LayerNorm, activations, GeGLU, embedding gather, RoPE.
#include <cmath>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

namespace mb {
namespace {

inline float act1(float x, Activation act) {
  switch (act) {
    case Activation::GeluErf: return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752f));
    case Activation::GeluTanh: {
      const float c = 0.7978845608028654f;  // sqrt(2/pi)
      return 0.5f * x * (1.f + std::tanh(c * (x + 0.044715f * x * x * x)));
    }
    case Activation::Silu: return x / (1.f + std::exp(-x));
    case Activation::Relu: return x > 0.f ? x : 0.f;
    default: return x;
  }
}

// Splits [0, n) into chunks of about `grain` items and runs them on the pool.
template <typename F>
void parallel_rows(int n, int grain, F&& body) {
  const int tasks = (n + grain - 1) / grain;
  parallel_for(tasks, [&](int t) {
    const int r0 = t * grain, r1 = std::min(n, r0 + grain);
    body(r0, r1);
  });
}

}  // namespace

void layernorm(float* out, const float* x, const float* w, const float* b, int T, int D, float eps, float* mean,
               float* rstd) {
  parallel_rows(T, 64, [&](int r0, int r1) {
    for (int t = r0; t < r1; t++) {
      const float* xr = x + size_t(t) * D;
      float* o = out + size_t(t) * D;
      double s = 0.0;
      for (int d = 0; d < D; d++) s += xr[d];
      const float mu = float(s / D);
      double v = 0.0;
      for (int d = 0; d < D; d++) {
        const float c = xr[d] - mu;
        v += double(c) * c;
      }
      const float rs = 1.f / std::sqrt(float(v / D) + eps);
      for (int d = 0; d < D; d++) o[d] = (xr[d] - mu) * rs * w[d] + (b ? b[d] : 0.f);
      if (mean) mean[t] = mu;
      if (rstd) rstd[t] = rs;
    }
  });
}

void geglu(float* out, const float* x, int T, int I, Activation act) {
  parallel_rows(T, 64, [&](int r0, int r1) {
    for (int t = r0; t < r1; t++) {
      const float* in = x + size_t(t) * 2 * I;
      float* o = out + size_t(t) * I;
      for (int i = 0; i < I; i++) o[i] = act1(in[i], act) * in[I + i];
    }
  });
}

void activation(float* out, const float* x, int64_t n, Activation act) {
  const int chunk = 1 << 14;
  const int tasks = int((n + chunk - 1) / chunk);
  parallel_for(tasks, [&](int t) {
    const int64_t i0 = int64_t(t) * chunk, i1 = std::min<int64_t>(n, i0 + chunk);
    for (int64_t i = i0; i < i1; i++) out[i] = act1(x[i], act);
  });
}

void embedding(float* out, const float* table, const int32_t* ids, int T, int D) {
  parallel_rows(T, 256, [&](int r0, int r1) {
    for (int t = r0; t < r1; t++) std::memcpy(out + size_t(t) * D, table + size_t(ids[t]) * D, sizeof(float) * D);
  });
}

void rope(float* qkv, const int32_t* pos, const float* cos, const float* sin, int T, int H, int Dh) {
  const int half = Dh / 2, hidden = H * Dh;
  parallel_rows(T, 64, [&](int r0, int r1) {
    for (int t = r0; t < r1; t++) {
      const float* c = cos + size_t(pos[t]) * half;
      const float* s = sin + size_t(pos[t]) * half;
      for (int part = 0; part < 2; part++) {  // q, then k
        for (int h = 0; h < H; h++) {
          float* x = qkv + size_t(t) * 3 * hidden + part * hidden + h * Dh;
          for (int i = 0; i < half; i++) {
            const float x1 = x[i], x2 = x[i + half];
            x[i] = x1 * c[i] - x2 * s[i];
            x[i + half] = x2 * c[i] + x1 * s[i];
          }
        }
      }
    }
  });
}

}  // namespace mb
