#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace dispotify {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
    case StatusCode::kNotLeader: return "NOT_LEADER";
    case StatusCode::kRetry: return "RETRY";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
    case StatusCode::kCompacted: return "COMPACTED";
    case StatusCode::kCorruption: return "CORRUPTION";
    case StatusCode::kCommitUnknown: return "COMMIT_UNKNOWN";
    case StatusCode::kIoError: return "IO_ERROR";
    case StatusCode::kNoSpace: return "NO_SPACE";
    case StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case StatusCode::kAborted: return "ABORTED";
    case StatusCode::kTimeout: return "TIMEOUT";
  }
  return "UNKNOWN";
}

Status Status::FromErrno(int err, std::string_view what) {
  char buf[128];
  // GNU strerror_r: thread-safe, returns a pointer to the message (possibly not into buf).
  std::string msg = std::string(what) + ": " + strerror_r(err, buf, sizeof(buf));
  switch (err) {
    case ENOSPC:
    case EDQUOT: return NoSpace(std::move(msg));
    case ENOENT: return NotFound(std::move(msg));
    case EEXIST: return AlreadyExists(std::move(msg));
    default: return IoError(std::move(msg));
  }
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(StatusCodeName(code_));
  if (!message_.empty()) s += ": " + message_;
  return s;
}

}  // namespace dispotify
