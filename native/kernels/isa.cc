// Which ISA's kernels run (kernels.h "ISA choice"): CPU detection (cpuid /
// getauxval), MNQ_ISA, and the per-ISA kernel tables with null entries
// resolved (internal.h).
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define MNQ_X86 1
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#define MNQ_ARM64_LINUX 1
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

namespace mnq {

using detail::fail;

namespace {

// ---------------------------------------------------------- CPU features
struct CpuFeatures {
  bool avx2 = false;        // AVX2 + FMA + OS saves YMM
  bool avxvnni = false;     // AVX2 + AVX-VNNI (VEX vpdpbusd)
  bool avx512vnni = false;  // AVX-512 F/BW/VL/DQ + VNNI + OS saves ZMM
  bool neon = false;
  bool neondot = false;
};

CpuFeatures detect_cpu() {
  CpuFeatures f;
#if defined(MNQ_X86)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
  if (!osxsave || !avx) return f;
  uint32_t xcr0_lo, xcr0_hi;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool ymm = (xcr0_lo & 0x6) == 0x6;
  const bool zmm = (xcr0_lo & 0xe6) == 0xe6;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned max_subleaf7 = a;
  const bool avx2 = (b >> 5) & 1;
  const bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
             avx512vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
  f.avx2 = ymm && avx2 && fma;
  f.avx512vnni = f.avx2 && zmm && avx512f && avx512dq && avx512bw && avx512vl && vnni;
  if (max_subleaf7 >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    f.avxvnni = f.avx2 && ((a >> 4) & 1);  // CPUID.(EAX=7,ECX=1):EAX[4] AVX-VNNI
  }
#elif defined(MNQ_ARM64_LINUX)
  const unsigned long hw = getauxval(AT_HWCAP);
  f.neon = (hw & HWCAP_ASIMD) != 0;
  f.neondot = f.neon && (hw & HWCAP_ASIMDDP) != 0;
#elif defined(__aarch64__)
  f.neon = true;  // ASIMD is mandatory on AArch64; no portable dot-product probe here
#endif
  return f;
}

const CpuFeatures& cpu() {
  static const CpuFeatures f = detect_cpu();
  return f;
}

const detail::IsaKernels* table_of(Isa isa) {
  switch (isa) {
    case Isa::scalar: return &detail::scalar_kernels();
    case Isa::avx2: return detail::avx2_kernels();
    case Isa::avxvnni: return detail::avxvnni_kernels();
    case Isa::avx512vnni: return detail::avx512vnni_kernels();
    case Isa::neon: return detail::neon_kernels();
    case Isa::neondot: return detail::neondot_kernels();
  }
  return nullptr;
}

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return cpu().avx2;
    case Isa::avxvnni: return cpu().avxvnni;
    case Isa::avx512vnni: return cpu().avx512vnni;
    case Isa::neon: return cpu().neon;
    case Isa::neondot: return cpu().neondot;
  }
  return false;
}

// From the narrowest to the widest: default_isa() picks the last supported one.
const Isa kAllIsas[] = {Isa::scalar,     Isa::avx2, Isa::avxvnni,
                        Isa::avx512vnni, Isa::neon, Isa::neondot};

std::string isa_list(const std::vector<Isa>& v) {
  std::string s;
  for (Isa i : v) s += (s.empty() ? "" : ", ") + std::string(isa_name(i));
  return s;
}

}  // namespace

// --------------------------------------------------------------- ISA choice
const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avxvnni: return "avxvnni";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::neon: return "neon";
    case Isa::neondot: return "neondot";
  }
  return "unknown";
}

bool parse_isa(const std::string& name, Isa* out) {
  for (Isa i : kAllIsas)
    if (name == isa_name(i)) {
      if (out) *out = i;
      return true;
    }
  return false;
}

bool isa_supported(Isa isa) { return table_of(isa) != nullptr && cpu_has(isa); }

std::vector<Isa> supported_isas() {
  std::vector<Isa> v;
  for (Isa i : kAllIsas)
    if (isa_supported(i)) v.push_back(i);
  return v;
}

Isa default_isa() {
  const std::vector<Isa> sup = supported_isas();
  const char* env = std::getenv("MNQ_ISA");
  if (env && *env) {
    Isa isa;
    if (!parse_isa(env, &isa))
      throw std::runtime_error(std::string("mnq: MNQ_ISA='") + env +
                               "' is not an ISA mnq knows (scalar, avx2, avxvnni, avx512vnni, neon, "
                               "neondot); this CPU supports: " + isa_list(sup));
    if (!isa_supported(isa))
      throw std::runtime_error(std::string("mnq: MNQ_ISA='") + env +
                               "' is not supported on this CPU / build; supported: " +
                               isa_list(sup));
    return isa;
  }
  return sup.back();  // ordered from scalar to the widest
}

namespace detail {

const IsaKernels& resolved_kernels(Isa isa) {
  if (!parse_isa(isa_name(isa), nullptr)) fail("unknown ISA value " + std::to_string(int(isa)));
  if (!isa_supported(isa))
    fail(std::string("ISA ") + isa_name(isa) + " is not supported on this CPU / build (supported: " +
         isa_list(supported_isas()) + ")");
  // Tables are immutable: resolve every ISA once (thread-safe static init).
  struct Resolved {
    IsaKernels k[sizeof(kAllIsas) / sizeof(kAllIsas[0])];
  };
  static const Resolved resolved = [] {
    Resolved r;
    const IsaKernels& s = scalar_kernels();
    for (Isa i : kAllIsas) {
      const IsaKernels* t = table_of(i);
      // Null entries fall back to scalar; avxvnni and avx512vnni (each implies
      // AVX2 + FMA) fall back to the resolved AVX2 table, resolved before them
      // in kAllIsas (so both take the wide kernels, int16 activations, from it).
      IsaKernels k = i == Isa::avxvnni || i == Isa::avx512vnni ? r.k[int(Isa::avx2)] : s;
      if (t) {
        // A GEMM / depthwise kernel always runs on weights packed by its own table.
        if (t->gemm) { k.gemm = t->gemm; k.gemm_pack = t->gemm_pack ? t->gemm_pack : s.gemm_pack; }
        if (t->depthwise) {
          k.depthwise = t->depthwise;
          k.depthwise_pack = t->depthwise_pack ? t->depthwise_pack : s.depthwise_pack;
          k.depthwise_scratch_size =
              t->depthwise_scratch_size ? t->depthwise_scratch_size : s.depthwise_scratch_size;
        }
        if (t->conv_direct) {
          k.conv_direct = t->conv_direct;
          k.conv_direct_pack = t->conv_direct_pack;
          k.conv_direct_scratch_size = t->conv_direct_scratch_size;
        }
        if (t->global_avg_pool) k.global_avg_pool = t->global_avg_pool;
        if (t->add) k.add = t->add;
        if (t->mul) k.mul = t->mul;
        if (t->mul_channelwise) k.mul_channelwise = t->mul_channelwise;
        if (t->lut_apply) k.lut_apply = t->lut_apply;
        if (t->quantize_nchw_to_nhwc) k.quantize_nchw_to_nhwc = t->quantize_nchw_to_nhwc;
        if (t->dequantize) k.dequantize = t->dequantize;
        if (t->gemm_wide) {
          k.gemm_wide = t->gemm_wide;
          k.gemm_wide_pack = t->gemm_wide_pack ? t->gemm_wide_pack : s.gemm_wide_pack;
        }
        if (t->depthwise_wide) {
          k.depthwise_wide = t->depthwise_wide;
          k.depthwise_wide_pack = t->depthwise_wide_pack ? t->depthwise_wide_pack : s.depthwise_wide_pack;
        }
        if (t->add_wide) k.add_wide = t->add_wide;
        if (t->mul_wide) k.mul_wide = t->mul_wide;
        if (t->mul_channelwise_wide) k.mul_channelwise_wide = t->mul_channelwise_wide;
        if (t->unary_wide) k.unary_wide = t->unary_wide;
        if (t->global_avg_pool_wide) k.global_avg_pool_wide = t->global_avg_pool_wide;
      }
      r.k[int(i)] = k;
    }
    return r;
  }();
  return resolved.k[int(isa)];
}

}  // namespace detail
}  // namespace mnq
