#include "thread_pool.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <stdexcept>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MNQ_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define MNQ_CPU_RELAX() asm volatile("yield" ::: "memory")
#else
#define MNQ_CPU_RELAX() ((void)0)
#endif

namespace mnq {

namespace {
// How long a thread spins for an event that is usually microseconds away
// (the next op's job, the last task of this op) before it sleeps. Waking a
// sleeping worker costs tens of microseconds on a VM, more than many ops take:
// at batch 1 on 2 threads, 500 us instead of 50 made MobileNetV2 10-15% faster
// (interleaved A/B runs, docs/performance.md). ORT's intra-op threads spin too.
constexpr std::chrono::microseconds kSpin{500};

template <typename Pred>
bool spin_until(Pred&& ready) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (ready()) return true;
    MNQ_CPU_RELAX();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return false;
  }
}
}  // namespace

struct ThreadPool::Job {
  const std::function<void(size_t)>* fn = nullptr;  // lives on the caller's stack
  size_t count = 0;
  std::atomic<size_t> next{0};      // next task index to claim
  std::atomic<size_t> finished{0};  // tasks done (run or skipped after a failure)
  std::atomic<bool> failed{false};
  std::exception_ptr error;         // first failure, written once under mu
  std::mutex mu;
  std::condition_variable done;
};

ThreadPool::ThreadPool(int threads) : threads_(threads), free_slots_(threads) {
  if (threads < 1) throw std::invalid_argument("ThreadPool: threads must be >= 1");
  workers_.reserve(static_cast<size_t>(threads - 1));
  try {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
  } catch (...) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    throw;
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

ThreadPool::ComputeSlot::ComputeSlot(ThreadPool& pool) : pool_(pool) {
  std::unique_lock<std::mutex> lk(pool_.mu_);
  ++pool_.callers_waiting_;
  pool_.cv_.wait(lk, [&] { return pool_.free_slots_ > 0; });
  --pool_.callers_waiting_;
  --pool_.free_slots_;
  lk.unlock();
  pool_.cv_.notify_all();  // workers may proceed now that no caller waits
}

ThreadPool::ComputeSlot::~ComputeSlot() {
  {
    std::lock_guard<std::mutex> lk(pool_.mu_);
    ++pool_.free_slots_;
  }
  pool_.cv_.notify_all();
}

void ThreadPool::work_on(Job& job) {
  for (;;) {
    size_t i = job.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.count) return;
    if (!job.failed.load(std::memory_order_relaxed)) {
      try {
        (*job.fn)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lk(job.mu);
        if (!job.failed.exchange(true)) job.error = std::current_exception();
      }
    }
    if (job.finished.fetch_add(1, std::memory_order_acq_rel) + 1 == job.count) {
      std::lock_guard<std::mutex> lk(job.mu);
      job.done.notify_all();
    }
  }
}

void ThreadPool::parallel_for(size_t count, const std::function<void(size_t)>& fn) {
  if (count == 0) return;
  if (count == 1 || workers_.empty()) {
    for (size_t i = 0; i < count; ++i) fn(i);
    return;
  }
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->count = count;
  {
    std::lock_guard<std::mutex> lk(mu_);
    jobs_.push_back(job);
    posted_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  work_on(*job);
  {
    // Every task is claimed: take the job off the queue if no worker did.
    std::lock_guard<std::mutex> lk(mu_);
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
      if (*it == job) {
        jobs_.erase(it);
        break;
      }
    }
  }
  // The tasks still running elsewhere are usually about to finish: spin first.
  if (!spin_until([&] { return job->finished.load(std::memory_order_acquire) == count; })) {
    std::unique_lock<std::mutex> lk(job->mu);
    job->done.wait(lk, [&] { return job->finished.load(std::memory_order_acquire) == count; });
  }
  if (job->error) std::rethrow_exception(job->error);
}

void ThreadPool::worker_loop() {
  std::unique_lock<std::mutex> lk(mu_);
  uint64_t seen = posted_.load(std::memory_order_relaxed);
  for (;;) {
    auto runnable = [&] { return stop_ || (!jobs_.empty() && free_slots_ > 0 && callers_waiting_ == 0); };
    if (!runnable()) {
      // Idle: spin briefly for the next job before sleeping.
      lk.unlock();
      spin_until([&] { return posted_.load(std::memory_order_acquire) != seen; });
      lk.lock();
      cv_.wait(lk, runnable);
    }
    seen = posted_.load(std::memory_order_relaxed);
    if (stop_) return;
    std::shared_ptr<Job> job = jobs_.front();
    if (job->next.load(std::memory_order_relaxed) >= job->count) {
      jobs_.pop_front();  // exhausted; its caller waits for the running tasks
      continue;
    }
    --free_slots_;
    lk.unlock();
    work_on(*job);
    lk.lock();
    ++free_slots_;
    if (!jobs_.empty() && jobs_.front() == job) jobs_.pop_front();
    cv_.notify_all();  // a slot is free again
  }
}

}  // namespace mnq
