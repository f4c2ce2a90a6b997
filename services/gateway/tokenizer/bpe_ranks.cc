#include "services/gateway/tokenizer/bpe_ranks.h"

#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace glm4v::tokenizer {
namespace {

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

bool DecodeBase64Strict(absl::string_view in, std::string* out) {
  if (in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      if (c == '=') {
        // Padding only in the last quantum, only in positions 2 and 3, and nothing after it.
        if (!last || k < 2) return false;
        ++pad;
        v[k] = 0;
        continue;
      }
      if (pad > 0) return false;
      v[k] = Base64Value(c);
      if (v[k] < 0) return false;
    }
    const uint32_t word = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    // Bits that padding drops must be zero, otherwise two encodings would map to one token.
    if (pad == 2 && (word & 0xFFFF) != 0) return false;
    if (pad == 1 && (word & 0xFF) != 0) return false;
    out->push_back(static_cast<char>(word >> 16));
    if (pad < 2) out->push_back(static_cast<char>((word >> 8) & 0xFF));
    if (pad < 1) out->push_back(static_cast<char>(word & 0xFF));
  }
  return true;
}

absl::StatusOr<BpeRanks> BpeRanks::LoadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrFormat("cannot open tokenizer file %s", path));
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return absl::DataLossError(absl::StrFormat("error reading %s", path));
  return Parse(ss.str(), path);
}

absl::StatusOr<BpeRanks> BpeRanks::Parse(absl::string_view contents, absl::string_view source) {
  struct Entry {
    size_t offset;
    size_t length;
  };
  auto arena = std::make_unique<std::string>();
  arena->reserve(contents.size() * 3 / 4);
  // Indexed by rank; length == npos marks a rank not seen yet.
  std::vector<Entry> entries;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == absl::string_view::npos) end = contents.size();
    absl::string_view line = contents.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;  // Tolerate blank lines (e.g. a trailing one).

    const size_t space = line.find(' ');
    if (space == absl::string_view::npos || line.find(' ', space + 1) != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s:%d: expected \"<base64> <rank>\"", source, line_no));
    }
    uint64_t rank = 0;
    const absl::string_view rank_text = line.substr(space + 1);
    if (rank_text.empty() || rank_text.find_first_not_of("0123456789") != absl::string_view::npos ||
        !absl::SimpleAtoi(rank_text, &rank) ||
        rank >= static_cast<uint64_t>(std::numeric_limits<TokenId>::max())) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s:%d: bad rank \"%s\"", source, line_no, rank_text));
    }
    const size_t offset = arena->size();
    if (!DecodeBase64Strict(line.substr(0, space), arena.get())) {
      return absl::InvalidArgumentError(absl::StrFormat("%s:%d: bad base64", source, line_no));
    }
    if (arena->size() == offset) {
      return absl::InvalidArgumentError(absl::StrFormat("%s:%d: empty token", source, line_no));
    }
    if (rank >= entries.size()) {
      // Ranks may arrive in any order; a gap left at the end is reported below.
      if (rank > contents.size()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s:%d: rank %d is larger than the file could hold", source, line_no, rank));
      }
      entries.resize(rank + 1, Entry{0, absl::string_view::npos});
    }
    if (entries[rank].length != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s:%d: duplicate rank %d", source, line_no, rank));
    }
    entries[rank] = Entry{offset, arena->size() - offset};
  }
  if (entries.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: no tokens", source));
  }

  BpeRanks out;
  out.arena_ = std::move(arena);
  out.bytes_of_.reserve(entries.size());
  out.rank_of_.reserve(entries.size());
  for (size_t r = 0; r < entries.size(); ++r) {
    if (entries[r].length == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: rank %d is missing (ranks must be 0..%d)", source, r, entries.size() - 1));
    }
    const absl::string_view bytes(out.arena_->data() + entries[r].offset, entries[r].length);
    out.bytes_of_.push_back(bytes);
    auto [it, inserted] = out.rank_of_.emplace(bytes, static_cast<TokenId>(r));
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: ranks %d and %d have the same token bytes", source, it->second, r));
    }
  }
  return out;
}

}  // namespace glm4v::tokenizer
