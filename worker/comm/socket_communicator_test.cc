#include "worker/comm/socket_communicator.h"

#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/dtype.h"
#include "gtest/gtest.h"
#include "worker/comm/communicator.h"
#include "worker/comm/test_util.h"

namespace glm4v::comm {
namespace {

using ::glm4v::comm::testing::BindLoopbackGroup;
using ::glm4v::comm::testing::LoopbackGroup;
using ::glm4v::comm::testing::RunThreadedRanks;

// Values with varied exponents and signs, so that a different summation order changes bits.
std::vector<float> RankData(int rank, size_t count, uint32_t salt) {
  std::mt19937 gen(rank * 7919 + salt);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-12, 12);
  std::vector<float> v(count);
  for (float& x : v) x = std::ldexp(mantissa(gen), exponent(gen));
  return v;
}

// Reference: sequential f32 sum in rank order, the order the contract promises.
std::vector<float> RankOrderSum(int world, size_t count, uint32_t salt) {
  std::vector<float> sum = RankData(0, count, salt);
  for (int r = 1; r < world; ++r) {
    std::vector<float> x = RankData(r, count, salt);
    for (size_t i = 0; i < count; ++i) sum[i] += x[i];
  }
  return sum;
}

LoopbackGroup Group(int world, size_t chunk_bytes) {
  absl::StatusOr<LoopbackGroup> group = BindLoopbackGroup(world);
  EXPECT_TRUE(group.ok()) << group.status();
  group->options.chunk_bytes = chunk_bytes;
  return *std::move(group);
}

void ExpectAllOk(const std::vector<absl::Status>& results) {
  for (size_t r = 0; r < results.size(); ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

struct Param {
  int world;
  size_t chunk_bytes;
};
void PrintTo(const Param& p, std::ostream* os) {
  *os << "tp=" << p.world << " chunk_bytes=" << p.chunk_bytes;
}

class SocketCommunicatorTest : public ::testing::TestWithParam<Param> {};

const size_t kSizes[] = {0, 1, 2, 3, 5, 17, 1000, 4096, 4096 * 8 + 3, 100003};

TEST_P(SocketCommunicatorTest, AllReduceF32MatchesRankOrderSumOnEveryRank) {
  const int world = GetParam().world;
  std::vector<std::vector<std::vector<float>>> out(world);  // [rank][size index]
  ExpectAllOk(RunThreadedRanks(Group(world, GetParam().chunk_bytes), [&](SocketCommunicator& c) {
    EXPECT_EQ(c.world_size(), world);
    for (size_t s = 0; s < std::size(kSizes); ++s) {
      std::vector<float> v = RankData(c.rank(), kSizes[s], s);
      absl::Status st = c.AllReduceSum(v.data(), v.size());
      if (!st.ok()) return st;
      out[c.rank()].push_back(std::move(v));
    }
    return absl::OkStatus();
  }));
  for (size_t s = 0; s < std::size(kSizes); ++s) {
    const std::vector<float> want = RankOrderSum(world, kSizes[s], s);
    for (int r = 0; r < world; ++r) {
      ASSERT_EQ(out[r].size(), std::size(kSizes));
      ASSERT_EQ(out[r][s].size(), want.size());
      // Bitwise: every rank must hold exactly the rank-order sum.
      // (memcmp of an empty vector's null data() is undefined, hence the size check.)
      EXPECT_TRUE(want.empty() ||
                  std::memcmp(out[r][s].data(), want.data(), want.size() * sizeof(float)) == 0)
          << "rank " << r << " size " << kSizes[s];
    }
  }
}

TEST_P(SocketCommunicatorTest, AllReduceBF16AccumulatesInF32AndRoundsOnce) {
  const int world = GetParam().world;
  std::vector<std::vector<std::vector<uint16_t>>> out(world);
  auto bf16_data = [](int rank, size_t count, uint32_t salt) {
    std::vector<float> f = RankData(rank, count, salt + 100);
    std::vector<uint16_t> b(count);
    for (size_t i = 0; i < count; ++i) b[i] = F32ToBF16(f[i]);
    return b;
  };
  ExpectAllOk(RunThreadedRanks(Group(world, GetParam().chunk_bytes), [&](SocketCommunicator& c) {
    for (size_t s = 0; s < std::size(kSizes); ++s) {
      std::vector<uint16_t> v = bf16_data(c.rank(), kSizes[s], s);
      absl::Status st = c.AllReduceSumBF16(v.data(), v.size());
      if (!st.ok()) return st;
      out[c.rank()].push_back(std::move(v));
    }
    return absl::OkStatus();
  }));
  for (size_t s = 0; s < std::size(kSizes); ++s) {
    std::vector<float> acc(kSizes[s], 0.0f);
    for (int r = 0; r < world; ++r) {
      std::vector<uint16_t> x = bf16_data(r, kSizes[s], s);
      for (size_t i = 0; i < acc.size(); ++i) {
        acc[i] = r == 0 ? BF16ToF32(x[i]) : acc[i] + BF16ToF32(x[i]);
      }
    }
    std::vector<uint16_t> want(acc.size());
    for (size_t i = 0; i < acc.size(); ++i) want[i] = F32ToBF16(acc[i]);
    for (int r = 0; r < world; ++r) {
      ASSERT_EQ(out[r].size(), std::size(kSizes));
      EXPECT_EQ(out[r][s], want) << "rank " << r << " size " << kSizes[s];
    }
  }
}

TEST_P(SocketCommunicatorTest, AllGatherConcatenatesInRankOrder) {
  const int world = GetParam().world;
  const size_t sizes[] = {0, 1, 7, 4096, (256 << 10) + 5};
  auto chunk = [](int rank, size_t bytes) {
    std::string s(bytes, '\0');
    for (size_t i = 0; i < bytes; ++i) s[i] = static_cast<char>(rank * 31 + i * 7 + (i >> 9));
    return s;
  };
  std::vector<std::vector<std::string>> out(world);
  ExpectAllOk(RunThreadedRanks(Group(world, GetParam().chunk_bytes), [&](SocketCommunicator& c) {
    for (size_t bytes : sizes) {
      const std::string in = chunk(c.rank(), bytes);
      std::string gathered(world * bytes, 'x');
      absl::Status st = c.AllGather(in.data(), gathered.data(), bytes);
      if (!st.ok()) return st;
      out[c.rank()].push_back(gathered);
      // In place: the input already sits at this rank's slot of the output.
      std::string inplace(world * bytes, 'y');
      if (bytes > 0) std::memcpy(&inplace[c.rank() * bytes], in.data(), bytes);
      st = c.AllGather(inplace.data() + c.rank() * bytes, inplace.data(), bytes);
      if (!st.ok()) return st;
      if (inplace != gathered) return absl::InternalError("in-place all-gather differs");
    }
    return absl::OkStatus();
  }));
  for (size_t i = 0; i < std::size(sizes); ++i) {
    std::string want;
    for (int r = 0; r < world; ++r) want += chunk(r, sizes[i]);
    for (int r = 0; r < world; ++r) {
      ASSERT_EQ(out[r].size(), std::size(sizes));
      EXPECT_TRUE(out[r][i] == want) << "rank " << r << " bytes " << sizes[i];
    }
  }
}

TEST_P(SocketCommunicatorTest, BroadcastFromEveryRoot) {
  const int world = GetParam().world;
  const size_t sizes[] = {0, 1, 13, (1 << 20) + 1};
  auto payload = [](int root, size_t bytes) {
    std::string s(bytes, '\0');
    for (size_t i = 0; i < bytes; ++i) s[i] = static_cast<char>(root * 101 + i * 13);
    return s;
  };
  ExpectAllOk(RunThreadedRanks(Group(world, GetParam().chunk_bytes), [&](SocketCommunicator& c) {
    for (int root = 0; root < world; ++root) {
      for (size_t bytes : sizes) {
        std::string buf = c.rank() == root ? payload(root, bytes) : std::string(bytes, '?');
        absl::Status st = c.Broadcast(buf.data(), bytes, root);
        if (!st.ok()) return st;
        if (buf != payload(root, bytes)) {
          return absl::InternalError(absl::StrCat("wrong broadcast payload, root ", root,
                                                  " bytes ", bytes));
        }
      }
      // Variable-length control message (what rank 0 sends each decode step).
      std::string msg = c.rank() == root ? std::string(1000 + root, 'm') : "stale";
      absl::Status st = BroadcastString(c, &msg, root);
      if (!st.ok()) return st;
      if (msg != std::string(1000 + root, 'm')) return absl::InternalError("BroadcastString");
      std::string empty = c.rank() == root ? "" : "stale";
      st = BroadcastString(c, &empty, root);
      if (!st.ok()) return st;
      if (!empty.empty()) return absl::InternalError("empty BroadcastString");
    }
    return absl::OkStatus();
  }));
}

TEST_P(SocketCommunicatorTest, BarrierWaitsForTheLastRank) {
  const int world = GetParam().world;
  const int last = world - 1;
  absl::Mutex mu;
  absl::Time last_entered = absl::InfiniteFuture();
  std::vector<absl::Time> left(world);
  ExpectAllOk(RunThreadedRanks(Group(world, GetParam().chunk_bytes), [&](SocketCommunicator& c) {
    if (c.rank() == last) {
      absl::SleepFor(absl::Milliseconds(150));
      absl::MutexLock lock(&mu);
      last_entered = absl::Now();
    }
    absl::Status st = c.Barrier();
    absl::MutexLock lock(&mu);
    left[c.rank()] = absl::Now();
    return st;
  }));
  for (int r = 0; r < world; ++r) EXPECT_GE(left[r], last_entered) << "rank " << r;
}

TEST_P(SocketCommunicatorTest, ManySmallMixedCollectivesStayInStep) {
  const int world = GetParam().world;
  ExpectAllOk(RunThreadedRanks(Group(world, GetParam().chunk_bytes), [&](SocketCommunicator& c) {
    for (int step = 0; step < 200; ++step) {
      float x = static_cast<float>(c.rank() + step);
      absl::Status st = c.AllReduceSum(&x, 1);
      if (!st.ok()) return st;
      const float want = static_cast<float>(world * step + world * (world - 1) / 2);
      if (x != want) return absl::InternalError(absl::StrCat("step ", step, ": ", x));
      int32_t id = c.rank() == 0 ? step * 3 : -1;
      st = c.Broadcast(&id, sizeof(id), 0);
      if (!st.ok()) return st;
      if (id != step * 3) return absl::InternalError("broadcast out of step");
    }
    return c.Barrier();
  }));
}

TEST_P(SocketCommunicatorTest, MismatchedCollectivesFailOnBothSides) {
  const int world = GetParam().world;
  std::vector<absl::Status> results =
      RunThreadedRanks(Group(world, GetParam().chunk_bytes), [&](SocketCommunicator& c) {
        std::vector<float> v(c.rank() == 0 ? 10 : 11, 1.0f);  // rank 0 disagrees on the size
        absl::Status st = c.AllReduceSum(v.data(), v.size());
        if (st.ok()) return st;
        // Broken from now on: later calls report the same failure without touching the wire.
        absl::Status again = c.Barrier();
        EXPECT_EQ(again.code(), st.code()) << again;
        return st;
      });
  for (int r = 0; r < world; ++r) {
    EXPECT_FALSE(results[r].ok()) << "rank " << r;
  }
  EXPECT_EQ(results[0].code(), absl::StatusCode::kFailedPrecondition) << results[0];
  EXPECT_NE(results[0].message().find("collective mismatch"), std::string::npos) << results[0];
}

INSTANTIATE_TEST_SUITE_P(Worlds, SocketCommunicatorTest,
                         ::testing::Values(Param{2, 1 << 20}, Param{4, 1 << 20},
                                           Param{2, 64}, Param{4, 200}),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return absl::StrCat("tp", info.param.world, "_chunk",
                                               info.param.chunk_bytes);
                         });

TEST(SocketCommunicatorSingleRankTest, WorldOfOneNeedsNoNetwork) {
  SocketCommunicatorOptions options;  // rank 0 of 1, no rendezvous
  absl::StatusOr<std::unique_ptr<SocketCommunicator>> comm = SocketCommunicator::Create(options);
  ASSERT_TRUE(comm.ok()) << comm.status();
  std::vector<float> v = {1.5f, -2.0f};
  ASSERT_TRUE((*comm)->AllReduceSum(v.data(), v.size()).ok());
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.0f}));
  int32_t in = 42, out = 0;
  ASSERT_TRUE((*comm)->AllGather(&in, &out, sizeof(in)).ok());
  EXPECT_EQ(out, 42);
  EXPECT_TRUE((*comm)->Broadcast(&in, sizeof(in), 0).ok());
  EXPECT_EQ((*comm)->Broadcast(&in, sizeof(in), 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*comm)->Barrier().ok());
}

}  // namespace
}  // namespace glm4v::comm
