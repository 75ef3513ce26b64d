// A persistent thread pool shared by every run() of one Model.
//
// `threads` = N bounds the number of threads that compute at once, across all
// concurrent callers: a caller holds one of N compute slots for the whole of
// its run (ComputeSlot), the N-1 workers each take a free slot while they help
// with a parallel_for, and callers waiting for a slot go before idle workers.
// So one run on an idle pool uses N threads, and N concurrent runs use one
// thread each (with no cross-run synchronisation per op).
//
// parallel_for(count, fn) runs fn(0) .. fn(count-1) on the calling thread and
// on any workers that can help, and returns when all have finished. The first
// exception thrown by a task is rethrown in the caller (the remaining tasks
// still run or are skipped; none is left running).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace mnq {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads >= 1; starts threads - 1 workers
  ~ThreadPool();                     // joins the workers (no run may be in progress)
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  // Holds one compute slot for its lifetime (blocks until one is free).
  class ComputeSlot {
   public:
    explicit ComputeSlot(ThreadPool& pool);
    ~ComputeSlot();
    ComputeSlot(const ComputeSlot&) = delete;
    ComputeSlot& operator=(const ComputeSlot&) = delete;
   private:
    ThreadPool& pool_;
  };

  // Must be called by a thread holding a ComputeSlot of this pool.
  void parallel_for(size_t count, const std::function<void(size_t)>& fn);

 private:
  struct Job;
  void worker_loop();
  static void work_on(Job& job);

  const int threads_;
  std::mutex mu_;
  std::condition_variable cv_;  // slots freed, jobs posted, stop
  std::deque<std::shared_ptr<Job>> jobs_;
  // Bumped (under mu_) whenever a job is posted: idle workers spin on it for a
  // few microseconds before sleeping on cv_, since a run posts one job per op
  // back to back and a futex wake-up costs more than the gap between ops.
  std::atomic<uint64_t> posted_{0};
  int free_slots_;
  int callers_waiting_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace mnq
