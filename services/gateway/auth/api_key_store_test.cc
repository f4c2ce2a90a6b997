#include "services/gateway/auth/api_key_store.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace glm4v::auth {
namespace {

std::string WriteKeys(const std::string& name, const std::string& text) {
  const std::string path = std::string(::testing::TempDir()) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(Sha256HexTest, KnownDigests) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ApiKeyStoreTest, AuthorizesKnownKeysByTheirIds) {
  const std::string path = WriteKeys(
      "keys1", "# team keys\n\nsk-alpha-123456 id=team-a\n  sk-beta-7654321   \t\n");
  auto store = ApiKeyStore::Load({path});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->size(), 2);
  auto a = (*store)->Authorize("Bearer sk-alpha-123456");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->key_id(), "team-a");
  // Scheme case-insensitive (RFC 7235), surrounding spaces ignored; default id from the digest.
  auto b = (*store)->Authorize("  bearer   sk-beta-7654321 ");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->key_id(), "key-" + Sha256Hex("sk-beta-7654321").substr(0, 8));
}

TEST(ApiKeyStoreTest, RefusesMissingMalformedAndUnknownKeysWithoutEchoingThem) {
  auto store = ApiKeyStore::Load({WriteKeys("keys2", "sk-alpha-123456\n")});
  ASSERT_TRUE(store.ok());
  for (const char* header : {"", "   ", "sk-alpha-123456", "Basic c2stYWxwaGE=", "Bearer ",
                             "Bearer sk-alpha-1234567", "Bearer sk-wrong-secret"}) {
    auto lease = (*store)->Authorize(header);
    ASSERT_FALSE(lease.ok()) << header;
    EXPECT_EQ(lease.status().code(), absl::StatusCode::kUnauthenticated) << header;
    EXPECT_EQ(std::string(lease.status().message()).find("sk-"), std::string::npos)
        << lease.status();
  }
}

TEST(ApiKeyStoreTest, MaxConcurrentCapsLeasesInFlight) {
  auto store = ApiKeyStore::Load(
      {WriteKeys("keys3", "sk-limited-0001 id=limited max_concurrent=2\nsk-free-000002 id=free\n"),
       /*default_max_concurrent=*/1});
  ASSERT_TRUE(store.ok());
  {
    auto first = (*store)->Authorize("Bearer sk-limited-0001");
    auto second = (*store)->Authorize("Bearer sk-limited-0001");
    ASSERT_TRUE(first.ok() && second.ok());
    auto third = (*store)->Authorize("Bearer sk-limited-0001");
    ASSERT_FALSE(third.ok());
    EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_NE(std::string(third.status().message()).find("'limited'"), std::string::npos);
    // The other key has the store's default (1) and its own count.
    auto other = (*store)->Authorize("Bearer sk-free-000002");
    ASSERT_TRUE(other.ok());
    EXPECT_FALSE((*store)->Authorize("Bearer sk-free-000002").ok());
  }
  // Leases gone: slots free again.
  EXPECT_TRUE((*store)->Authorize("Bearer sk-limited-0001").ok());
}

TEST(ApiKeyStoreTest, MalformedFilesAreRefusedNamingTheLineNotTheKey) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"", "holds no keys"},
      {"# only a comment\n", "holds no keys"},
      {"short\n", "line 1: key shorter than 8"},
      {"sk-good-key-1\nsk-good-key-1\n", "line 2: the same key appears twice"},
      {"sk-good-key-1 id=a\nsk-good-key-2 id=a\n", "line 2: id 'a' used twice"},
      {"sk-good-key-1 id=bad/id\n", "line 1: id must be"},
      {"sk-good-key-1 max_concurrent=-1\n", "max_concurrent must be an integer >= 0"},
      {"sk-good-key-1 colour=blue\n", "unknown attribute"},
      {"sk-good-\x01key\n", "printable ASCII"},
  };
  int n = 0;
  for (const Case& c : cases) {
    auto store = ApiKeyStore::Load({WriteKeys("bad" + std::to_string(n++), c.text)});
    ASSERT_FALSE(store.ok()) << c.text;
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(store.status().message()).find(c.expect), std::string::npos)
        << store.status();
    EXPECT_EQ(std::string(store.status().message()).find("sk-good"), std::string::npos);
  }
  EXPECT_EQ(ApiKeyStore::Load({"/nonexistent/keys"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(ApiKeyStore::Load({WriteKeys("neg", "sk-good-key-1\n"), -1}).ok());
}

TEST(ApiKeyStoreTest, ReloadSwapsKeysAndKeepsThemWhenTheNewFileIsBad) {
  const std::string path = WriteKeys("reload", "sk-first-00001 id=first\n");
  auto store = ApiKeyStore::Load({path});
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->ReloadIfChanged().value(), false);  // unchanged: nothing to do
  // Replaced the way a Kubernetes Secret is: a new file renamed over the old one.
  const std::string next = WriteKeys("reload.next", "sk-second-0002 id=second\n");
  ASSERT_EQ(::rename(next.c_str(), path.c_str()), 0);
  ASSERT_EQ((*store)->ReloadIfChanged().value(), true);
  EXPECT_EQ((*store)->Authorize("Bearer sk-first-00001").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE((*store)->Authorize("Bearer sk-second-0002").ok());
  // A broken edit is reported and leaves the working keys in place.
  const std::string broken = WriteKeys("reload.broken", "x\n");
  ASSERT_EQ(::rename(broken.c_str(), path.c_str()), 0);
  EXPECT_FALSE((*store)->ReloadIfChanged().ok());
  EXPECT_TRUE((*store)->Authorize("Bearer sk-second-0002").ok());
  EXPECT_EQ((*store)->ReloadIfChanged().value(), false);  // reported once, not every poll
}

TEST(ApiKeyStoreTest, InFlightCountsFollowTheKeyAcrossARenameAndNotTheId) {
  const std::string path = WriteKeys("rename", "sk-alpha-00001 id=a max_concurrent=1\n");
  auto store = ApiKeyStore::Load({path});
  ASSERT_TRUE(store.ok());
  auto held = (*store)->Authorize("Bearer sk-alpha-00001");
  ASSERT_TRUE(held.ok());
  // The key is renamed and its old id given to a new key, while its request runs.
  const std::string next = WriteKeys(
      "rename.next", "sk-alpha-00001 id=b max_concurrent=1\nsk-other-00002 id=a max_concurrent=1\n");
  ASSERT_EQ(::rename(next.c_str(), path.c_str()), 0);
  ASSERT_EQ((*store)->ReloadIfChanged().value(), true);
  EXPECT_EQ((*store)->Authorize("Bearer sk-alpha-00001").status().code(),
            absl::StatusCode::kResourceExhausted);  // still one in flight, under its new id
  EXPECT_TRUE((*store)->Authorize("Bearer sk-other-00002").ok());  // "a" is a fresh key
  held = ApiKeyStore::Lease();  // assigning over a lease releases its slot
  EXPECT_TRUE((*store)->Authorize("Bearer sk-alpha-00001").ok());
}

}  // namespace
}  // namespace glm4v::auth
