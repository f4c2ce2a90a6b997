#include "tools/common/target_address.h"

#include "gtest/gtest.h"

namespace glm4v::tools {
namespace {

TEST(TargetAddressTest, Loopback) {
  for (const char* t : {"127.0.0.1:50051", "localhost:50051", "LOCALHOST:1", "127.1.2.3:80",
                        "[::1]:50051", "::1", "ipv4:127.0.0.1:50051", "ipv6:[::1]:50051",
                        "dns:///localhost:50051", "unix:/tmp/gw.sock", "127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackTarget(t)) << t;
  }
}

TEST(TargetAddressTest, NotLoopback) {
  for (const char* t : {"10.0.0.1:50051", "example.com:443", "0.0.0.0:50051", "[::]:50051",
                        "128.0.0.1:1", "localhost.example.com:1", "[::1:50051", "",
                        "dns:///gateway.prod:50051", "192.168.1.1"}) {
    EXPECT_FALSE(IsLoopbackTarget(t)) << t;
  }
}

}  // namespace
}  // namespace glm4v::tools
