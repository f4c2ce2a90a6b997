// The sharded decoder on CPU over the socket communicator (ranks as threads on loopback):
// TP = 1, 2 and 4 reproduce the golden prompt logits and greedy ids of tiny-glm4v. The tiny
// model has 4 heads and 2 KV groups, so TP = 4 runs with replicated KV groups.
#include <cstring>
#include <vector>

#include "common/model_config.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "model/decoder.h"
#include "model/greedy_generate.h"
#include "worker/comm/test_util.h"
#include "worker/tp/testing/golden_cases.h"

namespace glm4v::worker::tp {
namespace {

using testing::GoldenCase;

// Parameter: (tp_size, decode_context_parallel).
class TpDecoderTest : public ::testing::TestWithParam<std::pair<int, int>> {
 protected:
  static void SetUpTestSuite() {
    auto cases = testing::LoadGoldenCases();
    ASSERT_TRUE(cases.ok()) << cases.status();
    cases_ = new std::vector<GoldenCase>(std::move(*cases));
  }
  static void TearDownTestSuite() { delete cases_; }
  static std::vector<GoldenCase>* cases_;
};
std::vector<GoldenCase>* TpDecoderTest::cases_ = nullptr;

absl::StatusOr<GreedyResult> Generate(const GoldenCase& c, const TensorParallelContext& tp) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(testing::kModelDir));
  ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(testing::kModelDir));
  ASSIGN_OR_RETURN(Backend * cpu, GetBackend("cpu"));
  ASSIGN_OR_RETURN(std::unique_ptr<Decoder> decoder, Decoder::Load(ckpt, config, cpu, tp));
  GreedyOptions options;
  options.max_new_tokens = static_cast<int>(c.greedy_ids.size());
  options.return_prompt_logits = true;
  options.block_size = 4;
  return GenerateGreedy(*decoder, c.prompt, c.features, options);
}

TEST_P(TpDecoderTest, GoldenLogitsAndGreedyIds) {
  const auto [tp, dcp] = GetParam();
  for (const GoldenCase& c : *cases_) {
    SCOPED_TRACE(c.kind);
    std::vector<absl::StatusOr<GreedyResult>> results(tp, absl::UnknownError("not run"));
    if (tp == 1) {
      results[0] = Generate(c, {});  // no communicator: the unsharded model
    } else {
      auto group = comm::testing::BindLoopbackGroup(tp);
      ASSERT_TRUE(group.ok()) << group.status();
      std::vector<absl::Status> statuses = comm::testing::RunThreadedRanks(
          std::move(*group), [&](comm::SocketCommunicator& comm) {
            results[comm.rank()] = Generate(c, {comm.rank(), tp, &comm, dcp});
            return results[comm.rank()].status();
          });
      for (const absl::Status& s : statuses) ASSERT_TRUE(s.ok()) << s;
    }
    for (int r = 0; r < tp; ++r) {
      SCOPED_TRACE(::testing::Message() << "rank " << r);
      ASSERT_TRUE(results[r].ok()) << results[r].status();
      EXPECT_TRUE(testing::CompareLogits(results[r]->prompt_logits, c.prompt_logits).ok())
          << testing::CompareLogits(results[r]->prompt_logits, c.prompt_logits);
      EXPECT_EQ(results[r]->ids, c.greedy_ids);
      // Every rank sees bit-identical logits (deterministic all-reduce + all-gather).
      ASSERT_EQ(results[r]->step_logits.numel(), results[0]->step_logits.numel());
      EXPECT_EQ(0, std::memcmp(results[r]->step_logits.raw_data(),
                               results[0]->step_logits.raw_data(),
                               results[0]->step_logits.nbytes()));
    }
  }
}

// TP = 4 with 2 KV groups: replicated KV (dcp 1) and each group's tokens split over its two
// ranks (dcp 2, the default the worker picks).
INSTANTIATE_TEST_SUITE_P(TensorParallel, TpDecoderTest,
                         ::testing::Values(std::make_pair(1, 1), std::make_pair(2, 1),
                                           std::make_pair(4, 1), std::make_pair(4, 2)),
                         [](const ::testing::TestParamInfo<std::pair<int, int>>& info) {
                           return "tp" + std::to_string(info.param.first) + "_dcp" +
                                  std::to_string(info.param.second);
                         });

TEST(TpDecoderErrors, UnsplittableGroupIsAClearError) {
  auto config = LoadModelConfig(testing::kModelDir).value();
  auto ckpt = Checkpoint::Open(testing::kModelDir).value();
  auto group = comm::testing::BindLoopbackGroup(3);
  ASSERT_TRUE(group.ok());
  std::vector<absl::Status> statuses = comm::testing::RunThreadedRanks(
      std::move(*group), [&](comm::SocketCommunicator& comm) {
        return Decoder::Load(ckpt, config, GetBackend("cpu").value(), {comm.rank(), 3, &comm})
            .status();
      });
  for (const absl::Status& s : statuses) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("4 attention heads are not divisible by 3"), std::string::npos)
        << s;
  }
  // A sharded decoder without a communicator is refused too.
  EXPECT_EQ(Decoder::Load(ckpt, config, GetBackend("cpu").value(), {0, 2, nullptr})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm4v::worker::tp
