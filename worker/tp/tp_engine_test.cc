// The serving engine on a tensor-parallel group: rank 0's TensorParallelModelRunner under the
// Engine, rank 1 in RunFollowerRank (a thread here; a process in production). Greedy requests
// reproduce the golden ids, and shutting the engine down stops the follower cleanly.
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "worker/comm/test_util.h"
#include "worker/engine.h"
#include "worker/tp/testing/golden_cases.h"
#include "worker/tp/tp_group.h"

namespace glm4v::worker::tp {
namespace {

TEST(TpEngineTest, Tp2GoldenGreedyIds) {
  auto cases = testing::LoadGoldenCases();
  ASSERT_TRUE(cases.ok()) << cases.status();
  auto group = comm::testing::BindLoopbackGroup(2);
  ASSERT_TRUE(group.ok()) << group.status();

  TensorParallelOptions options;
  options.model_dir = testing::kModelDir;
  options.tp_size = 2;
  options.rendezvous = group->options.rendezvous;
  options.timeout = absl::Seconds(10);
  options.connect_timeout = absl::Seconds(20);
  absl::Status follower_status = absl::UnknownError("not run");
  std::thread follower([&] {
    TensorParallelOptions mine = options;
    mine.tp_rank = 1;
    follower_status = RunFollowerRank(mine);
  });
  options.listener = std::make_shared<comm::SocketListener>(std::move(group->listener));
  auto runner = StartTensorParallelGroup(options);
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_EQ((*runner)->tp_size(), 2);
  EXPECT_EQ((*runner)->KvBlockShape(4).num_kv_heads, 1);  // 2 groups split 2 ways

  EngineConfig config;
  config.num_kv_blocks = 64;
  config.block_size = 4;
  auto engine = Engine::Create(config, *std::move(runner));
  ASSERT_TRUE(engine.ok()) << engine.status();

  // Both golden requests at once: batched steps mixing prefill and decode.
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const testing::GoldenCase& c : *cases) {
    EngineRequest request;
    request.request_id = c.kind;
    request.prompt_token_ids = c.input_ids;
    if (c.features.defined()) request.images.push_back({c.features, ""});
    request.sampling.temperature = 0;
    request.sampling.max_tokens = static_cast<int>(c.greedy_ids.size());
    auto stream = (*engine)->Submit(std::move(request));
    ASSERT_TRUE(stream.ok()) << stream.status();
    streams.push_back(*stream);
  }
  for (size_t i = 0; i < streams.size(); ++i) {
    std::vector<int32_t> ids;
    while (true) {
      absl::StatusOr<TokenEvent> event = streams[i]->Next(absl::Seconds(30));
      ASSERT_TRUE(event.ok()) << event.status();
      ids.insert(ids.end(), event->token_ids.begin(), event->token_ids.end());
      if (event->finish_reason != FinishReason::kNone) break;
    }
    EXPECT_EQ(ids, (*cases)[i].greedy_ids) << (*cases)[i].kind;
  }
  EXPECT_TRUE((*engine)->Stats().healthy);
  engine->reset();  // destroys the runner, which stops the follower
  follower.join();
  EXPECT_TRUE(follower_status.ok()) << follower_status;
}

}  // namespace
}  // namespace glm4v::worker::tp
