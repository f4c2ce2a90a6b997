// Structured, leveled logging: one logfmt line per event.
//
//   LOG_INFO("request admitted").With("request_id", id).With("prompt_tokens", n);
//   -> ts=2024-05-01T12:00:00.123Z level=info msg="request admitted" request_id=abc
//      prompt_tokens=42 component=gateway caller=gateway.cc:88
//
// Lines are assembled privately and written with one call under a mutex, so concurrent events
// never interleave. Disabled levels cost one relaxed atomic load: the event (and its With()
// arguments) is not even evaluated.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

ABSL_DECLARE_FLAG(std::string, log_level);

namespace glm4v {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

absl::string_view LogLevelName(LogLevel level);  // "debug", "info", "warn", "error"
// Case-insensitive; accepts "warning" for warn.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool LogEnabled(LogLevel level);

// Sets the level from --log_level if given, else $GLM4V_LOG_LEVEL, else info. Call after
// absl::ParseCommandLine. An unparsable value is an error (and leaves the level unchanged).
absl::Status InitLogging();

// Appended as component=<name> to every line of this process (empty: omitted).
void SetLogComponent(absl::string_view component);

// Where finished lines (without the trailing newline) go; default: stderr. For tests.
using LogSink = std::function<void(absl::string_view line)>;
void SetLogSink(LogSink sink);  // nullptr restores stderr

// Quotes a logfmt value when needed (empty, spaces, '=', quotes, control characters).
std::string LogfmtValue(absl::string_view value);

// One event; emitted when destroyed (at the end of the full expression).
class LogEvent {
 public:
  LogEvent(LogLevel level, absl::string_view msg, const char* file, int line);
  ~LogEvent();
  LogEvent(const LogEvent&) = delete;
  LogEvent& operator=(const LogEvent&) = delete;

  LogEvent& With(absl::string_view key, absl::string_view value);
  LogEvent& With(absl::string_view key, const std::string& value) {
    return With(key, absl::string_view(value));
  }
  LogEvent& With(absl::string_view key, const char* value) {
    return With(key, absl::string_view(value == nullptr ? "" : value));
  }
  LogEvent& With(absl::string_view key, bool value);
  LogEvent& With(absl::string_view key, double value);
  LogEvent& With(absl::string_view key, const absl::Status& status);
  template <typename T,
            typename = std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>>
  LogEvent& With(absl::string_view key, T value) {
    if constexpr (std::is_signed_v<T>) {
      return WithInt(key, static_cast<int64_t>(value));
    } else {
      return WithUint(key, static_cast<uint64_t>(value));
    }
  }

 private:
  LogEvent& WithInt(absl::string_view key, int64_t value);
  LogEvent& WithUint(absl::string_view key, uint64_t value);
  void AppendKey(absl::string_view key);

  std::string line_;
  const char* file_;
  int source_line_;
};

namespace logging_internal {
// Lets the macros below be a single expression whose type is void in both branches.
struct Voidify {
  void operator&(const LogEvent&) {}
};
}  // namespace logging_internal

}  // namespace glm4v

#define GLM4V_LOG_(level, msg) \
  !::glm4v::LogEnabled(level)  \
      ? (void)0                \
      : ::glm4v::logging_internal::Voidify() & ::glm4v::LogEvent(level, (msg), __FILE__, __LINE__)

#define LOG_DEBUG(msg) GLM4V_LOG_(::glm4v::LogLevel::kDebug, msg)
#define LOG_INFO(msg) GLM4V_LOG_(::glm4v::LogLevel::kInfo, msg)
#define LOG_WARN(msg) GLM4V_LOG_(::glm4v::LogLevel::kWarn, msg)
#define LOG_ERROR(msg) GLM4V_LOG_(::glm4v::LogLevel::kError, msg)
