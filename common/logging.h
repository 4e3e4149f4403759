#pragma once
// A tiny leveled logger. One line per message on stderr:
//   2025-01-31T12:34:56.789012Z W 12345 segmented_log.cc:210] truncated a torn record ...
//   (UTC time, level letter D/I/W/E, thread id, file:line, message)
// Usage: DLOG_INFO << "opened " << path << " at index " << index;
// The arguments are not evaluated when the level is disabled. Thread-safe: lines never interleave.

#include <atomic>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>

namespace dispotify {

enum class LogLevel : uint8_t { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// "debug", "info", "warning" (or "warn"), "error", case-insensitive.
bool ParseLogLevel(std::string_view text, LogLevel* out);

// Receives every formatted line (with its trailing newline) instead of stderr, e.g. for a test that
// checks a warning was logged. An empty function restores stderr. Called under the logger's lock.
using LogSink = std::function<void(LogLevel level, const std::string& line)>;
void SetLogSink(LogSink sink);

namespace internal {

extern std::atomic<int> g_log_level;

inline bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_log_level.load(std::memory_order_relaxed);
}

// Collects one message and writes it out when destroyed (at the end of the full expression).
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Turns the streamed expression into void so that it fits in the ?: of DISPOTIFY_LOG_AT.
struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace internal
}  // namespace dispotify

#define DISPOTIFY_LOG_AT(level)               \
  !::dispotify::internal::LogEnabled(level)   \
      ? static_cast<void>(0)                  \
      : ::dispotify::internal::LogVoidify() & \
            ::dispotify::internal::LogMessage((level), __FILE__, __LINE__).stream()

#define DLOG_DEBUG DISPOTIFY_LOG_AT(::dispotify::LogLevel::kDebug)
#define DLOG_INFO DISPOTIFY_LOG_AT(::dispotify::LogLevel::kInfo)
#define DLOG_WARN DISPOTIFY_LOG_AT(::dispotify::LogLevel::kWarning)
#define DLOG_ERROR DISPOTIFY_LOG_AT(::dispotify::LogLevel::kError)
