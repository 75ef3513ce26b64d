// The instruction sets of the x86-64 SIMD kernels, in one place: x86/avx2
// (AVX2 + FMA), x86/avxvnni (AVX2 + FMA + AVX-VNNI), x86/avx512vnni (AVX-512
// F/BW/VL + VNNI). isa.cc's cpuid check decides which of them may run.
//
// Every x86-64 binary contains all three, built without -march: only the code
// between MNQ_<ISA>_BEGIN and MNQ_TARGET_END is compiled for that ISA, and
// resolved_kernels (isa.cc) hands it out only when cpuid reports the features. A target region
// holds internal-linkage code only (anonymous namespaces, in the op files and
// in the private headers they include inside the region) and calls no std::
// templates, so no AVX copy of a shared inline function can leak into the
// baseline code. Packing, scratch sizes and each op file's table entries
// (<isa>/table.h) are baseline code outside the regions.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)

// GCC 12 warns about the deliberately undefined pass-through operands inside
// the AVX-512 intrinsic headers (_mm512_undefined_*); the warning is spurious,
// and silenced for those headers only.
#pragma GCC diagnostic push
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop

#if defined(__clang__)
// clang ignores GCC's target pragmas; its equivalent gives every function of the region the target attribute
// (the libFuzzer build, scripts/fuzz-native.js, is the one clang build).
#define MNQ_AVX2_BEGIN _Pragma("clang attribute push(__attribute__((target(\"avx2,fma\"))), apply_to = function)")
#define MNQ_AVXVNNI_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,fma,avxvnni\"))), apply_to = function)")
#define MNQ_AVX512VNNI_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma\"))), apply_to = function)")
#define MNQ_TARGET_END _Pragma("clang attribute pop")
#else
#define MNQ_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define MNQ_AVXVNNI_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,avxvnni\")")
#define MNQ_AVX512VNNI_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma\")")
#define MNQ_TARGET_END _Pragma("GCC pop_options")
#endif

#endif
