#include "services/gateway/worker_discovery.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace glm4v {
namespace {

std::string TempFile(const std::string& name, const std::string& text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(WorkerDiscoveryTest, FileListsHostPortsWithComments) {
  const std::string path =
      TempFile("workers.txt", "# decoder workers\n10.0.0.2:50071\n\n 10.0.0.1:50071  # rack b\n"
                              "10.0.0.2:50071\n");
  auto found = DiscoverWorkers("file://" + path);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, (std::vector<std::string>{"10.0.0.1:50071", "10.0.0.2:50071"}));
  TempFile("bad.txt", "10.0.0.1\n");
  EXPECT_EQ(DiscoverWorkers("file://" + TempFile("bad.txt", "10.0.0.1\n")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DiscoverWorkers("file:///no/such/file").status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(WorkerDiscoveryTest, DnsResolvesEveryAddressWithThePort) {
  auto found = DiscoverWorkers("dns:///localhost:50071");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_FALSE(found->empty());
  for (const std::string& a : *found) EXPECT_NE(a.find(":50071"), std::string::npos) << a;
  EXPECT_EQ(DiscoverWorkers("dns:///localhost").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DiscoverWorkers("dns:///no-such-host.invalid:1").status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(WorkerDiscoveryTest, RejectsUnknownSpecs) {
  for (const char* spec : {"", "http://x", "dns://x:1", "file://relative", "file://"}) {
    EXPECT_EQ(ValidateDiscoverySpec(spec).code(), absl::StatusCode::kInvalidArgument) << spec;
  }
  EXPECT_TRUE(ValidateDiscoverySpec("dns:///glm4v-worker:50071").ok());
  EXPECT_TRUE(ValidateDiscoverySpec("file:///etc/glm4v/workers").ok());
}

}  // namespace
}  // namespace glm4v
