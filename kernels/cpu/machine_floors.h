// The machine's own floors, measured for benchmarks to report their figures against in the same
// run (the development VM's bandwidth moves by 30 % from run to run).
#pragma once

namespace glm4v {
namespace cpu {

// Bytes/s read by every thread of the CPU pool over a 512 MiB buffer (far past the caches),
// best of 5.
double MeasureReadBandwidth();

// FLOP/s of OpenBLAS sgemm at 4096 x 4096 x 4096 (all its threads), best of 2.
double MeasureSgemmRate();

// FLOP/s of oneDNN's bf16 matmul (bf16 inputs, f32 sums) at 4096 x 4096 x 4096, best of 2: the
// best GEMM rate a library reaches on this machine. 0 when oneDNN has no JIT kernel here.
double MeasureBf16GemmRate();

}  // namespace cpu
}  // namespace glm4v
