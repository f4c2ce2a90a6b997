#include "kernels/cpu/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace glm4v {
namespace cpu {
namespace {

constexpr int64_t kMinParallelCost = int64_t{1} << 16;
thread_local bool in_pool_worker = false;

class ThreadPool {
 public:
  explicit ThreadPool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  }
  // Workers live for the whole process (the pool is never destroyed).

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // False if the pool is busy with another caller's loop.
  bool TryRun(int64_t n, const std::function<void(int64_t)>& fn) {
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      n_ = n;
      next_.store(0);
      active_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    Drain();
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return active_ == 0; });
    fn_ = nullptr;
    return true;
  }

 private:
  void Drain() {
    for (int64_t i = next_.fetch_add(1); i < n_; i = next_.fetch_add(1)) (*fn_)(i);
  }

  void WorkerLoop() {
    in_pool_worker = true;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
      }
      Drain();
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one loop at a time
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  int active_ = 0;
  uint64_t generation_ = 0;
};

ThreadPool& Pool() {
  static ThreadPool* pool = [] {
    int threads = static_cast<int>(std::thread::hardware_concurrency());
    if (const char* env = std::getenv("GLM4V_CPU_THREADS")) threads = std::atoi(env);
    return new ThreadPool(std::max(1, threads));
  }();
  return *pool;
}

}  // namespace

int NumThreads() { return Pool().size(); }

void ParallelFor(int64_t n, int64_t cost_per_item, const std::function<void(int64_t)>& fn) {
  const bool small = n <= 1 || n * cost_per_item < kMinParallelCost;
  if (small || in_pool_worker || NumThreads() == 1 || !Pool().TryRun(n, fn)) {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
}

}  // namespace cpu
}  // namespace glm4v
