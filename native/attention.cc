// Variable-length flash attention with an optional sliding window, forward and backward: tiles of keys ×
// queries with an online softmax, so memory is O(T·H·Dh), never T×T, and local layers only visit key blocks
// inside their window. The bodies live in attention_impl.h and are compiled once per ISA (AVX-512, AVX2,
// portable) under `#pragma GCC target`, so the addon loads on any x86-64 and picks the path at run time.
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics self-initialise their "undefined" operands (`__Y = __Y`), which -Wuninitialized
// reports at every inlined call site; the warning is spurious.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "cpu_features.h"
#include "kernels.h"
#include "threadpool.h"

namespace mb {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
namespace isa_avx512 {
#define MB_VEC_ISA 2
#include "vec_isa.h"
#include "attention_impl.h"
#undef MB_VEC_ISA
#undef MB_INLINE
}  // namespace isa_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace isa_avx2 {
#define MB_VEC_ISA 1
#include "vec_isa.h"
#include "attention_impl.h"
#undef MB_VEC_ISA
#undef MB_INLINE
}  // namespace isa_avx2
#pragma GCC pop_options

namespace isa_portable {
#define MB_VEC_ISA 0
#include "vec_isa.h"
#include "attention_impl.h"
#undef MB_VEC_ISA
#undef MB_INLINE
}  // namespace isa_portable

void attention(float* out, float* lse, const float* qkv, const int32_t* cuSeqlens, int numSeqs, int H, int Dh,
               int window, float scale) {
  switch (active_isa()) {
    case Isa::Avx512: return isa_avx512::attention_forward(out, lse, qkv, cuSeqlens, numSeqs, H, Dh, window, scale);
    case Isa::Avx2: return isa_avx2::attention_forward(out, lse, qkv, cuSeqlens, numSeqs, H, Dh, window, scale);
    default: return isa_portable::attention_forward(out, lse, qkv, cuSeqlens, numSeqs, H, Dh, window, scale);
  }
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out, const float* lse,
                        const int32_t* cuSeqlens, int numSeqs, int H, int Dh, int window, float scale) {
  switch (active_isa()) {
    case Isa::Avx512:
      return isa_avx512::attention_backward(dqkv, dout, qkv, out, lse, cuSeqlens, numSeqs, H, Dh, window, scale);
    case Isa::Avx2:
      return isa_avx2::attention_backward(dqkv, dout, qkv, out, lse, cuSeqlens, numSeqs, H, Dh, window, scale);
    default:
      return isa_portable::attention_backward(dqkv, dout, qkv, out, lse, cuSeqlens, numSeqs, H, Dh, window, scale);
  }
}

}  // namespace mb
