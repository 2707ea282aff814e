#include "cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace mb {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    c.amxBf16 = __builtin_cpu_supports("amx-bf16");
#endif
    return c;
  }();
  return f;
}

static Isa detect() {
  const CpuFeatures& c = cpu_features();
  Isa best = Isa::Portable;
  if (c.avx2 && c.fma) best = Isa::Avx2;
  if (best == Isa::Avx2 && c.avx512f && c.avx512bw && c.avx512vl) best = Isa::Avx512;
  if (const char* env = std::getenv("MODERNBERT_ISA")) {
    Isa cap = best;
    if (!std::strcmp(env, "portable")) cap = Isa::Portable;
    else if (!std::strcmp(env, "avx2")) cap = Isa::Avx2;
    else if (!std::strcmp(env, "avx512")) cap = Isa::Avx512;
    if (int(cap) < int(best)) best = cap;
  }
  return best;
}

Isa active_isa() {
  static const Isa isa = detect();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "portable";
  }
}

}  // namespace mb
