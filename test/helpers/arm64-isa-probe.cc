// Prints the ISA mnq's dispatcher picks on the running CPU, for
// scripts/test-arm64.js (which builds it against the cross-built kernel library
// and runs it under qemu-aarch64 with each CPU model):
//   default ISA: neon
//   supported ISAs: scalar neon
// Exits 1 with the dispatcher's message when MNQ_ISA names an ISA this CPU lacks.
#include <cstdio>
#include <exception>

#include "kernels/kernels.h"

int main() {
  std::printf("supported ISAs:");
  for (mnq::Isa isa : mnq::supported_isas()) std::printf(" %s", mnq::isa_name(isa));
  std::printf("\n");
  try {
    std::printf("default ISA: %s\n", mnq::isa_name(mnq::default_isa()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
