// Compiles the kernel bodies in MB_IMPL_HEADER three times, once per ISA, into the namespaces isa_avx512,
// isa_avx2 and isa_portable (each under its own `#pragma GCC target`, so the addon still loads on CPUs
// without AVX-512); the including file dispatches between them on active_isa(). Include it inside
// namespace mb with MB_IMPL_HEADER defined.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
namespace isa_avx512 {
#define MB_VEC_ISA 2
#include "vec_isa.h"
#include MB_IMPL_HEADER
#undef MB_VEC_ISA
#undef MB_INLINE
}  // namespace isa_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace isa_avx2 {
#define MB_VEC_ISA 1
#include "vec_isa.h"
#include MB_IMPL_HEADER
#undef MB_VEC_ISA
#undef MB_INLINE
}  // namespace isa_avx2
#pragma GCC pop_options

namespace isa_portable {
#define MB_VEC_ISA 0
#include "vec_isa.h"
#include MB_IMPL_HEADER
#undef MB_VEC_ISA
#undef MB_INLINE
}  // namespace isa_portable

#undef MB_IMPL_HEADER
