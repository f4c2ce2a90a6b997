#include "worker/comm/socket_util.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <thread>

#include "gtest/gtest.h"

namespace glm4v::comm {
namespace {

TEST(ParseHostPortTest, AcceptsHostAndPort) {
  absl::StatusOr<HostPort> hp = ParseHostPort("127.0.0.1:29500");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 29500);
  hp = ParseHostPort("worker-0.svc:0");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->host, "worker-0.svc");
  EXPECT_EQ(hp->port, 0);
}

TEST(ParseHostPortTest, RejectsMalformedAddressesWithTheInputInTheMessage) {
  for (const char* bad : {"", "localhost", ":80", "host:", "host:http", "host:-1",
                          "host:65536", "host:99999999999"}) {
    absl::StatusOr<HostPort> hp = ParseHostPort(bad);
    ASSERT_FALSE(hp.ok()) << bad;
    EXPECT_EQ(hp.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(hp.status().message().find(std::string("\"") + bad + "\""), std::string::npos)
        << hp.status();
  }
}

TEST(ResolveIpv4Test, DottedQuadAndLocalhost) {
  absl::StatusOr<sockaddr_in> a = ResolveIpv4(HostPort{"127.0.0.1", 80});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(FormatSockaddr(*a), "127.0.0.1:80");
  a = ResolveIpv4(HostPort{"localhost", 81});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(FormatSockaddr(*a), "127.0.0.1:81");
  // Not an address and not a resolvable name (numeric parse fails; "999" octets are invalid).
  a = ResolveIpv4(HostPort{"999.1.1.1", 80});
  EXPECT_FALSE(a.ok());
}

TEST(SocketIoTest, TransfersLargeBuffersAndReportsPeerClose) {
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  absl::StatusOr<UniqueFd> listener = ListenOn(any, 4);
  ASSERT_TRUE(listener.ok()) << listener.status();
  absl::StatusOr<sockaddr_in> bound = LocalAddress(listener->get());
  ASSERT_TRUE(bound.ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  absl::StatusOr<UniqueFd> client = ConnectBefore(*bound, deadline, "server");
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<UniqueFd> server = AcceptBefore(listener->get(), deadline);
  ASSERT_TRUE(server.ok()) << server.status();

  // Bigger than the socket buffers: forces partial writes/reads on both sides.
  std::string out(8 << 20, '\0');
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(i * 131 + (i >> 13));
  std::string in(out.size(), '\0');
  std::thread writer([&] {
    EXPECT_TRUE(WriteAllBefore(client->get(), out.data(), out.size(), deadline, "server").ok());
  });
  ASSERT_TRUE(ReadAllBefore(server->get(), in.data(), in.size(), deadline, "client").ok());
  writer.join();
  EXPECT_TRUE(in == out);

  // Reading more than the peer sends before closing -> UNAVAILABLE naming the peer.
  ASSERT_TRUE(WriteAllBefore(client->get(), "abc", 3, deadline, "server").ok());
  client->reset();
  char buf[8];
  absl::Status st = ReadAllBefore(server->get(), buf, sizeof(buf), deadline, "rank 3");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_NE(st.message().find("rank 3"), std::string::npos) << st;
  EXPECT_NE(st.message().find("3 of 8"), std::string::npos) << st;
}

TEST(SocketIoTest, ReadTimesOutWhenPeerIsSilent) {
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  absl::StatusOr<UniqueFd> listener = ListenOn(any, 4);
  ASSERT_TRUE(listener.ok());
  absl::StatusOr<sockaddr_in> bound = LocalAddress(listener->get());
  ASSERT_TRUE(bound.ok());
  absl::StatusOr<UniqueFd> client =
      ConnectBefore(*bound, absl::Now() + absl::Seconds(5), "server");
  ASSERT_TRUE(client.ok());
  const absl::Time start = absl::Now();
  char buf[4];
  absl::Status st =
      ReadAllBefore(client->get(), buf, sizeof(buf), start + absl::Milliseconds(200), "rank 1");
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(SocketIoTest, ConnectToClosedPortFailsAtDeadline) {
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sockaddr_in closed;
  {
    absl::StatusOr<UniqueFd> l = ListenOn(any, 1);  // take a free port, then release it
    ASSERT_TRUE(l.ok());
    closed = *LocalAddress(l->get());
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<UniqueFd> c = ConnectBefore(closed, start + absl::Milliseconds(200), "rank 0");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();
  EXPECT_NE(c.status().message().find("rank 0"), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("refused"), std::string::npos) << c.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace glm4v::comm
