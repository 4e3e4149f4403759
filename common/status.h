#pragma once
// Errors as values, in the manner of RocksDB's Status: expected failures travel as
// [[nodiscard]] values; broken invariants stop the process (see DISPOTIFY_CHECK in assert.h).

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace dispotify {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,  // the caller's input is malformed
  kNotFound,
  kAlreadyExists,
  kNotLeader,      // retry on the leader; leader_hint() names it when known
  kRetry,          // transient: try again (e.g. leadership transfer in progress)
  kUnavailable,    // no quorum / peer unreachable
  kCompacted,      // the requested log index was compacted into a snapshot
  kCorruption,     // checksum mismatch, torn record in a closed segment
  kCommitUnknown,  // the proposal may or may not have committed (leader lost)
  kIoError,
  kNoSpace,
  kFailedPrecondition,  // e.g. data directory belongs to another cluster
  kAborted,
  kTimeout,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
  static Status NotLeader(uint64_t leader_hint, std::string msg = "not the leader") {
    Status s{StatusCode::kNotLeader, std::move(msg)};
    s.leader_hint_ = leader_hint;
    return s;
  }
  static Status Retry(std::string msg) { return {StatusCode::kRetry, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status Compacted(std::string msg) { return {StatusCode::kCompacted, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status CommitUnknown(std::string msg) { return {StatusCode::kCommitUnknown, std::move(msg)}; }
  static Status IoError(std::string msg) { return {StatusCode::kIoError, std::move(msg)}; }
  static Status NoSpace(std::string msg) { return {StatusCode::kNoSpace, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, std::move(msg)};
  }
  static Status Aborted(std::string msg) { return {StatusCode::kAborted, std::move(msg)}; }
  static Status Timeout(std::string msg) { return {StatusCode::kTimeout, std::move(msg)}; }
  // For codes that crossed a process boundary (a peer's answer); an unknown code is kIoError.
  static Status FromCode(StatusCode code, std::string msg) {
    if (code > StatusCode::kTimeout) return {StatusCode::kIoError, "unknown status code: " + msg};
    return {code, std::move(msg)};
  }
  // Maps an errno from a failed system call to the matching code (ENOSPC -> kNoSpace, ...).
  static Status FromErrno(int err, std::string_view what);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  uint64_t leader_hint() const { return leader_hint_; }
  std::string ToString() const;

  bool operator==(StatusCode code) const { return code_ == code; }

 private:
  Status(StatusCode code, std::string msg) : code_(code), message_(std::move(msg)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  uint64_t leader_hint_ = 0;
};

// Result<T>: a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status carries no value");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace dispotify

// Propagates a non-OK Status to the caller.
#define DISPOTIFY_RETURN_IF_ERROR(expr) \
  do {                                  \
    ::dispotify::Status _st = (expr);   \
    if (!_st.ok()) return _st;          \
  } while (0)
