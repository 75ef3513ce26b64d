// The instruction set of the AArch64 dot-product kernels (this directory):
// ARMv8.2-A + dotprod (Cortex-A76, Raspberry Pi 5).
//
// Only the functions that execute SDOT are compiled for armv8.2-a+dotprod (a
// target attribute on each, MNQ_DOTPROD, not a file-wide flag or pragma):
// everything else in these files, including any library template instantiated
// there, stays baseline ARMv8.0, so nothing the linker may share with the
// Cortex-A72 path can contain an instruction that CPU lacks. isa.cc
// selects this table only when getauxval(AT_HWCAP) has HWCAP_ASIMDDP.
#pragma once

#if defined(__aarch64__)
#define MNQ_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
