// MNQ_PROFILE=1: wall time per kind of step, summed over a Model's runs and
// printed to stderr when the Model is destroyed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "plan.h"

namespace mnq {

struct Profile {
  // Kinds: the input quantization, each kind of op, arena + output copies, and the fused groups (whose
  // steps are timed together; see kNames in profile.cc).
  static constexpr int kKinds = 12;
  static constexpr int kInput = 0, kOutputs = 10, kFused = 11;
  static int kind_of(PlanOpType type, ConvKind kind);
  // True when MNQ_PROFILE is set to something other than "" or "0".
  static bool enabled();

  std::atomic<int64_t> ns[kKinds] = {};
  std::atomic<int64_t> calls[kKinds] = {};
  std::atomic<int64_t> runs{0}, images{0};

  void add(int kind, std::chrono::steady_clock::time_point t0) {
    const auto d = std::chrono::steady_clock::now() - t0;
    ns[kind].fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(), std::memory_order_relaxed);
    calls[kind].fetch_add(1, std::memory_order_relaxed);
  }
  // Per-run times of each kind, to stderr (nothing when no run was made).
  void report(Isa isa, int threads) const;
};

}  // namespace mnq
