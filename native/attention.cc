// Variable-length attention with an optional sliding window, one query row at a time with an online
// softmax: memory is O(T·H·Dh), never T×T, and local layers only visit keys inside their window.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace mb {

void attention(float* out, float* lse, const float* qkv, const int32_t* cuSeqlens, int numSeqs, int H, int Dh,
               int window, float scale) {
  const int hidden = H * Dh, stride = 3 * hidden;
  const int T = cuSeqlens[numSeqs];
  const int rowsPerTask = 32;
  // Tasks: (head, block of query rows); blocks never cross a sequence boundary.
  struct Block { int seq, q0, q1; };
  std::vector<Block> blocks;
  for (int s = 0; s < numSeqs; s++)
    for (int q = cuSeqlens[s]; q < cuSeqlens[s + 1]; q += rowsPerTask)
      blocks.push_back({s, q, std::min(cuSeqlens[s + 1], q + rowsPerTask)});
  const int nb = int(blocks.size());
  parallel_for(nb * H, [&](int task) {
    const Block& b = blocks[task % nb];
    const int h = task / nb;
    const int start = cuSeqlens[b.seq], end = cuSeqlens[b.seq + 1];
    std::vector<float> acc(Dh);
    for (int i = b.q0; i < b.q1; i++) {
      const float* q = qkv + size_t(i) * stride + h * Dh;
      int j0 = start, j1 = end;
      if (window >= 0) {
        j0 = std::max(start, i - window);
        j1 = std::min(end, i + window + 1);
      }
      float m = -INFINITY, l = 0.f;
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int j = j0; j < j1; j++) {
        const float* k = qkv + size_t(j) * stride + hidden + h * Dh;
        const float* v = k + hidden;
        float s = 0.f;
        for (int d = 0; d < Dh; d++) s += q[d] * k[d];
        s *= scale;
        if (s > m) {
          const float corr = std::exp(m - s);
          l *= corr;
          for (int d = 0; d < Dh; d++) acc[d] *= corr;
          m = s;
        }
        const float p = std::exp(s - m);
        l += p;
        for (int d = 0; d < Dh; d++) acc[d] += p * v[d];
      }
      float* o = out + size_t(i) * hidden + h * Dh;
      const float inv = 1.f / l;
      for (int d = 0; d < Dh; d++) o[d] = acc[d] * inv;
      if (lse) lse[size_t(h) * T + i] = m + std::log(l);
    }
  });
}

}  // namespace mb
