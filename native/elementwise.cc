// Row-wise and element-wise kernels, forward and backward: LayerNorm, activations, GeGLU, embedding gather and
// scatter-add, RoPE; and the cross-entropy loss with its gradient. The vectorised bodies live in
// elementwise_impl.h, compiled once per ISA (AVX-512, AVX2, portable) under `#pragma GCC target` and picked at
// run time by active_isa().
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics self-initialise their "undefined" operands (`__Y = __Y`), which -Wuninitialized
// reports at every inlined call site; the warning is spurious.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu_features.h"
#include "kernels.h"
#include "threadpool.h"

namespace mb {

#define MB_IMPL_HEADER "elementwise_impl.h"
#include "isa_variants.h"

namespace {

// The row kernels of the ISA in use, chosen once.
struct RowKernels {
  decltype(&isa_portable::activation_rows) activation_rows;
  decltype(&isa_portable::activation_backward_rows) activation_backward_rows;
  decltype(&isa_portable::geglu_row) geglu_row;
  decltype(&isa_portable::geglu_backward_row) geglu_backward_row;
  decltype(&isa_portable::layernorm_row) layernorm_row;
  decltype(&isa_portable::layernorm_backward_row) layernorm_backward_row;
  decltype(&isa_portable::rope_head) rope_head;
  decltype(&isa_portable::add_rows) add_rows;
  decltype(&isa_portable::cross_entropy_row) cross_entropy_row;
};

#define MB_ROW_KERNELS(ns)                                                                                       \
  RowKernels {                                                                                                   \
    ns::activation_rows, ns::activation_backward_rows, ns::geglu_row, ns::geglu_backward_row, ns::layernorm_row, \
        ns::layernorm_backward_row, ns::rope_head, ns::add_rows, ns::cross_entropy_row                           \
  }

const RowKernels& kern() {
  static const RowKernels k = active_isa() == Isa::Avx512 ? MB_ROW_KERNELS(isa_avx512)
                              : active_isa() == Isa::Avx2 ? MB_ROW_KERNELS(isa_avx2)
                                                          : MB_ROW_KERNELS(isa_portable);
  return k;
}
#undef MB_ROW_KERNELS

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
  const RowKernels& k = kern();
  parallel_rows(T, 64, [&](int r0, int r1) {
    for (int t = r0; t < r1; t++)
      k.layernorm_row(out + size_t(t) * D, x + size_t(t) * D, w, b, D, eps, mean ? mean + t : nullptr,
                      rstd ? rstd + t : nullptr);
  });
}

void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                        const float* mean, const float* rstd, int T, int D) {
  const RowKernels& k = kern();
  // Each chunk of rows sums dw/db into its own partial row; the partials are then added in chunk order, so
  // the result does not depend on the thread count or on scheduling.
  const int grain = 128, chunks = (T + grain - 1) / grain;
  static thread_local std::vector<float> partial;
  partial.assign(size_t(chunks) * 2 * D, 0.f);
  float* part = partial.data();
  parallel_for(chunks, [&](int c) {
    float* dwp = part + size_t(c) * 2 * D;
    for (int t = c * grain; t < std::min(T, (c + 1) * grain); t++)
      k.layernorm_backward_row(dx + size_t(t) * D, dwp, dwp + D, dout + size_t(t) * D, x + size_t(t) * D, w, mean[t],
                               rstd[t], D);
  });
  for (int c = 0; c < chunks; c++) {
    k.add_rows(dw, part + size_t(c) * 2 * D, D);
    if (db) k.add_rows(db, part + size_t(c) * 2 * D + D, D);
  }
}

double cross_entropy(float* grad, const float* logits, const int32_t* targets, int N, int C, int ignoreIndex,
                     float scale) {
  const RowKernels& k = kern();
  std::vector<double> rowLoss(N, 0.0);
  parallel_rows(N, 4, [&](int r0, int r1) {
    for (int n = r0; n < r1; n++) {
      float* g = grad ? grad + size_t(n) * C : nullptr;
      if (targets[n] == ignoreIndex) {
        if (g) std::fill(g, g + C, 0.f);
        continue;
      }
      rowLoss[n] = k.cross_entropy_row(g, logits + size_t(n) * C, C, targets[n], scale);
    }
  });
  double sum = 0;
  for (double l : rowLoss) sum += l;  // in row order: the same on any thread count
  return sum;
}

void geglu(float* out, const float* x, int T, int I, Activation act) {
  const RowKernels& k = kern();
  parallel_rows(T, 16, [&](int r0, int r1) {
    for (int t = r0; t < r1; t++) k.geglu_row(out + size_t(t) * I, x + size_t(t) * 2 * I, I, act);
  });
}

void geglu_backward(float* dx, const float* dout, const float* x, int T, int I, Activation act) {
  const RowKernels& k = kern();
  parallel_rows(T, 16, [&](int r0, int r1) {
    for (int t = r0; t < r1; t++)
      k.geglu_backward_row(dx + size_t(t) * 2 * I, dout + size_t(t) * I, x + size_t(t) * 2 * I, I, act);
  });
}

void activation(float* out, const float* x, int64_t n, Activation act) {
  const RowKernels& k = kern();
  const int64_t chunk = 1 << 14;
  parallel_for(int((n + chunk - 1) / chunk), [&](int t) {
    const int64_t i0 = int64_t(t) * chunk;
    k.activation_rows(out + i0, x + i0, std::min<int64_t>(n, i0 + chunk) - i0, act);
  });
}

void activation_backward(float* dx, const float* dout, const float* x, int64_t n, Activation act) {
  const RowKernels& k = kern();
  const int64_t chunk = 1 << 14;
  parallel_for(int((n + chunk - 1) / chunk), [&](int t) {
    const int64_t i0 = int64_t(t) * chunk;
    k.activation_backward_rows(dx + i0, dout + i0, x + i0, std::min<int64_t>(n, i0 + chunk) - i0, act);
  });
}

void embedding(float* out, const float* table, const int32_t* ids, int T, int D) {
  parallel_rows(T, 256, [&](int r0, int r1) {
    for (int t = r0; t < r1; t++) std::memcpy(out + size_t(t) * D, table + size_t(ids[t]) * D, sizeof(float) * D);
  });
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int T, int D, int paddingIdx) {
  const RowKernels& k = kern();
  // Tasks own column ranges, so rows that share a token id never race and the sums run in token order.
  const int cols = 64, tasks = (D + cols - 1) / cols;
  parallel_for(tasks, [&](int c) {
    const int c0 = c * cols, n = std::min(D, c0 + cols) - c0;
    for (int t = 0; t < T; t++)
      if (ids[t] != paddingIdx) k.add_rows(dtable + size_t(ids[t]) * D + c0, dout + size_t(t) * D + c0, n);
  });
}

// The same vector loop embedding_backward uses, over chunks of the pool.
void add_into(float* y, const float* x, int64_t n) {
  const RowKernels& k = kern();
  constexpr int64_t chunk = int64_t(1) << 16;
  parallel_for(int((n + chunk - 1) / chunk), [&](int c) {
    const int64_t i0 = c * chunk;
    k.add_rows(y + i0, x + i0, int(std::min(chunk, n - i0)));
  });
}

namespace {
void rope_apply(float* qkv, const int32_t* pos, const float* cos, const float* sin, int T, int H, int Dh, float sign) {
  const RowKernels& k = kern();
  const int half = Dh / 2, hidden = H * Dh;
  parallel_rows(T, 32, [&](int r0, int r1) {
    for (int t = r0; t < r1; t++) {
      const float* c = cos + size_t(pos[t]) * half;
      const float* s = sin + size_t(pos[t]) * half;
      for (int part = 0; part < 2; part++)  // q, then k
        for (int h = 0; h < H; h++) k.rope_head(qkv + size_t(t) * 3 * hidden + part * hidden + h * Dh, c, s, half, sign);
    }
  });
}
}  // namespace

void rope(float* qkv, const int32_t* pos, const float* cos, const float* sin, int T, int H, int Dh) {
  rope_apply(qkv, pos, cos, sin, T, H, Dh, 1.f);
}

void rope_backward(float* dqkv, const int32_t* pos, const float* cos, const float* sin, int T, int H, int Dh) {
  rope_apply(dqkv, pos, cos, sin, T, H, Dh, -1.f);
}

}  // namespace mb
