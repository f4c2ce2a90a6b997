#include "services/gateway/tokenizer/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "services/gateway/tokenizer/bpe_encoder.h"
#include "services/gateway/tokenizer/utf8.h"

namespace glm4v::tokenizer {
namespace {

// Returns NOT_FOUND when the file does not exist, so optional files can be skipped.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrFormat("cannot open %s", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

constexpr TokenId kMaxSpecialIdGap = 1 << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::LoadFromDir(const std::string& dir) {
  const std::string config = dir + "/tokenizer_config.json";
  const bool has_config = static_cast<bool>(std::ifstream(config));
  return LoadFromFiles(dir + "/tokenizer.model", has_config ? config : "");
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::LoadFromFiles(
    const std::string& ranks_path, const std::string& config_path) {
  ASSIGN_OR_RETURN(BpeRanks ranks, BpeRanks::LoadFile(ranks_path));
  std::vector<SpecialToken> specials = Glm4DefaultSpecialTokens(ranks.size());
  if (!config_path.empty()) {
    ASSIGN_OR_RETURN(std::string json, ReadFile(config_path));
    ASSIGN_OR_RETURN(std::vector<SpecialToken> added, ParseAddedTokens(json, config_path));
    specials = ApplyOverrides(std::move(specials), added);
  }
  return Create(std::move(ranks), std::move(specials));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(BpeRanks ranks,
                                                             std::vector<SpecialToken> specials) {
  // Byte-level BPE must be able to fall back to single bytes for any input.
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    if (ranks.Find(absl::string_view(&c, 1)) < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("byte 0x%02x is not a token; not a byte-level BPE vocabulary", b));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Pretokenizer> pre, Pretokenizer::Create());
  std::unique_ptr<Tokenizer> t(new Tokenizer(std::move(ranks), std::move(pre)));

  TokenId max_id = static_cast<TokenId>(t->ranks_.size()) - 1;
  for (const SpecialToken& s : specials) {
    // Bounds the id table; real added tokens sit right after the ranks.
    if (s.id > max_id + kMaxSpecialIdGap) {
      return absl::InvalidArgumentError(
          absl::StrFormat("special token %s id %d is far beyond the vocabulary", s.text, s.id));
    }
    max_id = std::max(max_id, s.id);
  }
  const size_t vocab = static_cast<size_t>(max_id) + 1;
  t->id_bytes_.assign(vocab, absl::string_view());
  t->id_valid_.assign(vocab, false);
  t->id_special_.assign(vocab, false);
  for (size_t r = 0; r < t->ranks_.size(); ++r) {
    t->id_bytes_[r] = t->ranks_.Bytes(static_cast<TokenId>(r));
    t->id_valid_[r] = true;
  }
  t->specials_ = std::move(specials);
  t->first_byte_specials_.resize(256);
  for (size_t k = 0; k < t->specials_.size(); ++k) {
    const SpecialToken& s = t->specials_[k];
    if (s.text.empty()) return absl::InvalidArgumentError("empty special token text");
    if (s.id < 0) return absl::InvalidArgumentError("negative special token id");
    if (t->id_valid_[s.id]) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "special token %s has id %d, already used by %s", s.text, s.id,
          t->id_special_[s.id] ? "another special token" : "a BPE rank"));
    }
    if (!t->special_ids_.emplace(s.text, s.id).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("special token %s listed twice", s.text));
    }
    t->id_bytes_[s.id] = s.text;  // Views into specials_, which no longer changes.
    t->id_valid_[s.id] = true;
    t->id_special_[s.id] = true;
    t->first_byte_specials_[static_cast<uint8_t>(s.text[0])].push_back(k);
  }
  for (auto& list : t->first_byte_specials_) {
    std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
      return t->specials_[a].text.size() > t->specials_[b].text.size();
    });
  }
  return t;
}

absl::Status Tokenizer::EncodeValidOrdinary(absl::string_view text,
                                            std::vector<TokenId>* out) const {
  return pretokenizer_->Split(
      text, [&](absl::string_view piece) { BytePairEncode(piece, ranks_, out); });
}

absl::Status Tokenizer::EncodeOrdinaryTo(absl::string_view text,
                                         std::vector<TokenId>* out) const {
  if (IsValidUtf8(text)) return EncodeValidOrdinary(text, out);
  std::string repaired;
  AppendRepairedUtf8(text, &repaired);
  return EncodeValidOrdinary(repaired, out);
}

absl::StatusOr<std::vector<TokenId>> Tokenizer::EncodeOrdinary(absl::string_view text) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 1);
  RETURN_IF_ERROR(EncodeOrdinaryTo(text, &out));
  return out;
}

absl::StatusOr<std::vector<TokenId>> Tokenizer::Encode(absl::string_view text) const {
  std::string repaired;
  if (!IsValidUtf8(text)) {
    AppendRepairedUtf8(text, &repaired);
    text = repaired;
  }
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 1);
  // Leftmost special occurrence wins (longest at that position); the text between specials is
  // pre-tokenized on its own, as tiktoken does.
  size_t segment_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto& candidates = first_byte_specials_[static_cast<uint8_t>(text[i])];
    if (candidates.empty()) continue;
    for (size_t k : candidates) {
      const SpecialToken& s = specials_[k];
      if (text.compare(i, s.text.size(), s.text) != 0) continue;
      RETURN_IF_ERROR(
          EncodeValidOrdinary(text.substr(segment_start, i - segment_start), &out));
      out.push_back(s.id);
      i += s.text.size();
      segment_start = i;
      --i;  // The loop's ++i lands on the byte after the special.
      break;
    }
  }
  RETURN_IF_ERROR(EncodeValidOrdinary(text.substr(segment_start), &out));
  return out;
}

absl::StatusOr<absl::string_view> Tokenizer::TokenBytes(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_bytes_.size() || !id_valid_[id]) {
    return absl::InvalidArgumentError(absl::StrFormat("token id %d is not in the vocabulary", id));
  }
  return id_bytes_[id];
}

absl::StatusOr<std::string> Tokenizer::DecodeBytes(absl::Span<const TokenId> ids) const {
  std::string out;
  for (TokenId id : ids) {
    ASSIGN_OR_RETURN(absl::string_view bytes, TokenBytes(id));
    out.append(bytes.data(), bytes.size());
  }
  return out;
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const TokenId> ids) const {
  ASSIGN_OR_RETURN(std::string bytes, DecodeBytes(ids));
  if (IsValidUtf8(bytes)) return bytes;
  std::string out;
  AppendRepairedUtf8(bytes, &out);
  return out;
}

absl::StatusOr<TokenId> Tokenizer::SpecialId(absl::string_view text) const {
  auto it = special_ids_.find(text);
  if (it == special_ids_.end()) {
    return absl::NotFoundError(absl::StrFormat("no special token %s", text));
  }
  return it->second;
}

bool Tokenizer::IsSpecial(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < id_special_.size() && id_special_[id];
}

}  // namespace glm4v::tokenizer
