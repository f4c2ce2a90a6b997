// Failure behaviour of the socket communicator: bad configuration, a rank that hangs, and a
// rank process that dies. Every case must end in a clear error well before any test timeout.
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "worker/comm/socket_communicator.h"
#include "worker/comm/test_util.h"

namespace glm4v::comm {
namespace {

using ::glm4v::comm::testing::BindLoopbackGroup;
using ::glm4v::comm::testing::LoopbackGroup;
using ::glm4v::comm::testing::RunThreadedRanks;

bool Contains(const absl::Status& st, const std::string& text) {
  return std::string(st.message()).find(text) != std::string::npos;
}

TEST(SocketCommunicatorConfigTest, BadOptionsAreRejectedUpFront) {
  SocketCommunicatorOptions o;
  o.world_size = 2;
  o.rank = 2;
  o.rendezvous = "127.0.0.1:1";
  EXPECT_EQ(SocketCommunicator::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.rank = 1;
  o.rendezvous = "not-an-address";
  absl::Status st = SocketCommunicator::Create(o).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_TRUE(Contains(st, "not-an-address")) << st;
  o.rank = 0;
  o.rendezvous = "127.0.0.1:0";  // nobody could find rank 0
  st = SocketCommunicator::Create(o).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_TRUE(Contains(st, "port 0")) << st;
}

TEST(SocketCommunicatorConfigTest, UnreachableRendezvousFailsWithinConnectTimeout) {
  int port;
  {
    absl::StatusOr<SocketListener> l = SocketListener::Bind("127.0.0.1:0");
    ASSERT_TRUE(l.ok());
    port = l->port();
  }  // closed again: nothing listens there now
  SocketCommunicatorOptions o;
  o.world_size = 2;
  o.rank = 1;
  o.rendezvous = "127.0.0.1:" + std::to_string(port);
  o.connect_timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  absl::Status st = SocketCommunicator::Create(o).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_TRUE(Contains(st, "rank 0")) << st;
  EXPECT_TRUE(Contains(st, o.rendezvous)) << st;
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST(SocketCommunicatorConfigTest, PortInUseIsReported) {
  absl::StatusOr<SocketListener> taken = SocketListener::Bind("127.0.0.1:0");
  ASSERT_TRUE(taken.ok());
  SocketCommunicatorOptions o;
  o.world_size = 2;
  o.rendezvous = taken->address();
  absl::Status st = SocketCommunicator::Create(o).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_TRUE(Contains(st, "in use")) << st;
}

TEST(SocketCommunicatorConfigTest, MissingRanksMakeRendezvousTimeOutNamingThem) {
  absl::StatusOr<LoopbackGroup> group = BindLoopbackGroup(3);
  ASSERT_TRUE(group.ok());
  group->options.connect_timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  absl::Status st = SocketCommunicator::Create(group->options, std::move(group->listener)).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
  EXPECT_TRUE(Contains(st, "missing ranks: 1,2")) << st;
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST(SocketCommunicatorConfigTest, WorldSizeDisagreementIsRejectedOnBothSides) {
  absl::StatusOr<LoopbackGroup> group = BindLoopbackGroup(2);
  ASSERT_TRUE(group.ok());
  group->options.connect_timeout = absl::Seconds(2);
  SocketCommunicatorOptions other = group->options;
  other.rank = 1;
  other.world_size = 3;
  absl::Status peer_status;
  std::thread peer([&] { peer_status = SocketCommunicator::Create(other).status(); });
  absl::Status root_status =
      SocketCommunicator::Create(group->options, std::move(group->listener)).status();
  peer.join();
  EXPECT_EQ(root_status.code(), absl::StatusCode::kInvalidArgument) << root_status;
  EXPECT_EQ(peer_status.code(), absl::StatusCode::kFailedPrecondition) << peer_status;
  EXPECT_TRUE(Contains(peer_status, "world_size 3")) << peer_status;
}

TEST(SocketCommunicatorFailureTest, HungRankCausesDeadlineExceededNamingIt) {
  absl::StatusOr<LoopbackGroup> group = BindLoopbackGroup(3);
  ASSERT_TRUE(group.ok());
  group->options.timeout = absl::Milliseconds(300);
  absl::BlockingCounter others_done(2);
  std::vector<absl::Duration> elapsed(3);
  std::vector<absl::Status> results =
      RunThreadedRanks(*std::move(group), [&](SocketCommunicator& c) -> absl::Status {
        if (c.rank() == 2) {  // alive and connected, but never joins the collective
          others_done.Wait();  // stay connected until both others have given up
          return absl::OkStatus();
        }
        std::vector<float> v(1000, 1.0f);
        const absl::Time start = absl::Now();
        absl::Status st = c.AllReduceSum(v.data(), v.size());
        elapsed[c.rank()] = absl::Now() - start;
        others_done.DecrementCount();
        return st;
      });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(results[r].code(), absl::StatusCode::kDeadlineExceeded) << results[r];
    EXPECT_TRUE(Contains(results[r], "rank 2")) << results[r];
    EXPECT_LT(elapsed[r], absl::Seconds(2)) << "rank " << r;
    EXPECT_GE(elapsed[r], absl::Milliseconds(250)) << "rank " << r;
  }
}

// A rank process dies (here: rank 2 of 3, a forked child) -> the surviving ranks get
// UNAVAILABLE promptly, far sooner than the collective timeout. `die_inside`: the child enters
// the collective, sends part of its data, then exits; otherwise it exits without entering
// while the others are already waiting.
class RankDeathTest : public ::testing::TestWithParam<bool> {};

TEST_P(RankDeathTest, SurvivorsFailFastWithUnavailable) {
  const bool die_inside = GetParam();
  absl::StatusOr<LoopbackGroup> group = BindLoopbackGroup(3);
  ASSERT_TRUE(group.ok());
  group->options.timeout = absl::Seconds(20);  // must not be what ends the test
  const size_t kCount = 1 << 22;               // 16 MiB of f32 per rank

  // Fork before any communicator exists, so the child holds none of the survivors' sockets.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    SocketCommunicatorOptions o = group->options;
    o.rank = 2;
    absl::StatusOr<std::unique_ptr<SocketCommunicator>> c = SocketCommunicator::Create(o);
    if (!c.ok()) _exit(2);
    float x = 1.0f;
    if (!(*c)->AllReduceSum(&x, 1).ok() || x != 3.0f) _exit(3);
    if (die_inside) {
      std::thread([&] {
        std::vector<float> v(kCount, 1.0f);
        (void)(*c)->AllReduceSum(v.data(), v.size());
      }).detach();
    }
    absl::SleepFor(absl::Milliseconds(100));
    _exit(0);  // no destructors, no goodbye: like a crash
  }

  std::vector<absl::Duration> elapsed(2);
  group->options.world_size = 3;
  LoopbackGroup survivors = *std::move(group);
  // Only ranks 0 and 1 run here; rank 2 is the child.
  std::vector<absl::Status> results(2);
  std::optional<SocketListener> listener(std::move(survivors.listener));
  std::thread rank1([&] {
    SocketCommunicatorOptions o = survivors.options;
    o.rank = 1;
    absl::StatusOr<std::unique_ptr<SocketCommunicator>> c = SocketCommunicator::Create(o);
    if (!c.ok()) {
      results[1] = c.status();
      return;
    }
    float x = 1.0f;
    results[1] = (*c)->AllReduceSum(&x, 1);
    if (!results[1].ok()) return;
    if (die_inside) absl::SleepFor(absl::Milliseconds(300));  // child is inside and dies
    std::vector<float> v(kCount, 1.0f);
    const absl::Time start = absl::Now();
    results[1] = (*c)->AllReduceSum(v.data(), v.size());
    elapsed[1] = absl::Now() - start;
  });
  {
    SocketCommunicatorOptions o = survivors.options;
    o.rank = 0;
    absl::StatusOr<std::unique_ptr<SocketCommunicator>> c =
        SocketCommunicator::Create(o, *std::move(listener));
    if (!c.ok()) {
      results[0] = c.status();
    } else {
      float x = 1.0f;
      results[0] = (*c)->AllReduceSum(&x, 1);
      if (results[0].ok()) {
        if (die_inside) absl::SleepFor(absl::Milliseconds(300));
        std::vector<float> v(kCount, 1.0f);
        const absl::Time start = absl::Now();
        results[0] = (*c)->AllReduceSum(v.data(), v.size());
        elapsed[0] = absl::Now() - start;
      }
    }
  }
  rank1.join();
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  ASSERT_EQ(WEXITSTATUS(wstatus), 0) << "child failed before dying on purpose";

  bool someone_named_rank2 = false;
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(results[r].code(), absl::StatusCode::kUnavailable) << results[r];
    EXPECT_LT(elapsed[r], absl::Seconds(3)) << "rank " << r << ": " << results[r];
    someone_named_rank2 |= Contains(results[r], "rank 2");
  }
  EXPECT_TRUE(someone_named_rank2) << results[0] << " | " << results[1];
}

INSTANTIATE_TEST_SUITE_P(DeathPoint, RankDeathTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "InsideCollective" : "BeforeCollective";
                         });

}  // namespace
}  // namespace glm4v::comm
