// Parallel loops for the CPU kernels on a small process-wide thread pool.
//
// Not OpenMP: its spinning idle threads fight OpenBLAS's and other processes' threads on small
// machines (measured 10x slower decode on a busy 2-core box); these workers sleep on a
// condition variable. Pool size: GLM4V_CPU_THREADS, else the hardware thread count.
#pragma once

#include <cstdint>
#include <functional>

namespace glm4v {
namespace cpu {

// Calls fn(i) for every i in [0, n) once, spread over the pool; returns when all are done.
// Runs inline when the work is small (n * cost_per_item below ~64k flops), when called from a
// pool worker (nested loops), or when another thread is already using the pool.
void ParallelFor(int64_t n, int64_t cost_per_item, const std::function<void(int64_t)>& fn);

// Threads the pool uses (including the calling thread).
int NumThreads();

}  // namespace cpu
}  // namespace glm4v
