#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, log_level, "",
          "Minimum log level: debug, info, warn or error (default: $GLM4V_LOG_LEVEL, else info)");

namespace glm4v {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

struct SinkState {
  absl::Mutex mu;
  LogSink sink ABSL_GUARDED_BY(mu);
  std::string component ABSL_GUARDED_BY(mu);
};

SinkState& State() {
  static SinkState* state = new SinkState();  // never destroyed: logging may run at exit
  return *state;
}

void WriteStderr(absl::string_view line) {
  std::string out(line);
  out.push_back('\n');
  // A single write keeps the line whole even if another process shares stderr.
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::write(STDERR_FILENO, out.data() + off, out.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

bool NeedsQuoting(absl::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '=' || c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 ||
        c == 0x7f) {
      return true;
    }
  }
  return false;
}

// Shortens __FILE__ to its basename: enough to find the line, less noise.
absl::string_view Basename(const char* file) {
  absl::string_view f(file == nullptr ? "" : file);
  size_t slash = f.rfind('/');
  return slash == absl::string_view::npos ? f : f.substr(slash + 1);
}

}  // namespace

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  std::string n = absl::AsciiStrToLower(name);
  if (n == "debug") return LogLevel::kDebug;
  if (n == "info") return LogLevel::kInfo;
  if (n == "warn" || n == "warning") return LogLevel::kWarn;
  if (n == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level \"", name, "\" (want debug, info, warn or error)"));
}

void SetLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

absl::Status InitLogging() {
  std::string value = absl::GetFlag(FLAGS_log_level);
  absl::string_view source = "--log_level";
  if (value.empty()) {
    const char* env = std::getenv("GLM4V_LOG_LEVEL");
    if (env != nullptr) value = env;
    source = "$GLM4V_LOG_LEVEL";
  }
  if (value.empty()) {
    SetLogLevel(LogLevel::kInfo);
    return absl::OkStatus();
  }
  absl::StatusOr<LogLevel> level = ParseLogLevel(value);
  if (!level.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", level.status().message()));
  }
  SetLogLevel(*level);
  return absl::OkStatus();
}

void SetLogComponent(absl::string_view component) {
  SinkState& s = State();
  absl::MutexLock lock(&s.mu);
  s.component = std::string(component);
}

void SetLogSink(LogSink sink) {
  SinkState& s = State();
  absl::MutexLock lock(&s.mu);
  s.sink = std::move(sink);
}

std::string LogfmtValue(absl::string_view value) {
  if (!NeedsQuoting(value)) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\x%02x", static_cast<unsigned char>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

LogEvent::LogEvent(LogLevel level, absl::string_view msg, const char* file, int line)
    : file_(file), source_line_(line) {
  line_ = absl::StrCat(
      "ts=", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      " level=", LogLevelName(level), " msg=");
  // msg is always quoted so log readers can rely on its shape.
  std::string quoted = LogfmtValue(msg);
  if (quoted.empty() || quoted.front() != '"') quoted = absl::StrCat("\"", quoted, "\"");
  line_ += quoted;
}

void LogEvent::AppendKey(absl::string_view key) {
  line_.push_back(' ');
  // Keys are code constants; still keep the line parseable if one has a bad character.
  for (char c : key) {
    line_.push_back((c == ' ' || c == '=' || c == '"' || static_cast<unsigned char>(c) < 0x20) ? '_'
                                                                                               : c);
  }
  if (key.empty()) line_ += "_";
  line_.push_back('=');
}

LogEvent& LogEvent::With(absl::string_view key, absl::string_view value) {
  AppendKey(key);
  line_ += LogfmtValue(value);
  return *this;
}

LogEvent& LogEvent::With(absl::string_view key, bool value) {
  AppendKey(key);
  line_ += value ? "true" : "false";
  return *this;
}

LogEvent& LogEvent::With(absl::string_view key, double value) {
  AppendKey(key);
  line_ += absl::StrFormat("%g", value);
  return *this;
}

LogEvent& LogEvent::With(absl::string_view key, const absl::Status& status) {
  return With(key, status.ok() ? std::string("OK") : status.ToString());
}

LogEvent& LogEvent::WithInt(absl::string_view key, int64_t value) {
  AppendKey(key);
  absl::StrAppend(&line_, value);
  return *this;
}

LogEvent& LogEvent::WithUint(absl::string_view key, uint64_t value) {
  AppendKey(key);
  absl::StrAppend(&line_, value);
  return *this;
}

LogEvent::~LogEvent() {
  SinkState& s = State();
  absl::MutexLock lock(&s.mu);
  if (!s.component.empty()) {
    line_ += " component=";
    line_ += LogfmtValue(s.component);
  }
  absl::StrAppend(&line_, " caller=", Basename(file_), ":", source_line_);
  if (s.sink) {
    s.sink(line_);
  } else {
    WriteStderr(line_);
  }
}

}  // namespace glm4v
