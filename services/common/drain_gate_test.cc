#include "services/common/drain_gate.h"

#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace glm4v {
namespace {

TEST(DrainGateTest, RefusesNewEntriesOnceDraining) {
  DrainGate gate;
  auto first = gate.TryEnter();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(gate.inflight(), 1);
  gate.StartDrain();
  EXPECT_TRUE(gate.draining());
  EXPECT_FALSE(gate.TryEnter().has_value());
  EXPECT_EQ(gate.inflight(), 1);
}

TEST(DrainGateTest, WaitIdleReturnsWhenTheLastTicketLeaves) {
  DrainGate gate;
  auto ticket = gate.TryEnter();
  gate.StartDrain();
  std::thread releaser([&ticket]() {
    absl::SleepFor(absl::Milliseconds(50));
    ticket.reset();
  });
  EXPECT_TRUE(gate.WaitIdle(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(gate.inflight(), 0);
  releaser.join();
}

TEST(DrainGateTest, WaitIdleTimesOutWhileBusy) {
  DrainGate gate;
  auto ticket = gate.TryEnter();
  const absl::Time start = absl::Now();
  EXPECT_FALSE(gate.WaitIdle(start + absl::Milliseconds(30)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(29));
}

}  // namespace
}  // namespace glm4v
