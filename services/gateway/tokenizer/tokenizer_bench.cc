// Single-thread encode throughput on a few MB of deterministic mixed text.
//
//   bazel run -c opt //services/gateway/tokenizer:tokenizer_bench -- --mb=4 --iters=5
//
// Reports the best of --iters runs for: pre-tokenization alone, EncodeOrdinary, Encode (one thread).
#include <chrono>
#include <ctime>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "services/gateway/tokenizer/pretokenizer.h"
#include "services/gateway/tokenizer/test_text.h"
#include "services/gateway/tokenizer/tokenizer.h"

ABSL_FLAG(std::string, ranks, "tests/data/tokenizer/cl100k_base.tiktoken",
          "ranks file (tiktoken / GLM-4 tokenizer.model format)");
ABSL_FLAG(double, mb, 4.0, "size of the generated text in MB (1e6 bytes)");
ABSL_FLAG(int, iters, 5, "timed repetitions; the best is reported");
ABSL_FLAG(uint64_t, seed, 42, "text generator seed");

namespace glm4v::tokenizer {
namespace {

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Best wall time and best thread CPU time over `iters` runs. CPU time is the fairer number on a
// shared machine (it excludes time the thread was descheduled); both are printed.
struct Timing {
  double wall = 1e30;
  double cpu = 1e30;
};

template <typename F>
Timing Best(int iters, F&& f) {
  Timing best;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = ThreadCpuSeconds();
    f();
    const double cpu = ThreadCpuSeconds() - c0;
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (wall < best.wall) best.wall = wall;
    if (cpu < best.cpu) best.cpu = cpu;
  }
  return best;
}

int Main() {
  const auto t0 = std::chrono::steady_clock::now();
  auto tok = Tokenizer::LoadFromFiles(absl::GetFlag(FLAGS_ranks));
  if (!tok.ok()) {
    std::fprintf(stderr, "load failed: %s\n", tok.status().ToString().c_str());
    return 1;
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string text = testing::MixedText(
      static_cast<size_t>(absl::GetFlag(FLAGS_mb) * 1e6), absl::GetFlag(FLAGS_seed));
  const double mb = text.size() / 1e6;
  const int iters = absl::GetFlag(FLAGS_iters);
  std::printf("ranks: %zu (+%zu specials), load %.3f s\n", (*tok)->num_ranks(),
              (*tok)->special_tokens().size(), load_s);
  std::printf("text: %.2f MB mixed (prose, code, numbers, CJK, emoji), best of %d\n", mb, iters);

  auto pre = Pretokenizer::Create();
  if (!pre.ok()) return 1;
  size_t pieces = 0;
  const Timing pre_t = Best(iters, [&] {
    pieces = 0;
    (void)(*pre)->Split(text, [&](absl::string_view) { ++pieces; });
  });
  std::vector<TokenId> ids;
  const Timing ord_t = Best(iters, [&] {
    ids.clear();
    if (!(*tok)->EncodeOrdinaryTo(text, &ids).ok()) std::abort();
  });
  const size_t n_ids = ids.size();
  const Timing enc_t = Best(iters, [&] {
    if (!(*tok)->Encode(text).ok()) std::abort();
  });
  std::printf("                    MB/s wall   MB/s cpu\n");
  std::printf("pretokenize only : %9.2f  %9.2f   (%zu pieces)\n", mb / pre_t.wall, mb / pre_t.cpu,
              pieces);
  std::printf("encode_ordinary  : %9.2f  %9.2f   (%zu tokens, %.2f Mtok/s cpu)\n",
              mb / ord_t.wall, mb / ord_t.cpu, n_ids, n_ids / ord_t.cpu / 1e6);
  std::printf("encode (specials): %9.2f  %9.2f\n", mb / enc_t.wall, mb / enc_t.cpu);
  return 0;
}

}  // namespace
}  // namespace glm4v::tokenizer

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return glm4v::tokenizer::Main();
}
