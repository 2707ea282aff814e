// Run-time CPU feature detection: the one place that decides which ISA path the kernels take.
#pragma once

namespace mb {

enum class Isa : int { Portable = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512vl = false;
  bool avx512bf16 = false, amxBf16 = false;
};

const CpuFeatures& cpu_features();
// The ISA the kernels use: the best the CPU has, capped by MODERNBERT_ISA=portable|avx2|avx512.
Isa active_isa();
const char* isa_name(Isa isa);

}  // namespace mb
