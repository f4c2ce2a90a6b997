// The whole stack with a tensor-parallel worker: vision + one worker group of TP = 2
// (worker_server --tp_rank=0 serving gRPC, worker_server --tp_rank=1 following, meeting on a
// loopback port) + gateway, all separate processes on CPU.
//  - The public API returns exactly the golden greedy ids (multimodal and text prompts), the
//    same as TP = 1 (golden_stack_test).
//  - Killing the follower rank fails the in-flight stream and later requests with UNAVAILABLE
//    (no hang) and turns the worker's gRPC health NOT_SERVING.
#include <signal.h>

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/common/backend_channel.h"
#include "services/common/health_probe.h"
#include "tests/integration/stack_test_util.h"
#include "common/metrics/exposition_parser.h"
#include "tests/stack/service_stack.h"

namespace glm4v::testing {
namespace {

constexpr absl::Duration kTpTimeout = absl::Seconds(2);

StackOptions TpOptions() {
  StackOptions options;
  options.tp_size = 2;
  options.worker_flags = {absl::StrCat("--tp_timeout_ms=", absl::ToInt64Milliseconds(kTpTimeout)),
                          "--tp_stats_interval_ms=200"};
  return options;
}

grpc::Status Unary(v1::Glm4vService::Stub* stub, const v1::GenerateRequest& request,
                   v1::GenerateResponse* response,
                   absl::Duration timeout = absl::Seconds(20)) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return stub->Generate(&context, request, response);
}

absl::StatusOr<internal::WorkerStats> WorkerStats(internal::DecoderWorker::Stub* stub) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  internal::WorkerStats stats;
  grpc::Status status = stub->GetStats(&context, internal::StatsRequest(), &stats);
  if (!status.ok()) return absl::UnavailableError(status.error_message());
  return stats;
}

// Submit straight to the worker (text prompt, greedy), read to the end.
grpc::Status SubmitToWorker(internal::DecoderWorker::Stub* stub, uint32_t max_tokens) {
  internal::SubmitRequest request;
  for (uint32_t id : LoadGoldenCase("text").input_ids) request.add_prompt_token_ids(id);
  request.mutable_sampling()->set_max_tokens(max_tokens);
  request.mutable_sampling()->set_top_p(1);
  request.mutable_sampling()->set_repetition_penalty(1);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  auto reader = stub->Submit(&context, request);
  internal::TokenEvent event;
  while (reader->Read(&event)) {
  }
  return reader->Finish();
}

TEST(TpStackTest, GoldenGreedyIdsThroughThePublicApiWithTp2Worker) {
  auto started = Stack::Start(TpOptions());
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  ASSERT_FALSE(stack.follower(0, 1)->Poll()) << stack.FollowerLogTail(0, 1);

  auto worker = stack.WorkerStub(0);
  absl::StatusOr<internal::WorkerStats> stats = WorkerStats(worker.get());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->tensor_parallel_size(), 2u);
  EXPECT_TRUE(stats->healthy());

  const GoldenCase multimodal = LoadGoldenCase("multimodal");
  const GoldenCase text = LoadGoldenCase("text");
  ASSERT_TRUE(multimodal.has_image);
  struct Outcome {
    grpc::Status status;
    std::vector<uint32_t> ids;
    v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  };
  // Streaming and unary, both prompts at once (batched together on the group).
  std::vector<Outcome> outcomes(4);
  const GoldenCase* cases[4] = {&multimodal, &text, &multimodal, &text};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&stack, &outcomes, &cases, i] {
      auto stub = stack.GatewayStub();
      Outcome& out = outcomes[i];
      if (i < 2) {
        StreamResult result = RunStream(stub.get(), GoldenRequest(*cases[i]));
        out.status = result.status;
        out.ids = result.token_ids;
        out.finish = result.last.finish_reason();
      } else {
        v1::GenerateResponse response;
        out.status = Unary(stub.get(), GoldenRequest(*cases[i]), &response);
        out.ids.assign(response.token_ids().begin(), response.token_ids().end());
        out.finish = response.finish_reason();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const char* what[4] = {"multimodal stream", "text stream", "multimodal unary", "text unary"};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(outcomes[i].status.ok()) << what[i] << ": " << outcomes[i].status.error_message()
                                         << "\n" << stack.LogTail(Stack::kWorker);
    EXPECT_EQ(outcomes[i].ids, cases[i]->greedy_ids)
        << what[i] << ": got " << absl::StrJoin(outcomes[i].ids, ",") << " want "
        << absl::StrJoin(cases[i]->greedy_ids, ",");
    EXPECT_EQ(outcomes[i].finish, v1::FINISH_REASON_LENGTH) << what[i];
  }
  // The group is still whole.
  EXPECT_FALSE(stack.follower(0, 1)->Poll()) << stack.FollowerLogTail(0, 1);
  EXPECT_FALSE(stack.process(Stack::kWorker)->Poll()) << stack.LogTail(Stack::kWorker);

  // Rank 0's metrics carry every rank: the follower ran the same steps and holds weights.
  absl::SleepFor(absl::Milliseconds(800));
  auto scraped = stack.ScrapeMetrics(Stack::kWorker);
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  auto parsed = metrics::ParseExposition(*scraped);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  auto value = [&](const char* family, const char* rank) {
    const metrics::ParsedFamily* f = parsed->FindFamily(family);
    if (f == nullptr) return -1.0;
    for (const auto& sample : f->samples) {
      for (const auto& [k, v] : sample.labels) {
        if (k == "rank" && v == rank) return sample.value;
      }
    }
    return -1.0;
  };
  EXPECT_GT(value("glm4v_worker_rank_steps_total", "1"), 0) << *scraped;
  EXPECT_EQ(value("glm4v_worker_rank_steps_total", "1"), value("glm4v_worker_rank_steps_total", "0"));
  EXPECT_GT(value("glm4v_worker_rank_weight_bytes", "1"), 0);
  EXPECT_GT(value("glm4v_worker_rank_kv_cache_bytes", "1"), 0);
  EXPECT_GT(value("glm4v_worker_rank_resident_bytes", "1"), 0);
}

TEST(TpStackTest, KilledFollowerFailsRequestsWithUnavailableAndWorkerNotServing) {
  auto started = Stack::Start(TpOptions());
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = stack.GatewayStub();
  auto worker = stack.WorkerStub(0);
  v1::GenerateResponse response;
  grpc::Status warmup = Unary(stub.get(), GoldenRequest(LoadGoldenCase("text")), &response);
  ASSERT_TRUE(warmup.ok()) << warmup.error_message();

  // A long stream is in flight when the follower dies: it must end with UNAVAILABLE, promptly.
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto reader = stub->GenerateStream(
      &context, ChatRequest("Describe the colors and the shapes.", "", 1500));
  v1::GenerateStreamResponse chunk;
  ASSERT_TRUE(reader->Read(&chunk)) << reader->Finish().error_message();
  const absl::Time killed = absl::Now();
  stack.KillFollower(0, 1);
  while (reader->Read(&chunk)) {
    ASSERT_EQ(chunk.finish_reason(), v1::FINISH_REASON_UNSPECIFIED) << "stream finished first";
  }
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_LT(absl::Now() - killed, kTpTimeout + absl::Seconds(5)) << "the stream hung";

  // Rank 0's health goes NOT_SERVING (for good), it stays up to say so.
  absl::StatusOr<ServingState> state;
  const absl::Time deadline = absl::Now() + kTpTimeout + absl::Seconds(5);
  do {
    state = ProbeHealth(CreateBackendChannel(stack.worker_address(0)),
                        "glm4v.internal.DecoderWorker", absl::Seconds(2));
    if (state.ok() && *state == ServingState::kNotServing) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  ASSERT_TRUE(state.ok()) << state.status() << "\n" << stack.LogTail(Stack::kWorker);
  EXPECT_EQ(*state, ServingState::kNotServing) << stack.LogTail(Stack::kWorker);
  auto overall = ProbeHealth(CreateBackendChannel(stack.worker_address(0)), "", absl::Seconds(2));
  ASSERT_TRUE(overall.ok()) << overall.status();
  EXPECT_EQ(*overall, ServingState::kNotServing);
  EXPECT_FALSE(stack.process(Stack::kWorker)->Poll()) << stack.LogTail(Stack::kWorker);

  absl::StatusOr<internal::WorkerStats> stats = WorkerStats(worker.get());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_FALSE(stats->healthy());

  // Direct Submit and requests through the gateway fail fast with UNAVAILABLE.
  absl::Time start = absl::Now();
  status = SubmitToWorker(worker.get(), 4);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  start = absl::Now();
  status = Unary(stub.get(), GoldenRequest(LoadGoldenCase("text")), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_LT(absl::Now() - start, kTpTimeout + absl::Seconds(3));
  EXPECT_FALSE(stack.process(Stack::kGateway)->Poll()) << "gateway exited: " << stack.LogTail(Stack::kGateway);
}

}  // namespace
}  // namespace glm4v::testing
