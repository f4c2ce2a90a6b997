// End-to-end engine tests on the real decoder and the tiny golden checkpoint
// (tests/data/tiny-glm4v): batch invariance of greedy output (alone, batched, chunked,
// preempted, prefix-reused), seeded sampling reproducibility, cancellation, errors, shutdown,
// and no KV block leaks after any of them.
#include "worker/engine.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/metrics/registry.h"
#include "common/safetensors.h"
#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "nlohmann/json.hpp"
#include "worker/decoder_model_runner.h"

namespace glm4v::worker {
namespace {

constexpr char kDataDir[] = "tests/data/tiny-glm4v/";

// The suite runs twice: with step overlap (the default) and, as :engine_serial_steps_test,
// with every step completed before the next is planned.
#ifdef GLM4V_ENGINE_TEST_SERIAL_STEPS
constexpr bool kOverlapSteps = false;
#else
constexpr bool kOverlapSteps = true;
#endif

struct GoldenCase {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> greedy_ids;
};

struct Result {
  absl::Status status;
  std::vector<int32_t> ids;
  std::vector<TokenLogprobs> logprobs;
  FinishReason reason = FinishReason::kNone;
  int prompt_tokens = 0;
  int cached_prompt_tokens = 0;
};

// Forwards everything to a real runner; the test doubles below override one part.
class WrappingRunner : public ModelRunner {
 public:
  explicit WrappingRunner(std::unique_ptr<ModelRunner> inner) : inner_(std::move(inner)) {}
  const ModelConfig& config() const override { return inner_->config(); }
  KvCacheShape KvBlockShape(int block_size) const override {
    return inner_->KvBlockShape(block_size);
  }
  size_t kv_element_size() const override { return inner_->kv_element_size(); }
  int64_t kv_memory_capacity_bytes() const override { return 0; }
  absl::Status AllocateKvCache(const KvCacheShape& shape) override {
    return inner_->AllocateKvCache(shape);
  }
  absl::StatusOr<DecoderOutput> Execute(const DecoderBatch& batch) override {
    return inner_->Execute(batch);
  }
  absl::Status BindCallingThread() override { return inner_->BindCallingThread(); }

 protected:
  std::unique_ptr<ModelRunner> inner_;
};

// Fails the whole batch when any chunk holds the poison token: a model step that breaks on one
// request, to check the engine isolates it. Everything else goes to the real decoder.
class PoisonedRunner : public WrappingRunner {
 public:
  PoisonedRunner(std::unique_ptr<ModelRunner> inner, int32_t poison)
      : WrappingRunner(std::move(inner)), poison_(poison) {}
  absl::StatusOr<DecoderOutput> Execute(const DecoderBatch& batch) override {
    for (const SequenceChunk& chunk : batch.sequences) {
      for (int32_t id : chunk.token_ids) {
        if (id == poison_) return absl::InternalError("poisoned step");
      }
    }
    return inner_->Execute(batch);
  }

 private:
  int32_t poison_;
};

// Claims to sample on the device and does it with the host sampler from the SamplingBatchHost
// alone: drives the engine's device-sampling path (ExecuteAndSample) on the CPU.
class HostSamplingRunner : public WrappingRunner {
 public:
  explicit HostSamplingRunner(std::unique_ptr<ModelRunner> inner)
      : WrappingRunner(std::move(inner)) {}
  absl::StatusOr<DecoderOutput> Execute(const DecoderBatch& batch) override {
    return absl::InternalError("the engine must not ask a device-sampling runner for logits");
  }
  bool samples_on_device() const override { return true; }
  absl::StatusOr<SampledRows> ExecuteAndSample(const DecoderBatch& batch,
                                               const SamplingBatchHost& sampling) override {
    ++sampled_steps;
    absl::StatusOr<DecoderOutput> output_or = inner_->Execute(batch);
    if (!output_or.ok()) return output_or.status();
    DecoderOutput& output = *output_or;
    const int vocab = config().padded_vocab_size;
    if ((output.logits.defined() ? output.logits.dim(0) : 0) != sampling.num_rows()) {
      return absl::InternalError("sampling rows do not match the logits rows");
    }
    SampledRows out;
    out.top_count = sampling.max_top_logprobs();
    out.top_ids.assign(sampling.num_rows() * out.top_count, -1);
    out.top_logprobs.assign(sampling.num_rows() * out.top_count, 0.0f);
    for (int r = 0; r < sampling.num_rows(); ++r) {
      const RowSamplingParams& row = sampling.rows[r];
      SamplingParams params;
      params.temperature = row.temperature;
      params.top_k = row.top_k;
      params.top_p = row.top_p;
      params.repetition_penalty = row.repetition_penalty;
      params.logprobs = row.logprobs;
      params.top_logprobs = row.top_logprobs;
      const absl::Span<const int32_t> penalty = sampling.penalty(r);
      const absl::flat_hash_set<int32_t> seen(penalty.begin(), penalty.end());
      float* logits = output.logits.data<float>() + static_cast<int64_t>(r) * vocab;
      // The additive adjustments first, as the CUDA backend applies them.
      for (size_t j = 0; j < sampling.adjusted_ids(r).size(); ++j) {
        logits[sampling.adjusted_ids(r)[j]] += sampling.adjustments(r)[j];
      }
      Sampler sampler;
      SampledToken token = sampler.SampleInPlace(absl::MakeSpan(logits, vocab), params, seen,
                                                 sampling.suppressed(r), row.seed, row.step);
      out.token_ids.push_back(token.token_id);
      out.logprobs.push_back(token.logprob);
      for (size_t k = 0; k < token.top_logprobs.size(); ++k) {
        out.top_ids[r * out.top_count + k] = token.top_logprobs[k].token_id;
        out.top_logprobs[r * out.top_count + k] = token.top_logprobs[k].logprob;
      }
    }
    return out;
  }

  int sampled_steps = 0;
};

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<Backend*> backend = GetBackend("cpu");
    ASSERT_TRUE(backend.ok()) << backend.status();
    std::string model_dir = absl::StrCat(kDataDir, "model");
    absl::StatusOr<ModelConfig> config = LoadModelConfig(model_dir);
    ASSERT_TRUE(config.ok()) << config.status();
    absl::StatusOr<Checkpoint> checkpoint = Checkpoint::Open(model_dir);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    absl::StatusOr<std::unique_ptr<Decoder>> decoder =
        Decoder::Load(*checkpoint, *config, *backend);
    ASSERT_TRUE(decoder.ok()) << decoder.status();
    decoder_ = new std::shared_ptr<const Decoder>(std::move(*decoder));

    std::ifstream file(absl::StrCat(kDataDir, "golden.json"));
    std::stringstream text;
    text << file.rdbuf();
    nlohmann::json golden = nlohmann::json::parse(text.str());
    for (const auto& c : golden["cases"]) {
      if (c["kind"] == "text") {
        text_case_ = new GoldenCase{c["input_ids"].get<std::vector<int32_t>>(),
                                    c["greedy_ids"].get<std::vector<int32_t>>()};
      } else if (c["kind"] == "multimodal") {
        ASSERT_EQ(c["image"], "pixels0");
        mm_case_ = new GoldenCase{c["input_ids"].get<std::vector<int32_t>>(),
                                  c["greedy_ids"].get<std::vector<int32_t>>()};
      }
    }
    ASSERT_NE(text_case_, nullptr);
    ASSERT_NE(mm_case_, nullptr);
    // The golden `vision` case runs pixels0 as the first image of its batch: its first output
    // is the feature block the multimodal case was generated with.
    absl::StatusOr<std::shared_ptr<SafetensorsFile>> tensors =
        SafetensorsFile::Open(absl::StrCat(kDataDir, "golden.safetensors"));
    ASSERT_TRUE(tensors.ok()) << tensors.status();
    absl::StatusOr<Tensor> vision_out = (*tensors)->Get("vision_out");
    ASSERT_TRUE(vision_out.ok());
    ASSERT_EQ(vision_out->ndim(), 3);
    absl::StatusOr<Tensor> flat =
        vision_out->Reshape({vision_out->dim(0) * vision_out->dim(1), vision_out->dim(2)});
    ASSERT_TRUE(flat.ok());
    image_features_ = new Tensor(flat->SliceRows(0, vision_out->dim(1)).Clone());
  }
  static void TearDownTestSuite() {
    delete decoder_;
    delete text_case_;
    delete mm_case_;
    delete image_features_;
  }

  static EngineConfig DefaultConfig() {
    EngineConfig config;
    config.num_kv_blocks = 256;
    config.block_size = 16;
    return config;
  }

  static std::unique_ptr<Engine> MakeEngine(const EngineConfig& config,
                                            int32_t poison_token = -1,
                                            bool device_sampling = false,
                                            bool overlap_steps = kOverlapSteps) {
    std::unique_ptr<ModelRunner> runner = std::make_unique<DecoderModelRunner>(*decoder_);
    if (poison_token >= 0) {
      runner = std::make_unique<PoisonedRunner>(std::move(runner), poison_token);
    }
    if (device_sampling) runner = std::make_unique<HostSamplingRunner>(std::move(runner));
    EngineConfig with_mode = config;
    with_mode.overlap_steps = overlap_steps;
    absl::StatusOr<std::unique_ptr<Engine>> engine =
        Engine::Create(with_mode, std::move(runner));
    EXPECT_TRUE(engine.ok()) << engine.status();
    return engine.ok() ? std::move(*engine) : nullptr;
  }

  static SamplingParams Greedy(int max_tokens) {
    SamplingParams params;
    params.temperature = 0;
    params.max_tokens = max_tokens;
    params.stop_token_ids = {1000, 1003, 1007};  // the tiny config's eos ids
    return params;
  }

  static EngineRequest TextRequest(const std::string& id) {
    return {id, text_case_->input_ids, {},
            Greedy(static_cast<int>(text_case_->greedy_ids.size()))};
  }
  static EngineRequest ImageRequest(const std::string& id, const std::string& image_hash) {
    return {id, mm_case_->input_ids, {{*image_features_, image_hash}},
            Greedy(static_cast<int>(mm_case_->greedy_ids.size()))};
  }
  // A text prompt of random ids (no image markers) with a greedy budget.
  static EngineRequest RandomRequest(const std::string& id, std::mt19937* rng, int max_prompt,
                                     int max_output) {
    EngineRequest request;
    request.request_id = id;
    const int length = 2 + static_cast<int>((*rng)() % (max_prompt - 1));
    for (int i = 0; i < length; ++i) {
      request.prompt_token_ids.push_back(10 + static_cast<int32_t>((*rng)() % 980));
    }
    request.sampling = Greedy(1 + static_cast<int>((*rng)() % max_output));
    return request;
  }

  static Result Collect(RequestStream* stream) {
    Result result;
    bool first = true;
    while (true) {
      absl::StatusOr<TokenEvent> event = stream->Next(absl::Seconds(60));
      if (!event.ok()) {
        result.status = event.status();
        return result;
      }
      if (first) {
        result.prompt_tokens = event->prompt_tokens;
        result.cached_prompt_tokens = event->cached_prompt_tokens;
        first = false;
      }
      result.ids.insert(result.ids.end(), event->token_ids.begin(), event->token_ids.end());
      result.logprobs.insert(result.logprobs.end(), event->logprobs.begin(),
                             event->logprobs.end());
      if (event->finish_reason != FinishReason::kNone) {
        result.reason = event->finish_reason;
        return result;
      }
    }
  }

  static Result Run(Engine* engine, EngineRequest request) {
    absl::StatusOr<std::shared_ptr<RequestStream>> stream = engine->Submit(std::move(request));
    if (!stream.ok()) return Result{stream.status()};
    return Collect(stream->get());
  }

  // Submits all requests at once, then collects every stream.
  static std::map<std::string, Result> RunTogether(Engine* engine,
                                                   std::vector<EngineRequest> requests) {
    std::vector<std::shared_ptr<RequestStream>> streams;
    std::map<std::string, Result> results;
    for (EngineRequest& request : requests) {
      const std::string id = request.request_id;
      absl::StatusOr<std::shared_ptr<RequestStream>> stream = engine->Submit(std::move(request));
      EXPECT_TRUE(stream.ok()) << id << ": " << stream.status();
      if (stream.ok()) streams.push_back(*stream);
    }
    for (const auto& stream : streams) results[stream->request_id()] = Collect(stream.get());
    return results;
  }

  // Every block is unreferenced again once the engine has nothing to do.
  static void ExpectNoLeaks(Engine* engine) {
    EngineStats stats;
    for (int i = 0; i < 500; ++i) {
      stats = engine->Stats();
      if (stats.running == 0 && stats.waiting == 0 && stats.kv_blocks_used == 0) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    EXPECT_EQ(stats.running, 0);
    EXPECT_EQ(stats.waiting, 0);
    EXPECT_EQ(stats.kv_blocks_used, 0);
    EXPECT_EQ(stats.kv_blocks_total, engine->num_kv_blocks());
  }

  static std::shared_ptr<const Decoder>* decoder_;
  static GoldenCase* text_case_;
  static GoldenCase* mm_case_;
  static Tensor* image_features_;
};

std::shared_ptr<const Decoder>* EngineTest::decoder_ = nullptr;
GoldenCase* EngineTest::text_case_ = nullptr;
GoldenCase* EngineTest::mm_case_ = nullptr;
Tensor* EngineTest::image_features_ = nullptr;

// An unset max_model_len is the config's seq_length (2,048 here) capped by the KV capacity.
TEST_F(EngineTest, DefaultMaxModelLenIsSeqLengthCappedByTheKvCache) {
  EngineConfig config = DefaultConfig();  // 256 blocks x 16 = 4,096 tokens
  std::unique_ptr<Engine> roomy = MakeEngine(config);
  ASSERT_NE(roomy, nullptr);
  EXPECT_EQ(roomy->max_model_len(), (*decoder_)->config().seq_length);
  config.num_kv_blocks = 40;  // 640 tokens
  std::unique_ptr<Engine> small = MakeEngine(config);
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(small->max_model_len(), 640);
}

TEST_F(EngineTest, GoldenGreedyIdsAlone) {
  std::unique_ptr<Engine> engine = MakeEngine(DefaultConfig());
  Result text = Run(engine.get(), TextRequest("text"));
  ASSERT_TRUE(text.status.ok()) << text.status;
  EXPECT_EQ(text.ids, text_case_->greedy_ids);
  EXPECT_EQ(text.reason, FinishReason::kLength);
  EXPECT_EQ(text.prompt_tokens, static_cast<int>(text_case_->input_ids.size()));

  Result image = Run(engine.get(), ImageRequest("image", "pixels0"));
  ASSERT_TRUE(image.status.ok()) << image.status;
  EXPECT_EQ(image.ids, mm_case_->greedy_ids);
  // 3 placeholder ids became the image's feature rows.
  EXPECT_EQ(image.prompt_tokens,
            static_cast<int>(mm_case_->input_ids.size() - 3 + image_features_->dim(0)));
  ExpectNoLeaks(engine.get());
}

// Greedy output does not depend on what else is in the batch, on prefill chunking, on
// preemption and recomputation, or on prefix reuse.
TEST_F(EngineTest, GreedyOutputIsBatchInvariant) {
  std::mt19937 rng(7);
  std::vector<EngineRequest> others;
  for (int i = 0; i < 10; ++i) others.push_back(RandomRequest(absl::StrCat("r", i), &rng, 30, 18));

  // Reference: each request alone, no prefix cache, whole-prompt prefill.
  std::map<std::string, std::vector<int32_t>> alone;
  {
    EngineConfig config = DefaultConfig();
    config.enable_prefix_caching = false;
    std::unique_ptr<Engine> engine = MakeEngine(config);
    for (const EngineRequest& request : others) {
      Result result = Run(engine.get(), request);
      ASSERT_TRUE(result.status.ok()) << result.status;
      alone[request.request_id] = result.ids;
    }
  }
  alone["text"] = text_case_->greedy_ids;
  alone["image"] = mm_case_->greedy_ids;

  struct Variant {
    const char* name;
    int num_blocks, block_size, max_tokens_per_step, max_seqs;
    bool prefix_caching;
    bool expect_preemption;
  };
  const Variant variants[] = {
      {"batched", 256, 16, 2048, 64, false, false},
      {"chunked+prefix", 256, 4, 7, 64, true, false},
      {"tiny cache (preemption)", 16, 4, 16, 8, false, true},
      {"tiny cache + prefix", 16, 4, 16, 8, true, true},
  };
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.name);
    EngineConfig config;
    config.num_kv_blocks = v.num_blocks;
    config.block_size = v.block_size;
    config.max_num_batched_tokens = v.max_tokens_per_step;
    config.max_num_seqs = v.max_seqs;
    config.enable_prefix_caching = v.prefix_caching;
    std::unique_ptr<Engine> engine = MakeEngine(config);
    std::vector<EngineRequest> requests = others;
    requests.insert(requests.begin() + 3, ImageRequest("image", "pixels0"));
    requests.insert(requests.begin() + 6, TextRequest("text"));
    // A second copy of the image turn shares its prefix with the first.
    requests.push_back(ImageRequest("image-again", "pixels0"));
    alone["image-again"] = mm_case_->greedy_ids;
    std::map<std::string, Result> results = RunTogether(engine.get(), requests);
    ASSERT_EQ(results.size(), requests.size());
    for (const auto& [id, result] : results) {
      ASSERT_TRUE(result.status.ok()) << id << ": " << result.status;
      EXPECT_EQ(result.ids, alone[id]) << id;
    }
    EngineStats stats = engine->Stats();
    if (v.expect_preemption) {
      EXPECT_GT(stats.preemptions, 0);
    } else {
      EXPECT_EQ(stats.preemptions, 0);
    }
    EXPECT_EQ(stats.completed_requests, static_cast<int64_t>(requests.size()));
    ExpectNoLeaks(engine.get());
  }
}

TEST_F(EngineTest, ReusesPrefixBlocksIncludingTheSameImage) {
  EngineConfig config = DefaultConfig();
  config.block_size = 4;
  std::unique_ptr<Engine> engine = MakeEngine(config);
  const int rows = static_cast<int>(mm_case_->input_ids.size() - 3 + image_features_->dim(0));

  Result first = Run(engine.get(), ImageRequest("a", "pixels0"));
  ASSERT_TRUE(first.status.ok()) << first.status;
  EXPECT_EQ(first.cached_prompt_tokens, 0);

  // Same picture again: every full block but the one holding the last prompt row.
  Result again = Run(engine.get(), ImageRequest("b", "pixels0"));
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.cached_prompt_tokens, (rows - 1) / 4 * 4);
  EXPECT_EQ(again.ids, mm_case_->greedy_ids);

  // A different picture (same features, other identity): only the text before boi.
  Result other = Run(engine.get(), ImageRequest("c", "another picture"));
  ASSERT_TRUE(other.status.ok());
  EXPECT_EQ(other.cached_prompt_tokens, 4);
  EXPECT_EQ(other.ids, mm_case_->greedy_ids);  // same features: same output, recomputed

  // A follow-up turn: the first turn's prompt and answer plus new text. The blocks the
  // answer filled were cached too.
  EngineRequest follow_up = ImageRequest("d", "pixels0");
  follow_up.prompt_token_ids.insert(follow_up.prompt_token_ids.end(),
                                    mm_case_->greedy_ids.begin(), mm_case_->greedy_ids.end());
  follow_up.prompt_token_ids.push_back(42);
  follow_up.prompt_token_ids.push_back(43);
  follow_up.sampling.max_tokens = 3;
  Result follow = Run(engine.get(), follow_up);
  ASSERT_TRUE(follow.status.ok()) << follow.status;
  // The first request computed KV for prompt + all answer tokens but the last.
  const int first_turn_rows = rows + static_cast<int>(mm_case_->greedy_ids.size()) - 1;
  EXPECT_EQ(follow.cached_prompt_tokens, first_turn_rows / 4 * 4);

  EngineStats stats = engine->Stats();
  EXPECT_GT(stats.prefix_cache_hits, 0);
  EXPECT_GT(stats.prefix_cache_blocks, 0);
  ExpectNoLeaks(engine.get());
}

TEST_F(EngineTest, SeededSamplingIsReproducibleAloneAndBatched) {
  auto sampled = [](const std::string& id, uint64_t seed) {
    EngineRequest request = TextRequest(id);
    request.sampling.temperature = 1.2f;
    request.sampling.top_k = 40;
    request.sampling.top_p = 0.95f;
    request.sampling.repetition_penalty = 1.1f;
    request.sampling.seed = seed;
    request.sampling.max_tokens = 24;
    request.sampling.stop_token_ids.clear();
    request.sampling.top_logprobs = 3;
    return request;
  };
  std::unique_ptr<Engine> engine = MakeEngine(DefaultConfig());
  Result alone = Run(engine.get(), sampled("s", 1234));
  ASSERT_TRUE(alone.status.ok()) << alone.status;
  ASSERT_EQ(alone.ids.size(), 24u);
  ASSERT_EQ(alone.logprobs.size(), 24u);
  for (const TokenLogprobs& lp : alone.logprobs) {
    ASSERT_EQ(lp.top.size(), 3u);
    EXPECT_GE(lp.top[0].logprob, lp.top[1].logprob);
    EXPECT_LE(lp.chosen.logprob, 0.0f);
  }
  Result other_seed = Run(engine.get(), sampled("s2", 1235));
  EXPECT_NE(other_seed.ids, alone.ids);

  // Batched with other work through a cache small enough to preempt.
  EngineConfig config;
  config.num_kv_blocks = 16;
  config.block_size = 4;
  config.max_num_batched_tokens = 16;
  std::unique_ptr<Engine> small = MakeEngine(config);
  std::mt19937 rng(3);
  std::vector<EngineRequest> requests;
  for (int i = 0; i < 6; ++i) requests.push_back(RandomRequest(absl::StrCat("r", i), &rng, 30, 20));
  requests.insert(requests.begin() + 2, sampled("s", 1234));
  requests.push_back(sampled("s-copy", 1234));
  std::map<std::string, Result> results = RunTogether(small.get(), requests);
  EXPECT_EQ(results["s"].ids, alone.ids);
  EXPECT_EQ(results["s-copy"].ids, alone.ids);
  EXPECT_GT(small->Stats().preemptions, 0);
  ExpectNoLeaks(small.get());
}

// Step overlap changes when the host plans a step, never what it computes: every mix of
// sampling settings, ends and preemptions gives the serial steps' ids. Logprobs are bit-equal
// when the batches are the same (one sequence at a time); batched, overlap admits a request a
// step later, and the CPU GEMM rounds a row differently in a batch of another size, so they
// agree to 1e-5.
TEST_F(EngineTest, OverlappedStepsGiveTheSerialTokensAndLogprobs) {
  std::mt19937 rng(11);
  std::vector<EngineRequest> requests;
  for (int i = 0; i < 8; ++i) {
    EngineRequest request = RandomRequest(absl::StrCat("r", i), &rng, 30, 20);
    SamplingParams& p = request.sampling;
    p.seed = 100 + i;
    p.temperature = (i % 4 == 0) ? 0.0f : 0.8f;
    p.top_p = (i % 4 == 1) ? 0.8f : 1.0f;
    p.top_k = (i % 4 == 2) ? 50 : 0;
    p.repetition_penalty = (i % 4 == 3) ? 1.1f : 1.0f;
    p.top_logprobs = (i % 4 == 3) ? 5 : 0;
    p.logprobs = i % 2 == 1;
    p.min_tokens = (i % 3 == 0) ? 4 : 0;
    requests.push_back(std::move(request));
  }
  requests.push_back(ImageRequest("image", "pixels0"));
  for (const bool device_sampling : {false, true}) {
    for (const int max_seqs : {1, 64}) {
      SCOPED_TRACE(absl::StrCat(device_sampling ? "device" : "host", " sampling, max_num_seqs ",
                                max_seqs));
      const float tolerance = max_seqs == 1 ? 0.0f : 1e-5f;
      // A cache small enough to preempt, chunked prefills.
      EngineConfig config;
      config.num_kv_blocks = 40;
      config.block_size = 4;
      config.max_num_batched_tokens = 24;
      config.max_num_seqs = max_seqs;
      std::unique_ptr<Engine> serial = MakeEngine(config, -1, device_sampling, false);
      std::unique_ptr<Engine> overlapped = MakeEngine(config, -1, device_sampling, true);
      std::map<std::string, Result> a = RunTogether(serial.get(), requests);
      std::map<std::string, Result> b = RunTogether(overlapped.get(), requests);
      ASSERT_EQ(a.size(), requests.size());
      for (const auto& [id, result] : a) {
        SCOPED_TRACE(id);
        ASSERT_TRUE(result.status.ok()) << result.status;
        ASSERT_TRUE(b[id].status.ok()) << b[id].status;
        EXPECT_EQ(b[id].ids, result.ids);
        EXPECT_EQ(b[id].reason, result.reason);
        ASSERT_EQ(b[id].logprobs.size(), result.logprobs.size());
        for (size_t t = 0; t < result.logprobs.size(); ++t) {
          const TokenLogprobs& want = result.logprobs[t];
          const TokenLogprobs& got = b[id].logprobs[t];
          EXPECT_EQ(got.chosen.token_id, want.chosen.token_id);
          EXPECT_NEAR(got.chosen.logprob, want.chosen.logprob, tolerance);
          ASSERT_EQ(got.top.size(), want.top.size());
          for (size_t k = 0; k < want.top.size(); ++k) {
            EXPECT_EQ(got.top[k].token_id, want.top[k].token_id);
            EXPECT_NEAR(got.top[k].logprob, want.top[k].logprob, tolerance);
          }
        }
      }
      EXPECT_EQ(a["image"].ids, mm_case_->greedy_ids);
      if (max_seqs > 1) {
        EXPECT_GT(overlapped->Stats().preemptions, 0);
      }
      ExpectNoLeaks(serial.get());
      ExpectNoLeaks(overlapped.get());
    }
  }
}

TEST_F(EngineTest, StopIdsMaxTokensMinTokensAndModelLength) {
  std::unique_ptr<Engine> engine = MakeEngine(DefaultConfig());
  const std::vector<int32_t>& golden = text_case_->greedy_ids;

  EngineRequest stop = TextRequest("stop");
  stop.sampling.stop_token_ids = {golden[3]};
  Result stopped = Run(engine.get(), stop);
  EXPECT_EQ(stopped.reason, FinishReason::kStop);
  EXPECT_EQ(stopped.ids, std::vector<int32_t>(golden.begin(), golden.begin() + 4));

  EngineRequest min_len = stop;
  min_len.request_id = "min";
  min_len.sampling.min_tokens = 6;
  min_len.sampling.max_tokens = 6;
  Result at_least = Run(engine.get(), min_len);
  ASSERT_EQ(at_least.ids.size(), 6u);
  EXPECT_NE(at_least.ids[3], golden[3]);  // suppressed: the runner-up was taken instead

  // max_model_len caps prompt + output.
  EngineConfig config = DefaultConfig();
  config.max_model_len = static_cast<int>(text_case_->input_ids.size()) + 5;
  std::unique_ptr<Engine> short_engine = MakeEngine(config);
  EngineRequest unlimited = TextRequest("long");
  unlimited.sampling.max_tokens = 0;
  Result capped = Run(short_engine.get(), unlimited);
  EXPECT_EQ(capped.reason, FinishReason::kLength);
  EXPECT_EQ(capped.ids, std::vector<int32_t>(golden.begin(), golden.begin() + 5));
  ExpectNoLeaks(engine.get());
  ExpectNoLeaks(short_engine.get());
}

TEST_F(EngineTest, RejectsRequestsThatCanNeverRunAndKeepsServingOthers) {
  EngineConfig config = DefaultConfig();
  config.num_kv_blocks = 4;
  config.block_size = 8;  // 32 rows
  std::unique_ptr<Engine> engine = MakeEngine(config);
  auto expect_invalid = [&](EngineRequest request, const char* why) {
    absl::StatusOr<std::shared_ptr<RequestStream>> stream = engine->Submit(std::move(request));
    EXPECT_EQ(stream.status().code(), absl::StatusCode::kInvalidArgument) << why;
  };
  EngineRequest bad_id = TextRequest("bad-id");
  bad_id.prompt_token_ids.push_back(5000);
  expect_invalid(bad_id, "id outside the vocabulary");
  EngineRequest missing_image = ImageRequest("no-image", "x");
  missing_image.images.clear();
  expect_invalid(missing_image, "placeholder without an image");
  EngineRequest wrong_width = ImageRequest("wrong-width", "x");
  wrong_width.images[0].features = Tensor::Zeros(DType::kF32, {18, 32});
  expect_invalid(wrong_width, "features of the wrong hidden size");
  EngineRequest bad_sampling = TextRequest("bad-sampling");
  bad_sampling.sampling.top_p = 0;
  expect_invalid(bad_sampling, "top_p = 0");
  // The image prompt needs 32 rows + 1 to generate: more than the whole cache.
  expect_invalid(ImageRequest("too-big", "x"), "larger than the KV cache");
  EngineRequest too_long = TextRequest("too-long");
  too_long.prompt_token_ids.assign(3000, 7);
  expect_invalid(too_long, "longer than max_model_len");

  // The engine still serves a request that fits.
  EngineRequest ok = TextRequest("ok");
  ok.sampling.max_tokens = 4;
  Result result = Run(engine.get(), ok);
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.ids, std::vector<int32_t>(text_case_->greedy_ids.begin(),
                                             text_case_->greedy_ids.begin() + 4));

  ExpectNoLeaks(engine.get());

  // A live id cannot be reused. (A roomy cache and no stop ids: the request runs to the
  // model's length, so it is still live when the second Submit comes, however fast steps are.)
  std::unique_ptr<Engine> roomy = MakeEngine(DefaultConfig());
  EngineRequest slow = TextRequest("dup");
  slow.sampling.max_tokens = 0;
  slow.sampling.stop_token_ids.clear();
  absl::StatusOr<std::shared_ptr<RequestStream>> first = roomy->Submit(slow);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(roomy->Submit(slow).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(roomy->Cancel("dup"));
  EXPECT_EQ(Collect(first->get()).reason, FinishReason::kCancelled);
  ExpectNoLeaks(roomy.get());
}

TEST_F(EngineTest, AModelFailureFailsOnlyTheRequestThatCausedIt) {
  constexpr int32_t kPoison = 999;
  std::unique_ptr<Engine> engine = MakeEngine(DefaultConfig(), kPoison);
  EngineRequest poisoned = TextRequest("poisoned");
  poisoned.prompt_token_ids.insert(poisoned.prompt_token_ids.begin() + 5, kPoison);
  std::map<std::string, Result> results = RunTogether(
      engine.get(), {TextRequest("text"), poisoned, ImageRequest("image", "pixels0")});
  EXPECT_EQ(results["poisoned"].status.code(), absl::StatusCode::kInternal);
  ASSERT_TRUE(results["text"].status.ok()) << results["text"].status;
  EXPECT_EQ(results["text"].ids, text_case_->greedy_ids);
  ASSERT_TRUE(results["image"].status.ok()) << results["image"].status;
  EXPECT_EQ(results["image"].ids, mm_case_->greedy_ids);
  EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.failed_requests, 1);
  EXPECT_EQ(stats.completed_requests, 2);
  ExpectNoLeaks(engine.get());
}

TEST_F(EngineTest, CancellingRunningAndWaitingRequestsFreesTheirBlocks) {
  EngineConfig config = DefaultConfig();
  config.max_num_seqs = 1;  // the second request has to wait
  std::unique_ptr<Engine> engine = MakeEngine(config);
  EngineRequest running = TextRequest("running");
  running.sampling.max_tokens = 0;  // until the length limit
  EngineRequest waiting = TextRequest("waiting");
  absl::StatusOr<std::shared_ptr<RequestStream>> a = engine->Submit(running);
  absl::StatusOr<std::shared_ptr<RequestStream>> b = engine->Submit(waiting);
  ASSERT_TRUE(a.ok() && b.ok());
  // Wait for the running one to produce something.
  absl::StatusOr<TokenEvent> event = (*a)->Next(absl::Seconds(60));
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_TRUE(engine->Cancel("waiting"));
  Result waiting_result = Collect(b->get());
  EXPECT_EQ(waiting_result.reason, FinishReason::kCancelled);
  EXPECT_TRUE(waiting_result.ids.empty());
  EXPECT_TRUE(engine->Cancel("running"));
  EXPECT_EQ(Collect(a->get()).reason, FinishReason::kCancelled);
  EXPECT_FALSE(engine->Cancel("running"));  // no longer live
  EXPECT_EQ(engine->Stats().cancelled_requests, 2);
  ExpectNoLeaks(engine.get());
}

TEST_F(EngineTest, DrainFinishesInFlightWorkAndAbortCancelsIt) {
  {
    std::unique_ptr<Engine> engine = MakeEngine(DefaultConfig());
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < 4; ++i) {
      streams.push_back(*engine->Submit(TextRequest(absl::StrCat("t", i))));
    }
    engine->Shutdown(Engine::ShutdownMode::kDrain);
    EXPECT_EQ(engine->Submit(TextRequest("late")).status().code(),
              absl::StatusCode::kUnavailable);
    for (const auto& stream : streams) {
      Result result = Collect(stream.get());
      EXPECT_EQ(result.reason, FinishReason::kLength);
      EXPECT_EQ(result.ids, text_case_->greedy_ids);
    }
    EXPECT_FALSE(engine->Stats().accepting);
    ExpectNoLeaks(engine.get());
  }
  {
    std::unique_ptr<Engine> engine = MakeEngine(DefaultConfig());
    EngineRequest endless = TextRequest("endless");
    endless.sampling.max_tokens = 0;
    std::shared_ptr<RequestStream> stream = *engine->Submit(endless);
    engine->Shutdown(Engine::ShutdownMode::kAbort);
    EXPECT_EQ(Collect(stream.get()).reason, FinishReason::kCancelled);
    ExpectNoLeaks(engine.get());
  }
}

TEST_F(EngineTest, ExportsMetrics) {
  metrics::Registry registry;
  EngineConfig config = DefaultConfig();
  config.metrics_registry = &registry;
  std::unique_ptr<Engine> engine = MakeEngine(config);
  Result result = Run(engine.get(), TextRequest("m"));
  ASSERT_TRUE(result.status.ok());
  ExpectNoLeaks(engine.get());
  const std::string text = registry.Render();
  EXPECT_NE(text.find("glm4v_worker_kv_blocks_capacity 256"), std::string::npos) << text;
  EXPECT_NE(text.find("glm4v_worker_requests_total{outcome=\"length\"} 1"), std::string::npos);
  EXPECT_NE(text.find(absl::StrCat("glm4v_worker_generated_tokens_total ",
                                   text_case_->greedy_ids.size())),
            std::string::npos);
  EXPECT_NE(text.find("glm4v_worker_step_seconds_count"), std::string::npos);
}

TEST_F(EngineTest, KvBudgetInBytesSizesTheCache) {
  EngineConfig config;
  config.block_size = 16;
  const ModelConfig& model = (*decoder_)->config();
  const int64_t per_block =
      2LL * model.num_layers * 16 * model.multi_query_group_num * model.kv_channels * 4;
  config.kv_cache_bytes = per_block * 10 + per_block / 2;
  std::unique_ptr<Engine> engine = MakeEngine(config);
  EXPECT_EQ(engine->num_kv_blocks(), 10);
  EngineConfig none;
  none.kv_cache_bytes = per_block - 1;
  EXPECT_FALSE(
      Engine::Create(none, std::make_unique<DecoderModelRunner>(*decoder_)).ok());
}

}  // namespace
TEST_F(EngineTest, DeviceSamplingPathGivesTheHostPathsTokensAndLogprobs) {
  // Greedy, seeded sampling with a repetition penalty and logprobs, min_tokens suppression.
  auto requests = [] {
    std::vector<EngineRequest> out;
    EngineRequest greedy = TextRequest("greedy");
    greedy.sampling.logprobs = true;
    out.push_back(greedy);
    EngineRequest sampled = TextRequest("sampled");
    sampled.sampling.temperature = 0.9f;
    sampled.sampling.top_p = 0.9f;
    sampled.sampling.top_k = 50;
    sampled.sampling.repetition_penalty = 1.2f;
    sampled.sampling.seed = 77;
    sampled.sampling.max_tokens = 12;
    sampled.sampling.top_logprobs = 3;
    out.push_back(sampled);
    EngineRequest min_tokens = TextRequest("min_tokens");
    min_tokens.sampling.temperature = 1.0f;
    min_tokens.sampling.seed = 5;
    min_tokens.sampling.min_tokens = 6;
    min_tokens.sampling.max_tokens = 10;
    out.push_back(min_tokens);
    EngineRequest adjusted = TextRequest("adjusted");
    adjusted.sampling.temperature = 0.8f;
    adjusted.sampling.seed = 9;
    adjusted.sampling.max_tokens = 16;
    adjusted.sampling.presence_penalty = 0.7f;
    adjusted.sampling.frequency_penalty = 0.4f;
    adjusted.sampling.repetition_penalty = 1.1f;
    adjusted.sampling.logit_bias = {{3, 2.5f}, {11, -1.0f}};
    adjusted.sampling.logprobs = true;
    out.push_back(adjusted);
    return out;
  };
  std::unique_ptr<Engine> host = MakeEngine(DefaultConfig());
  std::unique_ptr<Engine> device = MakeEngine(DefaultConfig(), -1, /*device_sampling=*/true);
  std::map<std::string, Result> a = RunTogether(host.get(), requests());
  std::map<std::string, Result> b = RunTogether(device.get(), requests());
  for (const auto& [id, result] : a) {
    ASSERT_TRUE(result.status.ok()) << id << ": " << result.status;
    ASSERT_TRUE(b[id].status.ok()) << id << ": " << b[id].status;
    EXPECT_EQ(result.ids, b[id].ids) << id;
    ASSERT_EQ(result.logprobs.size(), b[id].logprobs.size()) << id;
    for (size_t t = 0; t < result.logprobs.size(); ++t) {
      EXPECT_EQ(result.logprobs[t].chosen.token_id, b[id].logprobs[t].chosen.token_id);
      EXPECT_FLOAT_EQ(result.logprobs[t].chosen.logprob, b[id].logprobs[t].chosen.logprob);
      ASSERT_EQ(result.logprobs[t].top.size(), b[id].logprobs[t].top.size());
      for (size_t k = 0; k < result.logprobs[t].top.size(); ++k) {
        EXPECT_EQ(result.logprobs[t].top[k].token_id, b[id].logprobs[t].top[k].token_id);
      }
    }
  }
  EXPECT_EQ(a["greedy"].logprobs.size(), a["greedy"].ids.size());
  EXPECT_EQ(a["sampled"].logprobs.size(), a["sampled"].ids.size());
  EXPECT_TRUE(a["min_tokens"].logprobs.empty());  // not asked for: none computed or sent
  EXPECT_GE(a["min_tokens"].ids.size(), 6u);
  ExpectNoLeaks(device.get());
}

// logit_bias and the presence / frequency penalties, checked step by step against what the
// unadjusted run's top-20 logprobs predict: greedy with adjustments picks the best adjusted
// logit, and while both runs agree their logits are the same.
TEST_F(EngineTest, LogitBiasAndPresenceFrequencyPenaltiesAdjustTheLogits) {
  std::unique_ptr<Engine> engine = MakeEngine(DefaultConfig());
  EngineRequest base = TextRequest("base");
  base.sampling.max_tokens = 160;  // long enough for the greedy text to repeat itself
  base.sampling.stop_token_ids.clear();
  base.sampling.top_logprobs = 20;
  Result baseline = Run(engine.get(), base);
  ASSERT_TRUE(baseline.status.ok()) << baseline.status;
  ASSERT_EQ(baseline.logprobs.size(), 160u);

  // A bias of -100 on the first greedy token hands step 0 to the runner-up.
  EngineRequest banned = base;
  banned.request_id = "banned";
  banned.sampling.logit_bias = {{baseline.ids[0], -100.0f}};
  Result b = Run(engine.get(), banned);
  ASSERT_TRUE(b.status.ok()) << b.status;
  EXPECT_EQ(b.ids[0], baseline.logprobs[0].top[1].token_id);
  EXPECT_EQ(std::find(b.ids.begin(), b.ids.end(), baseline.ids[0]), b.ids.end())
      << "a -100 bias bans the token";
  // +100 forces one token at every step.
  EngineRequest forced = base;
  forced.request_id = "forced";
  forced.sampling.logit_bias = {{77, 100.0f}};
  Result f = Run(engine.get(), forced);
  ASSERT_TRUE(f.status.ok());
  EXPECT_EQ(f.ids, std::vector<int32_t>(160, 77));

  // Presence + frequency: predict each step from the baseline's top 20 while the runs agree.
  constexpr float kPresence = 1.5f, kFrequency = 2.0f;
  EngineRequest penalized = base;
  penalized.request_id = "penalized";
  penalized.sampling.presence_penalty = kPresence;
  penalized.sampling.frequency_penalty = kFrequency;
  Result p = Run(engine.get(), penalized);
  ASSERT_TRUE(p.status.ok()) << p.status;
  absl::flat_hash_map<int32_t, int> counts;
  auto adjusted = [&](int32_t id, float logprob) {
    auto it = counts.find(id);
    return it == counts.end() ? logprob : logprob - (kPresence + kFrequency * it->second);
  };
  bool diverged = false;
  for (size_t t = 0; t < p.ids.size() && !diverged; ++t) {
    const std::vector<TokenLogprob>& top = baseline.logprobs[t].top;
    int32_t best = -1;
    float best_score = -INFINITY;
    for (const TokenLogprob& c : top) {
      if (adjusted(c.token_id, c.logprob) > best_score) {
        best_score = adjusted(c.token_id, c.logprob);
        best = c.token_id;
      }
    }
    // Penalties only lower logits: an id outside the top 20 cannot overtake a winner whose
    // adjusted score still beats the 20th logprob.
    if (best_score <= top.back().logprob) break;
    EXPECT_EQ(p.ids[t], best) << "step " << t;
    diverged = best != baseline.ids[t];
    ++counts[p.ids[t]];
  }
  EXPECT_TRUE(diverged) << "the penalties never changed a greedy choice: the test shows nothing";
  ExpectNoLeaks(engine.get());
}

}  // namespace glm4v::worker
