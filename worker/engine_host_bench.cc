// The engine's host cost per step at GLM-4's real vocabulary (151,552), next to the machine's
// memory-read floor measured in the same run:
//
//   bazel run -c opt //worker:engine_host_bench
//   bazel run -c opt //worker:engine_host_bench -- --batches=1,64,256 --steps=32
//
// 1. Read bandwidth: every thread of the CPU pool reading a 512 MiB buffer (best of 5).
// 2. One sequence's sampling per parameter mix on "peaked" rows (normal sigma 2 plus 32 spiked
//    tokens, like a language model's output) and "flat" ones (normal sigma 3), median and p90
//    of --sampler_iters calls; the first sampler (worker/testing/reference_sampler.h) beside it.
// 3. The engine over a null model runner (worker/testing/null_model_runner.h: logits rows
//    copied from a pool, no math), per decode step: scheduling + block allocation, sampling
//    (rows in parallel on the CPU pool), streaming; "host" is their sum, "host w/o sampling"
//    what remains when the device samples.
// 4. Step overlap (--device_ms): the null runner sleeps as a GPU step would and samples "on the
//    device"; wall time per step with serial and overlapped steps.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "kernels/cpu/machine_floors.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/simd_level.h"
#include "worker/engine.h"
#include "worker/sampler.h"
#include "worker/testing/null_model_runner.h"
#include "worker/testing/reference_sampler.h"
#include "worker/testing/synthetic_logits.h"

ABSL_FLAG(int, vocab, 151552, "vocabulary (GLM-4: 151,552)");
ABSL_FLAG(std::string, batches, "1,64,256", "engine batch sizes");
ABSL_FLAG(int, steps, 32, "decode steps per engine run");
ABSL_FLAG(int, sampler_iters, 300, "calls per sampler timing");
ABSL_FLAG(bool, reference, true, "also time the first (reference) sampler");
ABSL_FLAG(bool, engine, true, "run the engine part");
ABSL_FLAG(std::string, mix, "", "only the sampler mixes whose name contains this");
ABSL_FLAG(double, device_ms, 5.0,
          "simulated device time per step for the step-overlap table (0 = skip the table)");

namespace glm4v::worker {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Mix {
  const char* name;
  float temperature;
  float top_p;
  int top_k;
  float repetition_penalty;
  int top_logprobs;
};

// The mixes: greedy, GLM-4's defaults (t 0.8, top_p 0.8), top_k 50, and the heavy one.
const Mix kMixes[] = {
    {"greedy", 0.0f, 1.0f, 0, 1.0f, 0},
    {"t0.8 top_p0.8", 0.8f, 0.8f, 0, 1.0f, 0},
    {"t0.7 top_p0.9", 0.7f, 0.9f, 0, 1.0f, 0},
    {"t0.7 top_k50", 0.7f, 1.0f, 50, 1.0f, 0},
    {"t0.8 top_p0.9 rep1.1 5lp", 0.8f, 0.9f, 0, 1.1f, 5},
};

SamplingParams ParamsOf(const Mix& mix) {
  SamplingParams p;
  p.temperature = mix.temperature;
  p.top_p = mix.top_p;
  p.top_k = mix.top_k;
  p.repetition_penalty = mix.repetition_penalty;
  p.top_logprobs = mix.top_logprobs;
  return p;
}

struct Percentiles {
  double median_us = 0, p90_us = 0;
};

Percentiles Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 9 / 10]};
}

// Each call samples a different scratch row of a set larger than the last-level cache, so the
// row comes from memory as it does after a model step.
template <typename SampleFn>
Percentiles TimeSampler(const std::vector<std::vector<float>>& rows, int iters, SampleFn sample) {
  const size_t vocab = rows[0].size();
  const int num_scratch = static_cast<int>(std::max<size_t>(2, (size_t{96} << 20) / (vocab * 4)));
  std::vector<std::vector<float>> scratch(num_scratch);
  for (int s = 0; s < num_scratch; ++s) scratch[s] = rows[s % rows.size()];
  std::vector<double> us;
  for (int i = 0; i < iters; ++i) {
    std::vector<float>& row = scratch[i % num_scratch];
    const auto start = Clock::now();
    sample(row, static_cast<uint64_t>(i));
    us.push_back(Seconds(start, Clock::now()) * 1e6);
    row = rows[i % rows.size()];  // restore the edited row (not timed)
  }
  return Summarize(us);
}

void BenchSampler(int vocab, double bandwidth) {
  const int iters = absl::GetFlag(FLAGS_sampler_iters);
  std::printf("\n## One sequence's sampling, vocab %d (row read once at the measured bandwidth: "
              "%.1f us)\n\n", vocab, vocab * 4.0 / bandwidth * 1e6);
  std::printf("| mix | peaked median | peaked p90 | flat median | flat p90 | reference peaked | "
              "reference flat |\n|---|---|---|---|---|---|---|\n");
  absl::flat_hash_set<int32_t> seen;
  for (int i = 0; i < 600; ++i) seen.insert((i * 7919) % vocab);
  std::vector<std::vector<float>> peaked, flat;
  for (int i = 0; i < 8; ++i) {
    peaked.push_back(testing::SyntheticLogits(vocab, true, 10 + i));
    flat.push_back(testing::SyntheticLogits(vocab, false, 20 + i));
  }
  for (const Mix& mix : kMixes) {
    if (std::string(mix.name).find(absl::GetFlag(FLAGS_mix)) == std::string::npos) continue;
    const SamplingParams params = ParamsOf(mix);
    Sampler sampler;
    auto fast = [&](std::vector<float>& row, uint64_t step) {
      sampler.SampleInPlace(absl::MakeSpan(row), params, seen, {}, 7, step);
    };
    const Percentiles p = TimeSampler(peaked, iters, fast);
    const Percentiles f = TimeSampler(flat, iters, fast);
    std::string ref_p = "-", ref_f = "-";
    if (absl::GetFlag(FLAGS_reference)) {
      testing::ReferenceSampler reference;
      auto slow = [&](std::vector<float>& row, uint64_t step) {
        reference.Sample(row, params, seen, {}, 7, step);
      };
      ref_p = absl::StrFormat("%.0f us", TimeSampler(peaked, std::max(10, iters / 10), slow).median_us);
      ref_f = absl::StrFormat("%.0f us", TimeSampler(flat, std::max(10, iters / 10), slow).median_us);
    }
    std::printf("| %s | %.1f us | %.1f us | %.1f us | %.1f us | %s | %s |\n", mix.name,
                p.median_us, p.p90_us, f.median_us, f.p90_us, ref_p.c_str(), ref_f.c_str());
  }
}

struct EngineFigures {
  double steps = 0;
  double schedule_us = 0, sample_us = 0, stream_us = 0, model_us = 0;
  double wall_us = 0;    // per step, from the first Submit to the last completion
  double device_us = 0;  // per step, simulated device time actually slept
};

// How the null runner stands in for the device (see NullModelRunner::SimulateDevice).
struct DeviceModel {
  double device_ms = 0;
  bool sample_on_device = false;
  bool overlap_steps = true;
};

// One engine run: `batch` requests of a 16-token prompt and `steps` + 1 outputs each, all at
// once; per-step figures over every step (the first one prefills the 16-token prompts, which
// the null runner makes as cheap as a decode step).
EngineFigures RunEngine(int vocab, int batch, int steps, int mix_index,
                        const DeviceModel& device = {}) {
  ModelConfig config;
  config.padded_vocab_size = vocab;
  std::vector<std::vector<float>> pool;
  for (int i = 0; i < 16; ++i) pool.push_back(testing::SyntheticLogits(vocab, true, 100 + i));
  auto runner = std::make_unique<testing::NullModelRunner>(config, std::move(pool));
  runner->SimulateDevice(absl::Milliseconds(device.device_ms), device.sample_on_device);
  const testing::NullModelRunner* null_runner = runner.get();
  constexpr int kPrompt = 16;
  EngineConfig engine_config;
  engine_config.block_size = 16;
  engine_config.num_kv_blocks = batch * ((kPrompt + steps) / 16 + 2) + 16;
  engine_config.max_num_seqs = batch;
  engine_config.max_num_batched_tokens = std::max(2048, batch * kPrompt);
  engine_config.overlap_steps = device.overlap_steps;
  auto engine = Engine::Create(engine_config, std::move(runner));
  if (!engine.ok()) {
    std::fprintf(stderr, "engine: %s\n", engine.status().ToString().c_str());
    std::exit(1);
  }
  std::mt19937 rng(batch);
  std::vector<std::shared_ptr<RequestStream>> streams;
  const auto start = Clock::now();
  for (int i = 0; i < batch; ++i) {
    EngineRequest request;
    request.request_id = absl::StrCat("r", i);
    for (int t = 0; t < kPrompt; ++t) request.prompt_token_ids.push_back(rng() % 150000);
    // -1: the requests cycle through every mix.
    const Mix& mix = kMixes[mix_index >= 0 ? mix_index : i % std::size(kMixes)];
    request.sampling = ParamsOf(mix);
    request.sampling.max_tokens = steps + 1;
    request.sampling.stop_token_ids.clear();
    request.sampling.seed = i;
    auto stream = (*engine)->Submit(std::move(request));
    if (!stream.ok()) {
      std::fprintf(stderr, "submit: %s\n", stream.status().ToString().c_str());
      std::exit(1);
    }
    streams.push_back(*stream);
  }
  // Every request ends on the same step: the last final event marks the end of the run.
  for (auto& stream : streams) {
    while (true) {
      absl::StatusOr<TokenEvent> event = stream->Next(absl::Seconds(60));
      if (!event.ok() || event->finish_reason != FinishReason::kNone) break;
    }
  }
  const auto end = Clock::now();
  (*engine)->Shutdown();  // the loop publishes its final figures before it exits
  const EngineStats last = (*engine)->Stats();
  EngineFigures f;
  f.steps = static_cast<double>(last.steps);
  const double per = f.steps > 0 ? 1e3 / f.steps : 0;
  f.schedule_us = last.schedule_ms_total * per;
  f.sample_us = last.sample_ms_total * per;
  f.stream_us = last.stream_ms_total * per;
  f.model_us = last.model_ms_total * per;
  f.wall_us = f.steps > 0 ? Seconds(start, end) * 1e6 / f.steps : 0;
  f.device_us = f.steps > 0 ? null_runner->simulated_device_seconds() * 1e6 / f.steps : 0;
  return f;
}

void BenchEngine(int vocab, double bandwidth) {
  std::vector<int> batches;
  for (absl::string_view b : absl::StrSplit(absl::GetFlag(FLAGS_batches), ',')) {
    int v;
    if (absl::SimpleAtoi(b, &v) && v > 0) batches.push_back(v);
  }
  const int steps = absl::GetFlag(FLAGS_steps);
  std::printf("\n## Engine host cost per decode step, null model runner, vocab %d, %d threads\n\n",
              vocab, cpu::NumThreads());
  std::printf("| batch | mix | logits read floor | host | host / floor | scheduling | "
              "sampling | streaming | host w/o sampling | null model (logits copy) |\n"
              "|---|---|---|---|---|---|---|---|---|---|\n");
  for (int batch : batches) {
    const double floor_us = batch * vocab * 4.0 / bandwidth * 1e6;
    for (int m = -1; m < static_cast<int>(std::size(kMixes)); ++m) {
      if (m == 2) continue;  // t0.7 top_p0.9 is in the sampler table; the 4 mixes here
      const EngineFigures f = RunEngine(vocab, batch, steps, m);
      const double host = f.schedule_us + f.sample_us + f.stream_us;
      std::printf("| %d | %s | %.0f us | %.0f us | %.2fx | %.0f us | %.0f us | %.0f us | %.0f us "
                  "| %.0f us |\n",
                  batch, m < 0 ? "all four, mixed" : kMixes[m].name, floor_us, host,
                  host / floor_us, f.schedule_us, f.sample_us, f.stream_us,
                  f.schedule_us + f.stream_us, f.model_us);
      std::fflush(stdout);
    }
  }
}

// Step overlap: the null runner sleeps device_ms per step (a GPU step costing the host no CPU)
// and samples "on the device" (only ids come back). Serial steps cost device + host; overlapped,
// the host's scheduling and streaming hide behind the device step.
void BenchOverlap(int vocab) {
  const double device_ms = absl::GetFlag(FLAGS_device_ms);
  if (device_ms <= 0) return;
  std::vector<int> batches;
  for (absl::string_view b : absl::StrSplit(absl::GetFlag(FLAGS_batches), ',')) {
    int v;
    if (absl::SimpleAtoi(b, &v) && v > 0) batches.push_back(v);
  }
  const int steps = absl::GetFlag(FLAGS_steps);
  std::printf("\n## Step overlap: simulated %.1f ms device step, sampling on the device (ids "
              "only), mixed sampling settings, vocab %d\n\n", device_ms, vocab);
  std::printf("| batch | serial: ms/step | serial: host exposed | overlapped: ms/step | "
              "overlapped: host exposed | host work per step (scheduling + streaming) |\n"
              "|---|---|---|---|---|---|\n");
  for (int batch : batches) {
    const EngineFigures serial =
        RunEngine(vocab, batch, steps, -1, {device_ms, /*sample_on_device=*/true, false});
    const EngineFigures overlapped =
        RunEngine(vocab, batch, steps, -1, {device_ms, /*sample_on_device=*/true, true});
    // Exposed host time: the step's wall time less the device time actually slept.
    std::printf("| %d | %.3f ms | %.0f us | %.3f ms | %.0f us | %.0f us |\n", batch,
                serial.wall_us / 1e3, serial.wall_us - serial.device_us,
                overlapped.wall_us / 1e3, overlapped.wall_us - overlapped.device_us,
                serial.schedule_us + serial.stream_us);
    std::fflush(stdout);
  }
}

int Main() {
  const int vocab = absl::GetFlag(FLAGS_vocab);
  std::printf("# engine_host_bench: simd %s, %d pool threads\n",
              cpu::SimdLevelName(cpu::ActiveSimdLevel()), cpu::NumThreads());
  const double bandwidth = cpu::MeasureReadBandwidth();
  std::printf("read bandwidth (all threads, 512 MiB, best of 5): %.1f GB/s\n", bandwidth / 1e9);
  BenchSampler(vocab, bandwidth);
  if (absl::GetFlag(FLAGS_engine)) {
    BenchEngine(vocab, bandwidth);
    BenchOverlap(vocab);
  }
  return 0;
}

}  // namespace
}  // namespace glm4v::worker

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return glm4v::worker::Main();
}
