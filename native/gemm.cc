// GEMM: C = beta*C + op(A)·op(B) + bias. Portable blocked implementation, parallel over rows of C.
#include <algorithm>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace mb {

void gemm(float* C, const float* A, const float* B, const float* bias, int M, int N, int K, bool transA,
          bool transB, float beta) {
  const int rowsPerTask = 16;
  const int tasks = (M + rowsPerTask - 1) / rowsPerTask;
  parallel_for(tasks, [&](int task) {
    const int i0 = task * rowsPerTask, i1 = std::min(M, i0 + rowsPerTask);
    std::vector<float> arow(K);
    for (int i = i0; i < i1; i++) {
      float* c = C + size_t(i) * N;
      if (beta == 0.f) std::fill(c, c + N, 0.f);
      const float* a = A + size_t(i) * K;
      if (transA) {
        for (int k = 0; k < K; k++) arow[k] = A[size_t(k) * M + i];
        a = arow.data();
      }
      if (transB) {
        for (int j = 0; j < N; j++) {
          const float* b = B + size_t(j) * K;
          float s = 0.f;
          for (int k = 0; k < K; k++) s += a[k] * b[k];
          c[j] += s;
        }
      } else {
        for (int k = 0; k < K; k++) {
          const float av = a[k];
          const float* b = B + size_t(k) * N;
          for (int j = 0; j < N; j++) c[j] += av * b[j];
        }
      }
      if (bias)
        for (int j = 0; j < N; j++) c[j] += bias[j];
    }
  });
}

}  // namespace mb
