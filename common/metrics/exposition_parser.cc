#include "common/metrics/exposition_parser.h"

#include <cmath>
#include <cstdlib>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/metrics/text_format.h"

namespace glm4v::metrics {
namespace {

absl::Status LineError(int line, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("exposition line ", line, ": ", what));
}

bool ParseNumber(absl::string_view s, double* out) {
  if (s == "+Inf" || s == "Inf") {
    *out = HUGE_VAL;
    return true;
  }
  if (s == "-Inf") {
    *out = -HUGE_VAL;
    return true;
  }
  if (s == "NaN") {
    *out = std::nan("");
    return true;
  }
  if (s.empty()) return false;
  // Plain decimal / exponent notation only (strtod would also take "inf", hex, spaces...).
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      return false;
    }
  }
  std::string copy(s);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size();
}

// Parses `{a="x",b="y"}` starting at s[*pos] == '{'; leaves *pos after the '}'.
absl::Status ParseLabels(absl::string_view s, size_t* pos, int line, LabelMap* labels) {
  size_t i = *pos + 1;
  if (i < s.size() && s[i] == '}') {
    *pos = i + 1;
    return absl::OkStatus();
  }
  while (true) {
    size_t eq = s.find('=', i);
    if (eq == absl::string_view::npos) return LineError(line, "unterminated label set");
    std::string name(s.substr(i, eq - i));
    if (!IsValidLabelName(name))
      return LineError(line, absl::StrCat("bad label name \"", name, "\""));
    if (eq + 1 >= s.size() || s[eq + 1] != '"') {
      return LineError(line, absl::StrCat("label ", name, ": value must be quoted"));
    }
    std::string value;
    size_t j = eq + 2;
    bool closed = false;
    for (; j < s.size(); ++j) {
      char c = s[j];
      if (c == '\\') {
        if (j + 1 >= s.size()) break;
        char n = s[++j];
        if (n == '\\')
          value.push_back('\\');
        else if (n == '"')
          value.push_back('"');
        else if (n == 'n')
          value.push_back('\n');
        else
          return LineError(line,
                           absl::StrCat("label ", name, ": bad escape \\", std::string(1, n)));
      } else if (c == '"') {
        closed = true;
        break;
      } else if (c == '\n') {
        return LineError(line, "raw newline in label value");
      } else {
        value.push_back(c);
      }
    }
    if (!closed) return LineError(line, absl::StrCat("label ", name, ": unterminated value"));
    if (!labels->emplace(name, std::move(value)).second) {
      return LineError(line, absl::StrCat("duplicate label ", name));
    }
    i = j + 1;
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (i < s.size() && s[i] == '}') {
      *pos = i + 1;
      return absl::OkStatus();
    }
    return LineError(line, "expected ',' or '}' after a label");
  }
}

std::string HelpUnescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '\\' || s[i + 1] == 'n')) {
      out.push_back(s[i + 1] == 'n' ? '\n' : '\\');
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Does sample `name` belong to family `f`?
bool BelongsTo(const ParsedFamily& f, absl::string_view name) {
  if (name == f.name) return f.type != "histogram";
  if (f.type == "histogram") {
    return name == f.name + "_bucket" || name == f.name + "_sum" || name == f.name + "_count";
  }
  if (f.type == "summary") return name == f.name + "_sum" || name == f.name + "_count";
  return false;
}

absl::Status CheckHistogram(const ParsedFamily& f) {
  struct Series {
    std::vector<std::pair<double, double>> buckets;  // (le, cumulative count) in order
    std::optional<double> sum, count;
  };
  std::map<LabelMap, Series> series;
  for (const ParsedSample& s : f.samples) {
    LabelMap key = s.labels;
    if (s.name == f.name + "_bucket") {
      auto le = key.find("le");
      if (le == key.end())
        return absl::InvalidArgumentError(absl::StrCat(f.name, ": bucket without le"));
      double bound;
      if (!ParseNumber(le->second, &bound) || std::isnan(bound)) {
        return absl::InvalidArgumentError(absl::StrCat(f.name, ": bad le \"", le->second, "\""));
      }
      key.erase(le);
      series[key].buckets.emplace_back(bound, s.value);
    } else if (s.name == f.name + "_sum") {
      series[key].sum = s.value;
    } else {
      series[key].count = s.value;
    }
  }
  for (const auto& [labels, s] : series) {
    if (s.buckets.empty() || !std::isinf(s.buckets.back().first)) {
      return absl::InvalidArgumentError(absl::StrCat(f.name, ": no +Inf bucket (or not last)"));
    }
    for (size_t i = 0; i < s.buckets.size(); ++i) {
      if (s.buckets[i].second < 0 || s.buckets[i].second != std::floor(s.buckets[i].second)) {
        return absl::InvalidArgumentError(absl::StrCat(f.name, ": bucket count is not a count"));
      }
      if (i > 0 && !(s.buckets[i].first > s.buckets[i - 1].first)) {
        return absl::InvalidArgumentError(absl::StrCat(f.name, ": le not strictly ascending"));
      }
      if (i > 0 && s.buckets[i].second < s.buckets[i - 1].second) {
        return absl::InvalidArgumentError(
            absl::StrCat(f.name, ": cumulative bucket counts decrease"));
      }
    }
    if (!s.count.has_value() || !s.sum.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(f.name, ": missing _sum or _count"));
    }
    if (*s.count != s.buckets.back().second) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.name, ": +Inf bucket ", s.buckets.back().second, " != _count ", *s.count));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const ParsedFamily* ParsedExposition::FindFamily(absl::string_view name) const {
  for (const ParsedFamily& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::optional<double> ParsedExposition::Value(absl::string_view sample_name,
                                              const LabelMap& labels) const {
  for (const ParsedFamily& f : families) {
    for (const ParsedSample& s : f.samples) {
      if (s.name == sample_name && s.labels == labels) return s.value;
    }
  }
  return std::nullopt;
}

absl::StatusOr<ParsedExposition> ParseExposition(absl::string_view text) {
  ParsedExposition out;
  if (text.empty()) return out;
  if (text.back() != '\n') return LineError(0, "text does not end with a newline");
  std::vector<absl::string_view> lines = absl::StrSplit(text.substr(0, text.size() - 1), '\n');
  std::map<std::string, size_t> index;  // family name -> position in out.families
  std::set<std::pair<std::string, LabelMap>> series_seen;
  std::set<std::string> help_seen;
  // The family whose samples may appear now (an index: families grows while parsing).
  constexpr size_t kNone = static_cast<size_t>(-1);
  size_t current = kNone;

  for (size_t n = 0; n < lines.size(); ++n) {
    const int line_no = static_cast<int>(n) + 1;
    absl::string_view line = lines[n];
    if (line.empty()) return LineError(line_no, "blank line");
    if (line[0] == '#') {
      const bool is_help = absl::StartsWith(line, "# HELP ");
      const bool is_type = absl::StartsWith(line, "# TYPE ");
      if (!is_help && !is_type) return LineError(line_no, "comment that is neither HELP nor TYPE");
      absl::string_view rest = line.substr(7);
      size_t sp = rest.find(' ');
      std::string name(rest.substr(0, sp));
      absl::string_view arg = sp == absl::string_view::npos ? "" : rest.substr(sp + 1);
      if (!IsValidMetricName(name))
        return LineError(line_no, absl::StrCat("bad metric name \"", name, "\""));
      auto it = index.find(name);
      if (it != index.end() && !out.families[it->second].samples.empty()) {
        return LineError(line_no, absl::StrCat(name, ": HELP/TYPE after its samples"));
      }
      if (it == index.end()) {
        it = index.emplace(name, out.families.size()).first;
        out.families.push_back(ParsedFamily{name, "", "", {}});
      }
      ParsedFamily& f = out.families[it->second];
      if (is_help) {
        if (!help_seen.insert(name).second)
          return LineError(line_no, absl::StrCat(name, ": second HELP"));
        f.help = HelpUnescape(arg);
      } else {
        if (!f.type.empty()) return LineError(line_no, absl::StrCat(name, ": second TYPE"));
        if (arg != "counter" && arg != "gauge" && arg != "histogram" && arg != "summary" &&
            arg != "untyped") {
          return LineError(line_no, absl::StrCat(name, ": unknown type \"", arg, "\""));
        }
        f.type = std::string(arg);
        current = it->second;
      }
      continue;
    }

    // Sample: name[{labels}] value [timestamp]
    size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') ++pos;
    ParsedSample sample;
    sample.name = std::string(line.substr(0, pos));
    if (!IsValidMetricName(sample.name)) {
      return LineError(line_no, absl::StrCat("bad sample name \"", sample.name, "\""));
    }
    if (pos < line.size() && line[pos] == '{') {
      absl::Status s = ParseLabels(line, &pos, line_no, &sample.labels);
      if (!s.ok()) return s;
    }
    if (pos >= line.size() || line[pos] != ' ')
      return LineError(line_no, "expected ' ' before the value");
    std::vector<absl::string_view> fields = absl::StrSplit(line.substr(pos + 1), ' ');
    if (fields.empty() || fields.size() > 2)
      return LineError(line_no, "expected a value and an optional timestamp");
    if (!ParseNumber(fields[0], &sample.value)) {
      return LineError(line_no, absl::StrCat("bad value \"", fields[0], "\""));
    }
    if (fields.size() == 2) {
      for (char c : fields[1]) {
        if (!((c >= '0' && c <= '9') || c == '-')) return LineError(line_no, "bad timestamp");
      }
    }
    if (current == kNone || !BelongsTo(out.families[current], sample.name)) {
      return LineError(line_no, absl::StrCat("sample ", sample.name,
                                             " is not preceded by the TYPE of its family"));
    }
    ParsedFamily& family = out.families[current];
    if (family.type != "histogram" && sample.labels.count("le") > 0) {
      return LineError(line_no, "le label outside a histogram");
    }
    if (!series_seen.emplace(sample.name, sample.labels).second) {
      return LineError(line_no, absl::StrCat("duplicate series ", sample.name));
    }
    if (family.type == "counter" && !(sample.value >= 0)) {
      return LineError(line_no, absl::StrCat("counter ", sample.name, " is negative or NaN"));
    }
    family.samples.push_back(std::move(sample));
  }

  for (const ParsedFamily& f : out.families) {
    if (f.type.empty())
      return absl::InvalidArgumentError(absl::StrCat(f.name, ": HELP without TYPE"));
    if (f.type == "histogram") {
      absl::Status s = CheckHistogram(f);
      if (!s.ok()) return s;
    }
  }
  return out;
}

}  // namespace glm4v::metrics
