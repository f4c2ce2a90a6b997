// Drives the engine with synthetic requests and reports throughput and latency percentiles.
//
//   bazel run -c opt //worker:engine_bench -- --num_requests=200 --request_rate=0
//   bazel run -c opt //worker:engine_bench -- --random_model=hidden=512,layers=8,heads=8,kv_groups=2,ffn=1536,vocab=32000
//
// Prompts are random text ids (optionally sharing a common prefix, to exercise prefix reuse);
// output lengths are exact (no stop ids). Arrivals are Poisson at --request_rate (0 = all at
// once). Latencies are measured where a gRPC handler would see them (RequestStream::Next).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "kernels/backends.h"
#include "model/testing/random_checkpoint.h"
#include "nlohmann/json.hpp"
#include "worker/decoder_model_runner.h"
#include "worker/engine.h"

ABSL_FLAG(std::string, model_dir, "tests/data/tiny-glm4v/model", "HF checkpoint directory");
ABSL_FLAG(std::string, random_model, "",
          "instead of --model_dir: random bf16 weights for the tiny config with these sizes "
          "overridden, e.g. hidden=512,layers=8,heads=8,kv_groups=2,ffn=1536,vocab=32000");
ABSL_FLAG(std::string, backend, "cpu", "compute backend");
ABSL_FLAG(int, num_requests, 100, "requests to send");
ABSL_FLAG(int, prompt_len_min, 16, "shortest prompt (tokens)");
ABSL_FLAG(int, prompt_len_max, 256, "longest prompt (tokens), uniform in between");
ABSL_FLAG(int, shared_prefix_len, 0, "leading prompt tokens common to every request");
ABSL_FLAG(int, output_len_min, 16, "fewest generated tokens");
ABSL_FLAG(int, output_len_max, 128, "most generated tokens, uniform in between");
ABSL_FLAG(double, request_rate, 0, "Poisson arrivals per second; 0 = all at once");
ABSL_FLAG(double, temperature, 0, "sampling temperature (0 = greedy)");
ABSL_FLAG(uint64_t, seed, 1, "workload seed");
ABSL_FLAG(int, block_size, 16, "KV block size (tokens)");
ABSL_FLAG(int, num_kv_blocks, 0, "KV blocks (0: use --kv_cache_mb)");
ABSL_FLAG(double, kv_cache_mb, 256, "KV cache budget in MiB");
ABSL_FLAG(int, max_num_seqs, 64, "running sequences per step");
ABSL_FLAG(int, max_num_batched_tokens, 2048, "rows per step");
ABSL_FLAG(bool, prefix_caching, true, "reuse KV blocks of identical prefixes");

namespace glm4v::worker {
namespace {

struct RequestTiming {
  absl::Time submitted;
  absl::Time first_token = absl::InfiniteFuture();
  absl::Time done;
  int tokens = 0;
  int prompt_tokens = 0;
  int cached_prompt_tokens = 0;
  bool ok = false;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * (v.size() - 1);
  const size_t lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - lo);
}

void PrintLatency(const char* name, const std::vector<double>& ms) {
  std::printf("%-22s p50 %9.2f   p90 %9.2f   p99 %9.2f   (ms, n=%zu)\n", name,
              Percentile(ms, 50), Percentile(ms, 90), Percentile(ms, 99), ms.size());
}

// Writes a random-weight checkpoint with the tiny config's layout and the given sizes.
absl::StatusOr<std::string> MakeRandomModel(const std::string& spec) {
  std::ifstream file("tests/data/tiny-glm4v/model/config.json");
  if (!file) return absl::NotFoundError("tests/data/tiny-glm4v/model/config.json (run from the repo root or via bazel run)");
  std::stringstream text;
  text << file.rdbuf();
  nlohmann::json config = nlohmann::json::parse(text.str());
  int heads = config["num_attention_heads"];
  int hidden = config["hidden_size"];
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, '=');
    int value;
    if (!absl::SimpleAtoi(kv.second, &value)) {
      return absl::InvalidArgumentError(absl::StrCat("bad --random_model item: ", item));
    }
    if (kv.first == "hidden") {
      config["hidden_size"] = hidden = value;
    } else if (kv.first == "layers") {
      config["num_layers"] = value;
    } else if (kv.first == "heads") {
      config["num_attention_heads"] = heads = value;
    } else if (kv.first == "kv_groups") {
      config["multi_query_group_num"] = value;
    } else if (kv.first == "ffn") {
      config["ffn_hidden_size"] = value;
    } else if (kv.first == "vocab") {
      config["padded_vocab_size"] = value;
      config["eos_token_id"] = {value - 24, value - 21, value - 17};
      config["pad_token_id"] = value - 24;
      config["boi_token_id"] = value - 23;
      config["eoi_token_id"] = value - 22;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown --random_model key: ", kv.first));
    }
  }
  config["kv_channels"] = hidden / heads;
  config["seq_length"] = 8192;
  const std::string json = config.dump(2);
  absl::StatusOr<testing::WeightMap> weights = testing::RandomGlm4vWeights(json, 1234);
  if (!weights.ok()) return weights.status();
  const std::string dir = absl::StrCat("/tmp/engine-bench-model-", getpid());
  absl::Status written = testing::WriteCheckpoint(dir, json, *weights);
  if (!written.ok()) return written;
  return dir;
}

int Main() {
  std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  if (!absl::GetFlag(FLAGS_random_model).empty()) {
    absl::StatusOr<std::string> dir = MakeRandomModel(absl::GetFlag(FLAGS_random_model));
    if (!dir.ok()) {
      std::fprintf(stderr, "random model: %s\n", dir.status().ToString().c_str());
      return 1;
    }
    model_dir = *dir;
  }
  absl::StatusOr<Backend*> backend = GetBackend(absl::GetFlag(FLAGS_backend));
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", backend.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<DecoderModelRunner>> runner =
      DecoderModelRunner::Load(model_dir, *backend);
  if (!runner.ok()) {
    std::fprintf(stderr, "loading %s: %s\n", model_dir.c_str(),
                 runner.status().ToString().c_str());
    return 1;
  }
  const ModelConfig model = (*runner)->config();

  EngineConfig config;
  config.block_size = absl::GetFlag(FLAGS_block_size);
  config.num_kv_blocks = absl::GetFlag(FLAGS_num_kv_blocks);
  config.kv_cache_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_kv_cache_mb) * (1 << 20));
  config.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  config.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  config.enable_prefix_caching = absl::GetFlag(FLAGS_prefix_caching);
  absl::StatusOr<std::unique_ptr<Engine>> engine_or = Engine::Create(config, std::move(*runner));
  if (!engine_or.ok()) {
    std::fprintf(stderr, "%s\n", engine_or.status().ToString().c_str());
    return 1;
  }
  Engine& engine = **engine_or;

  // Workload: text ids below the special-token range.
  std::mt19937_64 rng(absl::GetFlag(FLAGS_seed));
  const int n = absl::GetFlag(FLAGS_num_requests);
  const int max_text_id = std::min(model.padded_vocab_size, model.eos_token_ids.empty()
                                                               ? model.padded_vocab_size
                                                               : model.eos_token_ids[0]);
  auto uniform = [&](int lo, int hi) {
    return lo + static_cast<int>(rng() % static_cast<uint64_t>(std::max(1, hi - lo + 1)));
  };
  std::vector<int32_t> shared_prefix(absl::GetFlag(FLAGS_shared_prefix_len));
  for (int32_t& id : shared_prefix) id = uniform(0, max_text_id - 1);
  std::vector<EngineRequest> requests(n);
  std::vector<double> arrival_s(n, 0.0);
  std::exponential_distribution<double> gap(std::max(1e-9, absl::GetFlag(FLAGS_request_rate)));
  double t = 0;
  for (int i = 0; i < n; ++i) {
    EngineRequest& r = requests[i];
    r.request_id = absl::StrCat("bench-", i);
    r.prompt_token_ids = shared_prefix;
    const int len = uniform(absl::GetFlag(FLAGS_prompt_len_min), absl::GetFlag(FLAGS_prompt_len_max));
    while (static_cast<int>(r.prompt_token_ids.size()) < len) {
      r.prompt_token_ids.push_back(uniform(0, max_text_id - 1));
    }
    r.sampling.max_tokens =
        uniform(absl::GetFlag(FLAGS_output_len_min), absl::GetFlag(FLAGS_output_len_max));
    r.sampling.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
    r.sampling.seed = i;
    if (absl::GetFlag(FLAGS_request_rate) > 0) t += gap(rng);
    arrival_s[i] = t;
  }

  std::printf("model %s: hidden %d, layers %d, heads %d/%d kv, vocab %d; KV %d blocks x %d\n",
              model_dir.c_str(), model.hidden_size, model.num_layers, model.num_attention_heads,
              model.multi_query_group_num, model.padded_vocab_size, engine.num_kv_blocks(),
              engine.kv_block_size());
  std::printf("%d requests, prompt %d..%d (+%zu shared), output %d..%d, rate %s\n", n,
              absl::GetFlag(FLAGS_prompt_len_min), absl::GetFlag(FLAGS_prompt_len_max),
              shared_prefix.size(), absl::GetFlag(FLAGS_output_len_min),
              absl::GetFlag(FLAGS_output_len_max),
              absl::GetFlag(FLAGS_request_rate) > 0
                  ? absl::StrCat(absl::GetFlag(FLAGS_request_rate), "/s").c_str()
                  : "all at once");

  std::vector<RequestTiming> timings(n);
  std::vector<std::thread> readers;
  readers.reserve(n);
  const absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) {
    absl::SleepFor(start + absl::Seconds(arrival_s[i]) - absl::Now());
    RequestTiming& timing = timings[i];
    timing.submitted = absl::Now();
    absl::StatusOr<std::shared_ptr<RequestStream>> stream = engine.Submit(requests[i]);
    if (!stream.ok()) {
      std::fprintf(stderr, "%s: %s\n", requests[i].request_id.c_str(),
                   stream.status().ToString().c_str());
      continue;
    }
    readers.emplace_back([&timing, stream = *stream] {
      while (true) {
        absl::StatusOr<TokenEvent> event = stream->Next(absl::Seconds(600));
        if (!event.ok()) return;
        const absl::Time now = absl::Now();
        if (timing.first_token == absl::InfiniteFuture()) {
          timing.first_token = now;
          timing.prompt_tokens = event->prompt_tokens;
          timing.cached_prompt_tokens = event->cached_prompt_tokens;
        }
        timing.tokens += static_cast<int>(event->token_ids.size());
        if (event->finish_reason != FinishReason::kNone) {
          timing.done = now;
          timing.ok = true;
          return;
        }
      }
    });
  }
  for (std::thread& reader : readers) reader.join();
  const double wall_s = absl::ToDoubleSeconds(absl::Now() - start);

  std::vector<double> ttft, tpot, e2e;
  int64_t generated = 0, prompt = 0, cached = 0;
  int failed = 0;
  for (const RequestTiming& timing : timings) {
    if (!timing.ok) {
      ++failed;
      continue;
    }
    generated += timing.tokens;
    prompt += timing.prompt_tokens;
    cached += timing.cached_prompt_tokens;
    ttft.push_back(absl::ToDoubleMilliseconds(timing.first_token - timing.submitted));
    e2e.push_back(absl::ToDoubleMilliseconds(timing.done - timing.submitted));
    if (timing.tokens > 1) {
      tpot.push_back(absl::ToDoubleMilliseconds(timing.done - timing.first_token) /
                     (timing.tokens - 1));
    }
  }
  const EngineStats stats = engine.Stats();
  engine.Shutdown();
  std::printf("wall %.2f s, %d ok, %d failed\n", wall_s, n - failed, failed);
  std::printf("throughput: %.1f generated tok/s, %.1f prompt tok/s, %.2f req/s\n",
              generated / wall_s, prompt / wall_s, (n - failed) / wall_s);
  PrintLatency("TTFT", ttft);
  PrintLatency("per output token", tpot);
  PrintLatency("end to end", e2e);
  std::printf("steps %lld (mean %.2f ms, %.1f sampled tokens/step), preemptions %lld, "
              "prefix cache: %lld/%lld blocks hit, %lld of %lld prompt tokens cached\n",
              static_cast<long long>(stats.steps),
              stats.steps ? stats.step_time_ms_total / stats.steps : 0.0,
              stats.steps ? static_cast<double>(generated) / stats.steps : 0.0,
              static_cast<long long>(stats.preemptions),
              static_cast<long long>(stats.prefix_cache_hits),
              static_cast<long long>(stats.prefix_cache_queries), static_cast<long long>(cached),
              static_cast<long long>(prompt));
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace glm4v::worker

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return glm4v::worker::Main();
}
