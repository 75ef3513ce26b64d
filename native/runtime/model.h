// A compiled model: a validated plan with its arena laid out, weights packed
// for one ISA, output stages and tables built, and a persistent thread pool.
// Immutable after construction; run() / run_int8() may be called concurrently
// from any number of threads. Built in model_build.cc, run in executor.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "buffer.h"
#include "fused_group.h"
#include "memory_plan.h"
#include "plan.h"
#include "thread_pool.h"

namespace mnq {

struct Step;     // step.h
struct Profile;  // profile.h

// How a Model runs its steps: `fused` runs chains of row-local steps as fused
// groups over bands of rows (fused_group.h: inverted residual blocks without
// their expanded tensors), `layers` runs every step over whole tensors, one
// after the other. Same outputs, bit for bit.
enum class Executor : int { fused = 0, layers = 1 };
const char* executor_name(Executor e);
// MNQ_EXECUTOR (fused | layers) if set (throws std::invalid_argument naming
// the value when it is neither), else fused.
Executor default_executor();

class Model {
 public:
  // Validates every field of the plan (throws std::invalid_argument naming the
  // op index, op name and field), lays out the per-image arena (plan_memory),
  // packs weights for `isa` (which must be supported here) and starts
  // threads - 1 pool workers (threads >= 1).
  Model(const PlanDesc& plan, Isa isa, int threads, Executor executor = default_executor());
  ~Model();  // prints the profile (MNQ_PROFILE=1)
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  Isa isa() const { return isa_; }
  int threads() const { return pool_.threads(); }
  const PlanTensor& input() const { return tensors_[input_]; }
  InputLayout input_layout() const { return input_layout_; }  // of run()'s float input
  size_t input_elements() const;               // per image: c * h * w
  size_t num_outputs() const { return outputs_.size(); }
  const PlanTensor& output(size_t i) const { return tensors_[outputs_[i]]; }
  size_t output_elements(size_t i) const;      // per image: h * w * c

  // Memory: the bytes of one image's arena region (a run holds min(batch,
  // threads) of them, plus the batched tail's small tensors), and of the packed
  // weights (every byte the packed convolutions hold).
  int64_t arena_bytes_per_image() const { return memory_.bytes; }
  // The fused groups' windows: the bytes one thread holds for them (0 with
  // the layers executor). A run at batch B on T threads holds min(B, T) arena
  // regions and up to T thread's windows.
  size_t window_bytes_per_thread() const;
  Executor executor() const { return executor_; }
  const std::vector<FusedGroup>& fused_groups() const { return groups_; }
  size_t weight_bytes() const;  // packed weights and the wide lookup tables

  // Float input in input_layout(), [batch][c][h][w] or [batch][h][w][c],
  // quantized with the input tensor's scale and zero point (ORT
  // QuantizeLinear). Output i is int8 NHWC [batch][h][w][c], written to
  // outputs[i] (batch * output_elements(i) bytes). The input is never written.
  void run(const float* input, int batch, const std::vector<int8_t*>& outputs) const;
  // int8 NHWC input [batch][h][w][c], already quantized with the input tensor's
  // scale and zero point.
  void run_int8(const int8_t* nhwc_input, int batch, const std::vector<int8_t*>& outputs) const;

  // The quantization step of run(): float input (input_layout()) -> int8 NHWC
  // [batch][h][w][c] (batch * input_elements() bytes), on the calling thread.
  // run(x) == run_int8(quantize_input(x)) bit for bit; the addon uses this to
  // hand the worker thread a 4x smaller copy of the input.
  void quantize_input(const float* input, int batch, int8_t* nhwc_output) const;

  // Convenience: allocates the outputs.
  std::vector<std::vector<int8_t>> run(const float* input, int batch) const;
  std::vector<std::vector<int8_t>> run_int8(const int8_t* nhwc_input, int batch) const;

 private:
  // model_build.cc: the batched tail's layout (tail_* below).
  void layout_tail();
  // executor.cc
  void execute(const float* f32_input, const int8_t* i8_input, int batch,
               const std::vector<int8_t*>& outputs) const;
  // Steps [begin, end) over `batch` images whose tensors are where at(tensor)
  // says (batch-major when batch > 1); each step split over `pool`'s threads
  // when it is not null, else run on the calling thread.
  void run_steps(size_t begin, size_t end, const std::function<int8_t*(int tensor)>& at, size_t batch,
                 ThreadPool* pool) const;
  void run_step(const Step& s, int8_t* x, const int8_t* b, int8_t* y, size_t batch, ThreadPool* pool) const;
  void run_wide_step(const Step& s, int8_t* x, const int8_t* b, int8_t* y, size_t batch, ThreadPool* pool) const;
  // One image's steps [0, tail_begin_): fused groups band by band (split over
  // `pool`'s threads by rows when it is not null and the group is large enough),
  // the other steps as run_steps does.
  void run_image_steps(const std::function<int8_t*(int tensor)>& at, ThreadPool* pool) const;
  // Output rows [r0, r1) of the group's last step, on the calling thread;
  // `windows` is group.window_bytes of this thread's memory.
  void run_group_rows(const FusedGroup& g, const std::function<int8_t*(int tensor)>& at, int r0, int r1,
                      uint8_t* windows) const;
  // Output rows [r0, r1) of one step (conv, max_pool, lut, add, mul), on the
  // calling thread; x, b, y address row 0 of each tensor (rows outside the ones
  // the step reads or writes need not exist).
  void run_rows(const Step& s, const int8_t* x, const int8_t* b, int8_t* y, int r0, int r1) const;
  void quantize_image(const float* x, int8_t* y) const;  // one image of run()'s input -> int8 NHWC

  std::unique_ptr<Profile> profile_;  // MNQ_PROFILE=1, else null

  Isa isa_;
  std::vector<PlanTensor> tensors_;
  std::vector<Step> steps_;
  int input_ = -1;
  InputLayout input_layout_ = InputLayout::nchw;
  std::vector<int> outputs_;
  Executor executor_ = Executor::fused;
  std::vector<FusedGroup> groups_;  // in step order
  std::vector<int> group_at_;       // per step: the index of the group that begins there, or -1
  MemoryPlan memory_;  // where each tensor lives in an image's arena region
  // The batched tail (see "execution" in executor.cc): steps [tail_begin_, end),
  // each of their tensors' slot offset per image (-1: not in the tail), the
  // slots' bytes per image, and the tensors made before the tail that it reads.
  size_t tail_begin_ = 0;
  std::vector<int64_t> tail_offset_;
  int64_t tail_bytes_ = 0;
  std::vector<int> tail_inputs_;

  // Arenas are reused across runs: at most `threads` runs compute at once.
  mutable std::mutex arenas_mu_;
  mutable std::vector<std::unique_ptr<Buffer>> free_arenas_;
  mutable ThreadPool pool_;
};

}  // namespace mnq
