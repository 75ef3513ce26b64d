// Whole-model driver for instruction counts (scripts/bench-arm-icount.js): loads
// a plan file (plan_file.h), builds the runtime's Model for one ISA on one
// thread with the default executor and runs `passes` inferences of the file's
// image through Model::run (input quantization, every op of the plan, the
// output copies), as the addon does. Counting the instructions of two runs with different pass counts and
// dividing the difference by the difference of the passes gives the cost of
// one inference: start-up, loading and packing cancel out.
//
//   bench_model PLAN_FILE ISA PASSES
//
// Prints the ISA, the executor (MNQ_EXECUTOR, default fused) and an FNV-1a hash
// of the int8 outputs (the same on every ISA and executor: the kernels are bit-exact).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "bench/plan_file.h"
#include "runtime/model.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: bench_model PLAN_FILE ISA PASSES\n");
    return 2;
  }
  try {
    mnq::Isa isa;
    if (!mnq::parse_isa(argv[2], &isa)) throw std::runtime_error(std::string("unknown ISA ") + argv[2]);
    const int passes = std::atoi(argv[3]);
    if (passes < 0) throw std::runtime_error("PASSES must be >= 0");
    mnq::PlanDesc plan;
    std::vector<float> input;
    mnq::bench::read_plan_file(argv[1], &plan, &input);
    const mnq::Model model(plan, isa, 1);
    if (input.size() != model.input_elements())
      throw std::runtime_error("the file's input has " + std::to_string(input.size()) + " values, the model takes " +
                               std::to_string(model.input_elements()));
    std::vector<std::vector<int8_t>> out(model.num_outputs());
    std::vector<int8_t*> ptrs;
    for (size_t i = 0; i < out.size(); ++i) {
      out[i].resize(model.output_elements(i));
      ptrs.push_back(out[i].data());
    }
    for (int p = 0; p < passes; ++p) model.run(input.data(), 1, ptrs);
    uint64_t h = 1469598103934665603ull;
    for (const auto& o : out)
      for (int8_t v : o) h = (h ^ static_cast<uint8_t>(v)) * 1099511628211ull;
    std::printf("isa %s executor %s passes %d outputs %016llx\n", mnq::isa_name(model.isa()),
                mnq::executor_name(model.executor()), passes, static_cast<unsigned long long>(h));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_model: %s\n", e.what());
    return 1;
  }
}
