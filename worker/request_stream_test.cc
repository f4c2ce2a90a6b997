#include "worker/request_stream.h"

#include <thread>

#include "gtest/gtest.h"

namespace glm4v::worker {
namespace {

TokenEvent Tokens(std::vector<int32_t> ids, FinishReason reason = FinishReason::kNone) {
  TokenEvent event;
  event.token_ids = std::move(ids);
  event.logprobs.resize(event.token_ids.size());
  event.finish_reason = reason;
  return event;
}

TEST(RequestStreamTest, TimesOutWhenNothingArrives) {
  RequestStream stream("r");
  EXPECT_TRUE(absl::IsDeadlineExceeded(stream.Next(absl::Milliseconds(5)).status()));
}

TEST(RequestStreamTest, MergesPendingEventsAndEndsAfterTheFinalOne) {
  RequestStream stream("r");
  TokenEvent first = Tokens({1, 2});
  first.prompt_tokens = 9;
  stream.Push(first);
  stream.Push(Tokens({3}));
  stream.Push(Tokens({4}, FinishReason::kStop));
  stream.Push(Tokens({5}));  // after the end: dropped
  EXPECT_TRUE(stream.closed());
  absl::StatusOr<TokenEvent> event = stream.Next(absl::ZeroDuration());
  ASSERT_TRUE(event.ok());
  EXPECT_EQ(event->token_ids, (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(event->logprobs.size(), 4u);
  EXPECT_EQ(event->prompt_tokens, 9);
  EXPECT_EQ(event->finish_reason, FinishReason::kStop);
  EXPECT_TRUE(absl::IsOutOfRange(stream.Next(absl::Seconds(1)).status()));
}

TEST(RequestStreamTest, DeliversTokensBeforeTheError) {
  RequestStream stream("r");
  stream.Push(Tokens({1}));
  stream.Fail(absl::InternalError("boom"));
  ASSERT_TRUE(stream.Next(absl::ZeroDuration()).ok());
  EXPECT_EQ(stream.Next(absl::ZeroDuration()).status().code(), absl::StatusCode::kInternal);
}

TEST(RequestStreamTest, WakesABlockedReader) {
  RequestStream stream("r");
  std::thread producer([&] {
    absl::SleepFor(absl::Milliseconds(20));
    stream.Push(Tokens({7}, FinishReason::kLength));
  });
  absl::StatusOr<TokenEvent> event = stream.Next(absl::Seconds(10));
  producer.join();
  ASSERT_TRUE(event.ok());
  EXPECT_EQ(event->token_ids, std::vector<int32_t>{7});
}

}  // namespace
}  // namespace glm4v::worker
