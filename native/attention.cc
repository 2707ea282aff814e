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
namespace {

// Sets flush-to-zero and denormals-are-zero for the current thread while alive. Peaked softmax rows produce
// probabilities below 2^-126; without this every FMA that touches one takes a microcode assist (measured:
// 6× slower attention for scores with a standard deviation of 9). The values lost are below 1.2e-38.
struct FlushDenormals {
  unsigned saved;
  FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040u); }
  ~FlushDenormals() { _mm_setcsr(saved); }
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;
};

}  // namespace

#define MB_IMPL_HEADER "attention_impl.h"
#include "isa_variants.h"

// The bf16 forward takes the bf16 path gemm_bf16 takes (AMX tiles, else VDPBF16PS; MODERNBERT_ISA and
// MODERNBERT_BF16 cap both alike); without one, the float32 kernel.
const char* bf16_attention_path_name() {
  const char* p = bf16_path_name();
  return std::strcmp(p, "portable") ? p : "float32";
}

void attention(float* out, float* lse, const float* qkv, const int32_t* cuSeqlens, int numSeqs, int H, int Dh,
               int window, float scale, bool bf16) {
  if (bf16 && !std::strcmp(bf16_path_name(), "amx"))
    return isa_avx512::attention_forward_bf16<true>(out, lse, qkv, cuSeqlens, numSeqs, H, Dh, window, scale);
  if (bf16 && !std::strcmp(bf16_path_name(), "avx512bf16"))
    return isa_avx512::attention_forward_bf16<false>(out, lse, qkv, cuSeqlens, numSeqs, H, Dh, window, scale);
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
