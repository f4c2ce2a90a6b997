#include "tests/tokenizer/golden_check.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "services/gateway/tokenizer/pretokenizer.h"
#include "services/gateway/tokenizer/tokenizer.h"

namespace glm4v::tokenizer {
namespace {

std::string Show(const std::vector<TokenId>& ids) {
  return "[" + absl::StrJoin(ids, ",") + "]";
}

// The case text, shortened and escaped for one-line messages.
std::string Label(const std::string& text) {
  std::string out;
  for (char c : text.substr(0, 40)) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return "\"" + out + (text.size() > 40 ? "...\"" : "\"");
}

}  // namespace

absl::StatusOr<GoldenReport> RunGoldenCheck(const std::string& golden_path,
                                            const std::string& ranks_path) {
  std::ifstream f(golden_path, std::ios::binary);
  if (!f) return absl::NotFoundError("cannot open golden file " + golden_path);
  std::stringstream ss;
  ss << f.rdbuf();
  const nlohmann::json doc = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("cases") ||
      !doc["cases"].is_array()) {
    return absl::InvalidArgumentError(golden_path + ": not a golden file (no \"cases\" array)");
  }
  std::string ranks = ranks_path;
  if (ranks.empty()) {
    if (!doc.contains("ranks_file") || !doc["ranks_file"].is_string()) {
      return absl::InvalidArgumentError(golden_path + ": no ranks path given and no \"ranks_file\"");
    }
    const size_t slash = golden_path.find_last_of('/');
    ranks = (slash == std::string::npos ? "" : golden_path.substr(0, slash + 1)) +
            doc["ranks_file"].get<std::string>();
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::LoadFromFiles(ranks));

  GoldenReport report;
  auto check = [&](bool good, const std::string& what) {
    ++report.checks;
    if (!good) report.mismatches.push_back(what);
  };
  try {
    if (doc.contains("pattern")) {
      check(doc["pattern"].get<std::string>() == kGlm4Pattern,
            "golden pattern differs from kGlm4Pattern");
    }
    if (doc.contains("special_tokens")) {
      for (const auto& [name, id] : doc["special_tokens"].items()) {
        auto ours = tok->SpecialId(name);
        check(ours.ok() && *ours == id.get<TokenId>(),
              absl::StrFormat("special %s: golden id %d, ours %s", name, id.get<TokenId>(),
                              ours.ok() ? std::to_string(*ours) : ours.status().ToString()));
      }
    }
    for (const auto& c : doc["cases"]) {
      ++report.cases;
      const std::string text = c.at("text").get<std::string>();
      const std::string label = Label(text);
      struct Mode {
        const char* key;
        bool specials;
      };
      for (const Mode mode : {Mode{"ids", true}, Mode{"ordinary_ids", false}}) {
        if (!c.contains(mode.key)) continue;
        const auto want = c[mode.key].get<std::vector<TokenId>>();
        auto got = mode.specials ? tok->Encode(text) : tok->EncodeOrdinary(text);
        if (!got.ok()) {
          check(false, absl::StrFormat("%s %s: %s", label, mode.key, got.status().ToString()));
          continue;
        }
        check(*got == want, absl::StrFormat("%s %s: want %s got %s", label, mode.key,
                                            Show(want), Show(*got)));
        auto decoded = tok->Decode(want);
        check(decoded.ok() && *decoded == text,
              absl::StrFormat("%s %s: golden ids do not decode to the text", label, mode.key));
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s", golden_path, e.what()));
  }
  return report;
}

}  // namespace glm4v::tokenizer
