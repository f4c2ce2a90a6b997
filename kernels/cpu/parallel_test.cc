// The CPU thread pool (parallel.h). The CPU ops themselves are tested with every other backend
// by //kernels:ops_test.
#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace {

// Runs every index exactly once, also for nested and concurrent loops.
TEST(CpuParallelForTest, EveryIndexOnceNestedAndConcurrent) {
  auto run = [](int64_t n) {
    std::vector<std::atomic<int>> hits(n);
    cpu::ParallelFor(n, 1 << 20, [&](int64_t i) {
      cpu::ParallelFor(3, 1 << 20, [&](int64_t) { hits[i].fetch_add(1); });
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 3);
  };
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) callers.emplace_back([&] { for (int r = 0; r < 20; ++r) run(37); });
  for (auto& c : callers) c.join();
  EXPECT_GE(cpu::NumThreads(), 1);
}

}  // namespace
}  // namespace glm4v
