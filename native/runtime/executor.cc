// Running a Model: the execution of its steps over a batch (see "execution"
// below), the input quantization and the output copies. Building the steps:
// model_build.cc.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "model.h"
#include "plan_check.h"
#include "profile.h"
#include "step.h"

namespace mnq {

namespace {

// Per-thread scratch for conv_run (im2col rows etc.), grown on demand, 64-byte aligned.
struct Scratch {
  std::unique_ptr<Buffer> buf;
  void* get(size_t bytes) {
    if (bytes > 0 && (!buf || buf->size() < bytes)) {
      buf.reset();
      buf.reset(new Buffer(bytes));
    }
    return buf ? buf->data() : nullptr;
  }
};
thread_local Scratch tls_scratch;
thread_local Scratch tls_windows;  // the fused groups' windows (Model::run_group_rows)

}  // namespace

// ------------------------------------------------------------------ execution
//
// Each image runs alone, from its input to its outputs, in one region of the
// arena (memory_.bytes, laid out at creation by plan_memory): its working set is one image's whatever the batch, and a region is
// reused image after image, run after run, so it stays in cache (an op over the
// whole batch would stream B times the activations of the large early layers
// through the caches).
//
// With T threads, the first floor(B / T) * T images run image-parallel: each
// thread takes whole images, one region per thread, and runs every step alone
// with no synchronisation per op. The remaining images (all of them at batch 1)
// run one after the other, each step split over the threads (rows of a conv,
// columns of a small GEMM, ranges of an elementwise op).
//
// The tail - the last steps, where every tensor is one pixel (the classifier
// after the global pool) - runs once over the whole batch instead: its weights
// are the largest of the network and its activations the smallest, so a GEMM
// over B rows reads the weights once for B images. Its tensors have their own
// batch-major slots after the regions (tail_offset_); each image's tail inputs
// are copied there when its region is done.
//
// Memory: min(B, T) regions plus B times the (small) tail, however large B is.
namespace {

// Splits [0, units) into at most `threads` contiguous ranges of at least `min_chunk` units. One range
// per thread keeps the split stable from op to op (the caller claims the first range, a worker the
// next), so a thread mostly reads the rows it wrote itself one op before; finer ranges claimed
// dynamically land on either core and were ~15% slower at batch 1 on 2 threads (mobilenetv2-12-int8,
// 1.76-1.83 vs 1.47-1.60 ms). A late worker's range is still taken by whoever is free.
// A conv task should carry enough multiply-adds to pay for handing it to another thread (measured on
// MobileNetV3-Small at 2 threads, batch 1: 64K is 3-8% faster than splitting every op in two; 1M is slower).
constexpr size_t kMinTaskMacs = 65536;

size_t task_count(size_t units, size_t min_chunk, int threads) {
  if (threads <= 1 || units == 0) return units == 0 ? 0 : 1;
  size_t by_size = (units + min_chunk - 1) / min_chunk;
  return std::max<size_t>(1, std::min(by_size, static_cast<size_t>(threads)));
}

// fn(begin, end) over [0, units): on the pool's threads when `pool` is not null,
// else in one call on this thread.
template <typename Fn>
void split(ThreadPool* pool, size_t units, size_t min_chunk, Fn&& fn) {
  const size_t tasks = task_count(units, min_chunk, pool ? pool->threads() : 1);
  if (tasks == 0) return;
  if (tasks == 1) {
    fn(size_t{0}, units);
    return;
  }
  pool->parallel_for(tasks, [&](size_t t) {
    size_t b = units * t / tasks, e = units * (t + 1) / tasks;
    if (b < e) fn(b, e);
  });
}

// conv / fully_connected: one GEMM over every pixel of the batch (as_gemm; rows m = batch * h * w, columns n),
// split over the columns when there are few rows (classifier, SE FCs), else over the rows; other convs row
// ranges per image. Offsets in bytes of x's and y's types (an int16 tensor: 2 per value). gemm(x, y, m, n0,
// n1) and conv(x, y, r0, r1, scratch) call the int8 or the wide kernels.
template <typename Gemm, typename Conv>
void run_conv(const Step& s, const PlanTensor& X, const PlanTensor& Y, int8_t* x, int8_t* y, size_t batch,
              ThreadPool* pool, const Gemm& gemm, const Conv& conv) {
  const PackedConv& p = *s.packed;
  const size_t xs = dtype_bytes(X.dtype), ys = dtype_bytes(Y.dtype);
  const int T = pool ? pool->threads() : 1;
  if (s.as_gemm) {
    const size_t m = batch * static_cast<size_t>(Y.h) * Y.w;
    const size_t k = static_cast<size_t>(s.gemm_k), n = static_cast<size_t>(s.gemm_n);
    if (T > 1 && m < static_cast<size_t>(8 * T)) {
      // Few rows: split the columns.
      const size_t blk = static_cast<size_t>(std::max(1, gemm_column_block(p)));
      const size_t nblocks = (n + blk - 1) / blk;
      // At least ~32K multiply-adds per task, so that tiny SE layers stay on one thread.
      const size_t block_macs = std::max<size_t>(1, m * k * blk);
      split(pool, nblocks, std::max<size_t>(1, 32768 / block_macs), [&](size_t b0, size_t b1) {
        const int n0 = static_cast<int>(b0 * blk), n1 = static_cast<int>(std::min(n, b1 * blk));
        gemm(x, y, m, n0, n1);
      });
    } else {
      split(pool, m, std::max<size_t>(16, kMinTaskMacs / std::max<size_t>(1, k * n)), [&](size_t r0, size_t r1) {
        gemm(x + r0 * k * xs, y + r0 * n * ys, r1 - r0, 0, static_cast<int>(n));
      });
    }
    return;
  }
  const size_t x_img = static_cast<size_t>(bytes(X)), y_img = static_cast<size_t>(bytes(Y));
  const size_t min_rows = std::max<size_t>(1, kMinTaskMacs / std::max<size_t>(1, s.row_macs));
  for (size_t i = 0; i < batch; ++i) {
    split(pool, static_cast<size_t>(Y.h), min_rows, [&](size_t r0, size_t r1) {
      void* scratch = tls_scratch.get(conv_scratch_size(p, static_cast<int>(r0), static_cast<int>(r1)));
      conv(x + i * x_img, y + i * y_img, static_cast<int>(r0), static_cast<int>(r1), scratch);
    });
  }
}

}  // namespace

// A step with int16 tensors (the wide kernels): as run_step, with offsets in bytes of each tensor's type.
void Model::run_wide_step(const Step& s, int8_t* x, const int8_t* b, int8_t* y, size_t batch, ThreadPool* pool) const {
  const PlanTensor& X = tensors_[s.x];
  const PlanTensor& Y = tensors_[s.y];
  const size_t xs = dtype_bytes(X.dtype), ys = dtype_bytes(Y.dtype);
  const size_t bs = s.b >= 0 ? dtype_bytes(tensors_[s.b].dtype) : 1;
  const size_t x_img = static_cast<size_t>(bytes(X)), y_img = static_cast<size_t>(bytes(Y));
  const size_t y_all = batch * static_cast<size_t>(elements(Y));
  switch (s.type) {
    case PlanOpType::conv:
    case PlanOpType::fully_connected: {
      const PackedConv& p = *s.packed;
      run_conv(
          s, X, Y, x, y, batch, pool,
          [&](const int8_t* xp, int8_t* yp, size_t m, int n0, int n1) { gemm_run_columns_wide(p, s.stage, xp, yp, m, n0, n1); },
          [&](const int8_t* xp, int8_t* yp, int r0, int r1, void* scratch) {
            conv_run_wide(p, s.stage, xp, yp, r0, r1, scratch);
          });
      break;
    }
    case PlanOpType::global_avg_pool:
      for (size_t i = 0; i < batch; ++i)
        global_avg_pool_wide(isa_, s.gap_wide, static_cast<size_t>(X.h) * X.w, static_cast<size_t>(X.c), x + i * x_img,
                             y + i * y_img);
      break;
    case PlanOpType::add:
      split(pool, y_all, 16384,
            [&](size_t e0, size_t e1) { add_wide(isa_, s.binary, e1 - e0, x + e0 * xs, b + e0 * bs, y + e0 * ys); });
      break;
    case PlanOpType::mul:
      if (s.channelwise) {
        const size_t hw = static_cast<size_t>(X.h) * X.w, c = static_cast<size_t>(X.c);
        for (size_t i = 0; i < batch; ++i) {
          split(pool, hw, std::max<size_t>(1, 16384 / c), [&](size_t p0, size_t p1) {
            mul_channelwise_wide(isa_, s.binary, p1 - p0, c, x + i * x_img + p0 * c * xs, b + i * c * bs,
                                 y + i * y_img + p0 * c * ys);
          });
        }
      } else {
        split(pool, y_all, 16384,
              [&](size_t e0, size_t e1) { mul_wide(isa_, s.binary, e1 - e0, x + e0 * xs, b + e0 * bs, y + e0 * ys); });
      }
      break;
    case PlanOpType::lut:
      split(pool, y_all, 16384,
            [&](size_t e0, size_t e1) { wide_lut_apply(s.unary, s.wide_lut.data(), e1 - e0, x + e0 * xs, y + e0 * ys); });
      break;
    case PlanOpType::max_pool:
      throw std::invalid_argument("max_pool on int16 tensors is not supported");
  }
}

void Model::run_step(const Step& s, int8_t* x, const int8_t* b, int8_t* y, size_t batch, ThreadPool* pool) const {
  if (s.wide) {
    run_wide_step(s, x, b, y, batch, pool);
    return;
  }
  const PlanTensor& X = tensors_[s.x];
  const PlanTensor& Y = tensors_[s.y];
  const size_t x_img = static_cast<size_t>(elements(X)), y_img = static_cast<size_t>(elements(Y));
  const size_t y_all = batch * y_img;

  switch (s.type) {
    case PlanOpType::conv:
    case PlanOpType::fully_connected: {
      const PackedConv& p = *s.packed;
      run_conv(
          s, X, Y, x, y, batch, pool,
          [&](const int8_t* xp, int8_t* yp, size_t m, int n0, int n1) { gemm_run_columns(p, s.stage, xp, yp, m, n0, n1); },
          [&](const int8_t* xp, int8_t* yp, int r0, int r1, void* scratch) { conv_run(p, s.stage, xp, yp, r0, r1, scratch); });
      break;
    }
    case PlanOpType::global_avg_pool:
      for (size_t i = 0; i < batch; ++i)
        global_avg_pool(isa_, s.gap, static_cast<size_t>(X.h) * X.w, static_cast<size_t>(X.c), x + i * x_img,
                        y + i * y_img);
      break;
    case PlanOpType::add:
      split(pool, y_all, 16384, [&](size_t e0, size_t e1) { add(isa_, s.addp, e1 - e0, x + e0, b + e0, y + e0); });
      break;
    case PlanOpType::mul:
      if (s.channelwise) {
        const size_t hw = static_cast<size_t>(X.h) * X.w, c = static_cast<size_t>(X.c);
        for (size_t i = 0; i < batch; ++i) {
          split(pool, hw, std::max<size_t>(1, 16384 / c), [&](size_t p0, size_t p1) {
            mul_channelwise(isa_, s.mulp, p1 - p0, c, x + i * x_img + p0 * c, b + i * c, y + i * y_img + p0 * c);
          });
        }
      } else {
        split(pool, y_all, 16384, [&](size_t e0, size_t e1) { mul(isa_, s.mulp, e1 - e0, x + e0, b + e0, y + e0); });
      }
      break;
    case PlanOpType::max_pool:
      for (size_t i = 0; i < batch; ++i) {
        split(pool, static_cast<size_t>(Y.h), 1, [&](size_t r0, size_t r1) {
          max_pool(s.shape, x + i * x_img, y + i * y_img, static_cast<int>(r0), static_cast<int>(r1));
        });
      }
      break;
    case PlanOpType::lut:
      split(pool, y_all, 16384, [&](size_t e0, size_t e1) { lut_apply(isa_, s.table, e1 - e0, x + e0, y + e0); });
      return;  // the table is the op
  }
  if (s.has_table) {
    // Activation after gap / add / mul: the op wrote the activation's input domain.
    split(pool, y_all, 16384, [&](size_t e0, size_t e1) { lut_apply(isa_, s.table, e1 - e0, y + e0, y + e0); });
  }
}

void Model::run_steps(size_t begin, size_t end, const std::function<int8_t*(int tensor)>& at, size_t batch,
                      ThreadPool* pool) const {
  Profile* prof = profile_.get();
  using Clock = std::chrono::steady_clock;
  for (size_t i = begin; i < end; ++i) {
    const Step& s = steps_[i];
    const Clock::time_point t0 = prof ? Clock::now() : Clock::time_point();
    try {
      run_step(s, at(s.x), s.b >= 0 ? at(s.b) : nullptr, at(s.y), batch, pool);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(op_where(s.index, s.type, s.name) + ": " + e.what());
    }
    if (prof) prof->add(Profile::kind_of(s.type, s.kind), t0);
  }
}

void Model::run_rows(const Step& s, const int8_t* x, const int8_t* b, int8_t* y, int r0, int r1) const {
  const PlanTensor& X = tensors_[s.x];
  const PlanTensor& Y = tensors_[s.y];
  const size_t x_row = static_cast<size_t>(X.w) * X.c, y_row = static_cast<size_t>(Y.w) * Y.c;
  const size_t n = static_cast<size_t>(r1 - r0) * y_row;  // elements of the rows (elementwise ops)
  const size_t xo = static_cast<size_t>(r0) * x_row, yo = static_cast<size_t>(r0) * y_row;
  switch (s.type) {
    case PlanOpType::conv:
      if (s.as_gemm) {
        gemm_run_columns(*s.packed, s.stage, x + xo, y + yo, static_cast<size_t>(r1 - r0) * Y.w, 0, s.gemm_n);
      } else {
        void* scratch = tls_scratch.get(conv_scratch_size(*s.packed, r0, r1));
        conv_run(*s.packed, s.stage, x, y, r0, r1, scratch);
      }
      return;  // a conv's table is in its output stage
    case PlanOpType::max_pool: max_pool(s.shape, x, y, r0, r1); break;
    case PlanOpType::lut: lut_apply(isa_, s.table, n, x + xo, y + yo); return;  // the table is the op
    case PlanOpType::add: add(isa_, s.addp, n, x + xo, b + yo, y + yo); break;
    case PlanOpType::mul:
      if (s.channelwise)
        mul_channelwise(isa_, s.mulp, static_cast<size_t>(r1 - r0) * Y.w, static_cast<size_t>(Y.c), x + xo, b, y + yo);
      else
        mul(isa_, s.mulp, n, x + xo, b + yo, y + yo);
      break;
    case PlanOpType::fully_connected:
    case PlanOpType::global_avg_pool:
      throw std::logic_error("run_rows: not a row-local step");
  }
  if (s.has_table) lut_apply(isa_, s.table, n, y + yo, y + yo);
}

namespace {
// A window of a tensor's rows in a fused group: rows [lo, hi) are held, row r at
// mem + (r - base) * row; rows from base on fit in `rows` rows.
struct Window {
  uint8_t* mem = nullptr;
  size_t row = 0;
  int rows = 0;
  int base = 0, lo = 0, hi = 0;
  // Row 0 of the tensor as the kernels address it (only rows [lo, hi) are read or written).
  int8_t* view() const {
    return reinterpret_cast<int8_t*>(reinterpret_cast<uintptr_t>(mem) - static_cast<uintptr_t>(base) * row);
  }
};
}  // namespace

void Model::run_group_rows(const FusedGroup& g, const std::function<int8_t*(int tensor)>& at, int r0, int r1,
                           uint8_t* windows) const {
  const size_t n = g.end - g.begin;
  Window w[16];
  std::vector<Window> big;
  Window* win = w;
  if (n - 1 > 16) {
    big.resize(n - 1);
    win = big.data();
  }
  for (size_t j = 0; j + 1 < n; ++j) {
    const PlanTensor& t = tensors_[steps_[g.begin + j].y];
    win[j].mem = windows + g.window_offset[j];
    win[j].row = static_cast<size_t>(t.w) * t.c;
    win[j].rows = g.window_rows[j];
  }
  RowRange need[64];
  std::vector<RowRange> need_big;
  RowRange* nd = need;
  if (n > 64) {
    need_big.resize(n);
    nd = need_big.data();
  }
  for (int b0 = r0; b0 < r1; b0 += g.band) {
    const int b1 = std::min(r1, b0 + g.band);
    // The rows each step must have made for this band, from the last step back.
    nd[n - 1] = {b0, b1};
    for (size_t j = n - 1; j > 0; --j) {
      const Step& s = steps_[g.begin + j];
      nd[j - 1] = input_rows(s, tensors_[g.chained[j] == 1 ? s.b : s.x], nd[j]);
    }
    for (size_t j = 0; j < n; ++j) {
      const Step& s = steps_[g.begin + j];
      // The step's inputs: the chained one from the previous step's window (the group's input from the
      // arena), the other one (a residual, an SE scale) from the arena.
      const int8_t* chained = j == 0 ? at(s.x) : win[j - 1].view();
      const int8_t* x = g.chained[j] == 1 ? at(s.x) : chained;
      const int8_t* b = s.b < 0 ? nullptr : g.chained[j] == 1 ? chained : at(s.b);
      if (j + 1 == n) {
        run_rows(s, x, b, at(s.y), b0, b1);
        break;
      }
      Window& o = win[j];
      const RowRange t = nd[j];
      if (t.lo >= o.hi) {
        o.base = o.lo = o.hi = t.lo;  // nothing held is needed any more
      } else if (t.lo > o.lo) {
        o.lo = t.lo;
      }
      if (t.hi <= o.hi) continue;
      if (t.hi - o.base > o.rows) {  // slide: move the rows still needed to the start
        std::memmove(o.mem, o.mem + static_cast<size_t>(o.lo - o.base) * o.row,
                     static_cast<size_t>(o.hi - o.lo) * o.row);
        o.base = o.lo;
      }
      run_rows(s, x, b, o.view(), o.hi, t.hi);
      o.hi = t.hi;
    }
  }
}

void Model::run_image_steps(const std::function<int8_t*(int tensor)>& at, ThreadPool* pool) const {
  Profile* prof = profile_.get();
  using Clock = std::chrono::steady_clock;
  for (size_t i = 0; i < tail_begin_;) {
    if (group_at_[i] < 0) {
      run_steps(i, i + 1, at, 1, pool);
      ++i;
      continue;
    }
    const FusedGroup& g = groups_[static_cast<size_t>(group_at_[i])];
    const Clock::time_point t0 = prof ? Clock::now() : Clock::time_point();
    const int out_h = tensors_[steps_[g.end - 1].y].h;
    // Rows split over the threads: each part recomputes the few input rows it shares with the next.
    const size_t parts = pool ? task_count(static_cast<size_t>(out_h), std::max<size_t>(1, kMinTaskMacs * out_h / std::max<size_t>(1, g.macs)),
                                           pool->threads())
                              : 1;
    auto part = [&](size_t p) {
      const int r0 = static_cast<int>(out_h * p / parts), r1 = static_cast<int>(out_h * (p + 1) / parts);
      if (r0 < r1) run_group_rows(g, at, r0, r1, static_cast<uint8_t*>(tls_windows.get(g.window_bytes)));
    };
    try {
      if (parts <= 1) part(0);
      else pool->parallel_for(parts, part);
    } catch (const std::invalid_argument& e) {
      const Step& s = steps_[g.begin];
      throw std::runtime_error(op_where(s.index, s.type, s.name) + " (fused group): " + e.what());
    }
    if (prof) prof->add(Profile::kFused, t0);
    i = g.end;
  }
}

void Model::execute(const float* f32_input, const int8_t* i8_input, int batch,
                    const std::vector<int8_t*>& outputs) const {
  if (batch < 1) throw std::invalid_argument("batch must be >= 1, got " + std::to_string(batch));
  if (outputs.size() != outputs_.size())
    throw std::invalid_argument("expected " + std::to_string(outputs_.size()) + " output buffers, got " +
                                std::to_string(outputs.size()));
  const size_t B = static_cast<size_t>(batch);
  // Regions: one per thread that runs whole images (see "execution" above).
  const size_t stride = static_cast<size_t>(memory_.bytes);  // a multiple of 64
  const size_t regions = B >= static_cast<size_t>(pool_.threads()) ? static_cast<size_t>(pool_.threads()) : 1;
  // The input is read where it is: the caller's int8 images, or (float input) each region's quantized copy.
  const size_t in_img = input_elements();
  const size_t in_slot = f32_input ? (in_img + 63) / 64 * 64 : 0;
  const size_t need = (stride + in_slot) * regions + (static_cast<size_t>(tail_bytes_) * B + 63) / 64 * 64;

  ThreadPool::ComputeSlot slot(pool_);
  Profile* prof = profile_.get();
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0 = prof ? Clock::now() : Clock::time_point();
  std::unique_ptr<Buffer> arena;
  {
    std::lock_guard<std::mutex> lk(arenas_mu_);
    for (auto it = free_arenas_.begin(); it != free_arenas_.end(); ++it) {
      if ((*it)->size() >= need) {
        arena = std::move(*it);
        free_arenas_.erase(it);
        break;
      }
    }
    if (!arena && !free_arenas_.empty()) free_arenas_.pop_back();  // too small: replace it
  }
  if (!arena) {
    try {
      arena.reset(new Buffer(need));
    } catch (const std::bad_alloc&) {
      throw std::runtime_error("out of memory allocating the " + std::to_string(need) +
                               "-byte activation arena for batch " + std::to_string(batch));
    }
  }
  uint8_t* mem = arena->data();
  if (prof) prof->add(Profile::kOutputs, t0);

  uint8_t* tail = mem + (stride + in_slot) * regions;
  auto tail_at = [&](int id) {
    return reinterpret_cast<int8_t*>(tail + static_cast<size_t>(tail_offset_[id]) * B);
  };

  // One image, from its input to the tail, in one region of the arena (region r also has input slot r).
  auto one_image = [&](size_t i, size_t r, ThreadPool* pool) {
    uint8_t* region = mem + r * stride;
    Clock::time_point t = prof ? Clock::now() : Clock::time_point();
    const int8_t* input = nullptr;  // (no arithmetic on the null pointer of the other form)
    if (f32_input) {
      int8_t* slot = reinterpret_cast<int8_t*>(mem + regions * stride + r * in_slot);
      quantize_image(f32_input + i * in_img, slot);
      input = slot;
    } else {
      input = i8_input + i * in_img;
    }
    if (prof) prof->add(Profile::kInput, t);
    // The input is only ever read (no op writes the plan's input tensor).
    auto at = [&](int id) {
      return id == input_ ? const_cast<int8_t*>(input) : reinterpret_cast<int8_t*>(region + memory_.offsets[id]);
    };
    run_image_steps(at, pool);
    if (prof) t = Clock::now();
    for (int id : tail_inputs_) {
      const size_t n = static_cast<size_t>(bytes(tensors_[id]));
      std::memcpy(tail_at(id) + i * n, at(id), n);
    }
    for (size_t o = 0; o < outputs_.size(); ++o) {
      if (tail_offset_[outputs_[o]] >= 0) continue;  // copied from the tail below
      const PlanTensor& y = tensors_[outputs_[o]];
      const size_t n = static_cast<size_t>(elements(y));
      std::memcpy(outputs[o] + i * n, at(outputs_[o]), n);
    }
    if (prof) prof->add(Profile::kOutputs, t);
  };

  const size_t T = static_cast<size_t>(pool_.threads());
  ThreadPool* pool = T > 1 ? &pool_ : nullptr;
  if (T == 1) {
    for (size_t i = 0; i < B; ++i) one_image(i, 0, nullptr);
  } else {
    // Whole images per thread (region t for task t) while at least T are left, then step-split.
    const size_t image_parallel = B / T * T;
    if (image_parallel > 0) {
      std::atomic<size_t> next{0};
      pool_.parallel_for(T, [&](size_t t) {
        for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < image_parallel;)
          one_image(i, t, nullptr);
      });
    }
    for (size_t i = image_parallel; i < B; ++i) one_image(i, 0, pool);
  }

  // The tail, once for the whole batch.
  run_steps(tail_begin_, steps_.size(), tail_at, B, pool);
  for (size_t o = 0; o < outputs_.size(); ++o) {
    if (tail_offset_[outputs_[o]] < 0) continue;
    const PlanTensor& y = tensors_[outputs_[o]];
    std::memcpy(outputs[o], tail_at(outputs_[o]), static_cast<size_t>(elements(y)) * B);
  }

  {
    std::lock_guard<std::mutex> lk(arenas_mu_);
    if (free_arenas_.size() < static_cast<size_t>(pool_.threads())) free_arenas_.push_back(std::move(arena));
  }
  if (prof) {
    prof->runs.fetch_add(1, std::memory_order_relaxed);
    prof->images.fetch_add(static_cast<int64_t>(B), std::memory_order_relaxed);
  }
}

void Model::quantize_image(const float* x, int8_t* y) const {
  const PlanTensor& in = tensors_[input_];
  if (input_layout_ == InputLayout::nhwc) {
    // Already in the int8 tensor's order: a flat quantize (one channel, one row of h * w * c).
    quantize_nchw_to_nhwc(isa_, x, 1, 1, input_elements(), in.scale, in.zero_point, y);
  } else {
    quantize_nchw_to_nhwc(isa_, x, static_cast<size_t>(in.c), static_cast<size_t>(in.h), static_cast<size_t>(in.w),
                          in.scale, in.zero_point, y);
  }
}

void Model::quantize_input(const float* input, int batch, int8_t* nhwc_output) const {
  if (!input || !nhwc_output) throw std::invalid_argument("input is null");
  if (batch < 1) throw std::invalid_argument("batch must be >= 1, got " + std::to_string(batch));
  const size_t in_img = input_elements();
  for (size_t i = 0; i < static_cast<size_t>(batch); ++i) quantize_image(input + i * in_img, nhwc_output + i * in_img);
}

void Model::run(const float* input, int batch, const std::vector<int8_t*>& outputs) const {
  if (!input) throw std::invalid_argument("input is null");
  execute(input, nullptr, batch, outputs);
}

void Model::run_int8(const int8_t* nhwc_input, int batch, const std::vector<int8_t*>& outputs) const {
  if (!nhwc_input) throw std::invalid_argument("input is null");
  execute(nullptr, nhwc_input, batch, outputs);
}

namespace {
std::vector<std::vector<int8_t>> alloc_outputs(const Model& m, int batch, std::vector<int8_t*>* ptrs) {
  std::vector<std::vector<int8_t>> out(m.num_outputs());
  if (batch < 1) return out;  // execute() reports the bad batch
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].resize(m.output_elements(i) * static_cast<size_t>(batch));
    ptrs->push_back(out[i].data());
  }
  return out;
}
}  // namespace

std::vector<std::vector<int8_t>> Model::run(const float* input, int batch) const {
  std::vector<int8_t*> ptrs;
  auto out = alloc_outputs(*this, batch, &ptrs);
  run(input, batch, ptrs);
  return out;
}

std::vector<std::vector<int8_t>> Model::run_int8(const int8_t* nhwc_input, int batch) const {
  std::vector<int8_t*> ptrs;
  auto out = alloc_outputs(*this, batch, &ptrs);
  run_int8(nhwc_input, batch, ptrs);
  return out;
}

}  // namespace mnq
