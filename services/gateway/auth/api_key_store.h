// API keys of the public ports: who may call, under which id, with how many requests at once.
//
// The keys file holds one key per line; blank lines and lines starting with '#' are skipped.
// After the key, optional whitespace-separated attributes:
//
//   sk-team-a-3c9d...            id=team-a  max_concurrent=8
//   sk-batch-77f1...             id=batch
//
// `id` names the key in metrics and logs (default: "key-" + the first 8 hex digits of the
// key's SHA-256); `max_concurrent` caps its requests in flight (default: the store's
// default_max_concurrent, 0 = unlimited). Only SHA-256 digests are kept in memory, and neither
// keys nor digests are logged. ReloadIfChanged() swaps in a new file atomically; a malformed
// file keeps the previous keys (and says why), so a bad edit never locks every caller out.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace glm4v::auth {

class ApiKeyStore {
 public:
  struct Options {
    std::string path;
    int default_max_concurrent = 0;  // 0: unlimited
  };

  // Holds one of a key's concurrency slots until destroyed.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&&) = default;
    Lease& operator=(Lease&& other);  // releases the slot this one held
    ~Lease();
    const std::string& key_id() const { return key_id_; }

   private:
    friend class ApiKeyStore;
    std::string key_id_;
    std::shared_ptr<std::atomic<int>> inflight_;
  };

  // Reads `options.path`; an unreadable or malformed file (or one without keys) is an error.
  static absl::StatusOr<std::unique_ptr<ApiKeyStore>> Load(Options options);

  // The value of an `authorization` header or gRPC metadata entry ("Bearer KEY"). Errors:
  // UNAUTHENTICATED (missing, malformed or unknown key: the message never repeats the key) or
  // RESOURCE_EXHAUSTED (the key's max_concurrent requests are in flight). `key_id` (optional)
  // receives the id of a known key, also when its limit refuses it.
  absl::StatusOr<Lease> Authorize(absl::string_view authorization,
                                  std::string* key_id = nullptr) const;

  // Re-reads the file when its identity (inode, size, mtime) changed since the last read (a
  // Kubernetes Secret update swaps the file behind a symlink): true when it reloaded.
  absl::StatusOr<bool> ReloadIfChanged();

  int size() const;

 private:
  struct Entry {
    std::string id;
    int max_concurrent = 0;
  };

  explicit ApiKeyStore(Options options) : options_(std::move(options)) {}
  // Re-reads the file. On error the current keys stay.
  absl::Status Reload();
  // Parses the file into digest -> entry.
  absl::StatusOr<absl::flat_hash_map<std::string, Entry>> ReadFile() const;

  const Options options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> by_digest_ ABSL_GUARDED_BY(mu_);
  // Requests in flight per key digest; kept across reloads for the keys that stay (whatever
  // their id becomes), so a reload does not forget them.
  absl::flat_hash_map<std::string, std::shared_ptr<std::atomic<int>>> inflight_
      ABSL_GUARDED_BY(mu_);
  std::string identity_ ABSL_GUARDED_BY(mu_);  // FileIdentity of the file last read
};

// SHA-256 of `data` as 64 lowercase hex digits.
std::string Sha256Hex(absl::string_view data);

}  // namespace glm4v::auth
