// Optimiser updates over a parameter tensor's flat values, in place, and the gradient's global norm and
// scaling (the TypeScript references are adamwStep, sumSquares and scale in src/kernels/reference.ts).
// Memory-bound: every AdamW element reads p, g, m, v and writes p, m, v, so the loops are plain C++ in double
// precision, as the reference computes, split over the pool's threads in fixed chunks (results do not depend
// on the thread count).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace mb {

namespace {
constexpr int64_t kChunk = int64_t(1) << 16;

int chunk_count(int64_t n) { return int((n + kChunk - 1) / kChunk); }

// body(c, i0, i1) for the fixed chunks [i0, i1) of [0, n), on the pool.
template <typename F>
void for_chunks(int64_t n, F&& body) {
  parallel_for(chunk_count(n), [&](int c) { body(c, c * kChunk, std::min(n, (c + 1) * kChunk)); });
}

// Partial sums of the chunks, added in chunk order: the same rounding on any thread count.
double in_order(const std::vector<double>& partial) {
  double sum = 0;
  for (double s : partial) sum += s;
  return sum;
}
}  // namespace

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weightDecay, int step, bool stable) {
  const double bc1 = 1 - std::pow(beta1, step), bc2 = 1 - std::pow(beta2, step);
  // Moments first; StableAdamW also needs sum(g² / max(v̂, ε²)) over the whole tensor before any update.
  std::vector<double> partial(stable ? chunk_count(n) : 0);
  const double epsSq = eps * eps;
  for_chunks(n, [&](int c, int64_t i0, int64_t i1) {
    double sum = 0;
    for (int64_t i = i0; i < i1; i++) {
      const double gi = g[i];
      m[i] = float(beta1 * m[i] + (1 - beta1) * gi);
      v[i] = float(beta2 * v[i] + (1 - beta2) * gi * gi);
      if (stable) sum += (gi * gi) / std::max(double(v[i]) / bc2, epsSq);
    }
    if (stable) partial[c] = sum;
  });
  const double tensorLr = stable ? lr / std::max(1.0, std::sqrt(in_order(partial) / double(n))) : lr;
  const double decay = 1 - tensorLr * weightDecay, stepSize = tensorLr / bc1, sqrtBc2 = std::sqrt(bc2);
  for_chunks(n, [&](int, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++)
      p[i] = float(p[i] * decay - (stepSize * m[i]) / (std::sqrt(double(v[i])) / sqrtBc2 + eps));
  });
}

double sum_squares(const float* x, int64_t n) {
  std::vector<double> partial(chunk_count(n));
  for_chunks(n, [&](int c, int64_t i0, int64_t i1) {
    // Eight running sums: one chain would wait on the adder's latency at every element.
    double s[8] = {};
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8)
      for (int j = 0; j < 8; j++) s[j] += double(x[i + j]) * x[i + j];
    for (; i < i1; i++) s[0] += double(x[i]) * x[i];
    partial[c] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  });
  return in_order(partial);
}

void scale(float* x, int64_t n, double factor) {
  for_chunks(n, [&](int, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) x[i] = float(x[i] * factor);
  });
}

}  // namespace mb
