#include "services/gateway/openai/data_url.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/gateway/tokenizer/bpe_ranks.h"

namespace glm4v::openai {
namespace {

absl::StatusOr<std::string> NormalizeMimeType(absl::string_view media_type) {
  const std::string m = absl::AsciiStrToLower(absl::StripAsciiWhitespace(media_type));
  if (m == "image/png") return std::string("image/png");
  if (m == "image/jpeg" || m == "image/jpg") return std::string("image/jpeg");
  // Generic types carry no claim about the format; the vision service sniffs the bytes.
  if (m.empty() || m == "application/octet-stream" || m == "image/*") return std::string();
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported image type \"", m, "\"; use image/png or image/jpeg"));
}

}  // namespace

absl::StatusOr<DecodedImage> DecodeImageUrl(absl::string_view url) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(url);
  if (absl::StartsWithIgnoreCase(trimmed, "http://") ||
      absl::StartsWithIgnoreCase(trimmed, "https://")) {
    return absl::InvalidArgumentError(
        "image URLs are not fetched by this server (it has no internet access); send the image "
        "inline as a data URL: data:image/png;base64,...");
  }
  if (!absl::StartsWithIgnoreCase(trimmed, "data:")) {
    return absl::InvalidArgumentError(
        "image_url must be a data URL (data:image/png;base64,... or data:image/jpeg;base64,...)");
  }
  const absl::string_view rest = trimmed.substr(5);
  const size_t comma = rest.find(',');
  if (comma == absl::string_view::npos) {
    return absl::InvalidArgumentError("malformed data URL: no ',' before the data");
  }
  absl::string_view header = rest.substr(0, comma);
  const absl::string_view payload = rest.substr(comma + 1);
  // The header is "<media type>[;param=value]*;base64"; only base64 payloads are accepted
  // (percent-encoded binary images are not something clients send).
  bool is_base64 = false;
  absl::string_view media_type = header;
  const size_t semi = header.find(';');
  if (semi != absl::string_view::npos) {
    media_type = header.substr(0, semi);
    absl::string_view params = header.substr(semi + 1);
    while (!params.empty()) {
      const size_t next = params.find(';');
      const absl::string_view p = absl::StripAsciiWhitespace(params.substr(0, next));
      if (absl::EqualsIgnoreCase(p, "base64")) is_base64 = true;
      if (next == absl::string_view::npos) break;
      params = params.substr(next + 1);
    }
  }
  if (!is_base64) {
    return absl::InvalidArgumentError("data URL must be base64-encoded (data:<type>;base64,...)");
  }
  auto mime = NormalizeMimeType(media_type);
  if (!mime.ok()) return mime.status();

  std::string compact;
  compact.reserve(payload.size() + 3);
  for (char c : payload) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) compact.push_back(c);
  }
  if (compact.empty()) return absl::InvalidArgumentError("data URL holds no image data");
  while (compact.size() % 4 != 0) compact.push_back('=');

  DecodedImage image;
  image.mime_type = *std::move(mime);
  image.bytes.reserve(compact.size() / 4 * 3);
  if (!tokenizer::DecodeBase64Strict(compact, &image.bytes)) {
    return absl::InvalidArgumentError("data URL holds invalid base64");
  }
  return image;
}

}  // namespace glm4v::openai
