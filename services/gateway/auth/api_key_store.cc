#include "services/gateway/auth/api_key_store.h"

#include <openssl/evp.h>

#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/file_identity.h"

namespace glm4v::auth {
namespace {

constexpr absl::string_view kBearer = "bearer ";

// Key ids become metric label values: keep them to a safe alphabet.
bool ValidKeyId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

ApiKeyStore::Lease::~Lease() {
  if (inflight_ != nullptr) inflight_->fetch_sub(1);
}

ApiKeyStore::Lease& ApiKeyStore::Lease::operator=(Lease&& other) {
  if (this != &other) {
    if (inflight_ != nullptr) inflight_->fetch_sub(1);
    key_id_ = std::move(other.key_id_);
    inflight_ = std::move(other.inflight_);
  }
  return *this;
}

absl::StatusOr<std::unique_ptr<ApiKeyStore>> ApiKeyStore::Load(Options options) {
  if (options.default_max_concurrent < 0) {
    return absl::InvalidArgumentError("api keys: default max_concurrent must be >= 0");
  }
  std::unique_ptr<ApiKeyStore> store(new ApiKeyStore(std::move(options)));
  absl::Status status = store->Reload();
  if (!status.ok()) return status;
  return store;
}

absl::StatusOr<absl::flat_hash_map<std::string, ApiKeyStore::Entry>> ApiKeyStore::ReadFile()
    const {
  const std::string& path = options_.path;
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("api keys file ", path, " cannot be read"));
  absl::flat_hash_map<std::string, Entry> keys;
  absl::flat_hash_map<std::string, int> ids;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    // Errors name the line, never its content: the line holds a secret.
    const std::string where = absl::StrCat("api keys file ", path, " line ", number, ": ");
    std::vector<absl::string_view> fields =
        absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const std::string key(fields[0]);
    if (key.size() < 8) return absl::InvalidArgumentError(where + "key shorter than 8 characters");
    for (char c : key) {
      if (c < 0x21 || c > 0x7e) {
        return absl::InvalidArgumentError(where + "key must be printable ASCII without spaces");
      }
    }
    const std::string digest = Sha256Hex(key);
    Entry entry;
    entry.id = absl::StrCat("key-", digest.substr(0, 8));
    entry.max_concurrent = options_.default_max_concurrent;
    for (size_t i = 1; i < fields.size(); ++i) {
      absl::string_view value = fields[i];
      if (absl::ConsumePrefix(&value, "id=")) {
        if (!ValidKeyId(value)) {
          return absl::InvalidArgumentError(
              where + "id must be 1-64 characters of letters, digits, '-', '_', '.'");
        }
        entry.id = std::string(value);
      } else if (absl::ConsumePrefix(&value, "max_concurrent=")) {
        if (!absl::SimpleAtoi(value, &entry.max_concurrent) || entry.max_concurrent < 0) {
          return absl::InvalidArgumentError(where + "max_concurrent must be an integer >= 0");
        }
      } else {
        return absl::InvalidArgumentError(
            where + "unknown attribute (expected id=NAME or max_concurrent=N)");
      }
    }
    if (!keys.emplace(digest, entry).second) {
      return absl::InvalidArgumentError(where + "the same key appears twice");
    }
    if (++ids[entry.id] > 1) {
      return absl::InvalidArgumentError(absl::StrCat(where, "id '", entry.id, "' used twice"));
    }
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("api keys file ", path, " holds no keys"));
  }
  return keys;
}

absl::Status ApiKeyStore::Reload() {
  // Identity before content: a change while reading is seen by the next check.
  const std::string identity = FileIdentity({options_.path});
  auto keys = ReadFile();
  absl::MutexLock lock(&mu_);
  identity_ = identity;  // a broken file is reported once, not on every poll
  if (!keys.ok()) return keys.status();
  // Counters follow the key, not its id: a key renamed by the reload keeps counting its
  // requests in flight, and an id moved to another key does not hand that key its count.
  for (const auto& [digest, entry] : *keys) {
    auto& counter = inflight_[digest];
    if (counter == nullptr) counter = std::make_shared<std::atomic<int>>(0);
  }
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    // A removed key's leases keep their own reference until they end.
    if (!keys->contains(it->first)) {
      inflight_.erase(it++);
    } else {
      ++it;
    }
  }
  by_digest_ = *std::move(keys);
  return absl::OkStatus();
}

absl::StatusOr<bool> ApiKeyStore::ReloadIfChanged() {
  {
    absl::MutexLock lock(&mu_);
    if (FileIdentity({options_.path}) == identity_) return false;
  }
  absl::Status status = Reload();
  if (!status.ok()) return status;
  return true;
}

absl::StatusOr<ApiKeyStore::Lease> ApiKeyStore::Authorize(absl::string_view authorization,
                                                          std::string* key_id) const {
  absl::string_view value = absl::StripAsciiWhitespace(authorization);
  if (value.empty()) {
    return absl::UnauthenticatedError(
        "missing API key: send the header 'Authorization: Bearer <key>'");
  }
  if (value.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError(
        "malformed Authorization: expected 'Bearer <key>'");
  }
  const std::string digest = Sha256Hex(absl::StripAsciiWhitespace(value.substr(kBearer.size())));
  Lease lease;
  int limit = 0;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = by_digest_.find(digest);
    if (it == by_digest_.end()) return absl::UnauthenticatedError("invalid API key");
    lease.key_id_ = it->second.id;
    limit = it->second.max_concurrent;
    lease.inflight_ = inflight_.at(digest);
  }
  if (key_id != nullptr) *key_id = lease.key_id_;
  const int before = lease.inflight_->fetch_add(1);
  if (limit > 0 && before >= limit) {
    lease.inflight_->fetch_sub(1);
    lease.inflight_ = nullptr;
    return absl::ResourceExhaustedError(
        absl::StrCat("API key '", lease.key_id_, "' already has ", limit,
                     " requests in flight (its max_concurrent)"));
  }
  return lease;
}

int ApiKeyStore::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return static_cast<int>(by_digest_.size());
}

}  // namespace glm4v::auth
