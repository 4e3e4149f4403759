#include "node/api/http/response.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "node/api/http/request.h"

namespace dispotify::api::http {

OwnedFd::~OwnedFd() {
  if (fd_ >= 0) ::close(fd_);
}

OwnedFd& OwnedFd::operator=(OwnedFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Response Response::Text(int status, std::string body, std::string content_type) {
  Response r;
  r.status_ = status;
  r.content_type_ = std::move(content_type);
  r.body_ = std::move(body);
  return r;
}

Response Response::Empty(int status) {
  Response r;
  r.status_ = status;
  return r;
}

Response Response::File(int status, OwnedFd fd, uint64_t offset, uint64_t length, std::string content_type) {
  Response r;
  r.status_ = status;
  r.content_type_ = std::move(content_type);
  r.body_ = FileRegion{std::move(fd), offset, length};
  return r;
}

Result<Response> Response::FileAtPath(int status, const std::string& path, uint64_t offset,
                                      std::optional<uint64_t> length, std::string content_type) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) return Status::FromErrno(errno, "open " + path);
  OwnedFd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "fstat " + path);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (offset > size) return Status::InvalidArgument("offset beyond the end of " + path);
  const uint64_t len = length.value_or(size - offset);
  if (len > size - offset) return Status::InvalidArgument("region beyond the end of " + path);
  return File(status, std::move(fd), offset, len, std::move(content_type));
}

Response Response::Stream(int status, Producer produce, std::optional<uint64_t> length,
                          std::string content_type) {
  Response r;
  r.status_ = status;
  r.content_type_ = std::move(content_type);
  r.body_ = StreamBody{std::move(produce), length};
  return r;
}

std::optional<std::string_view> Response::Header(std::string_view name) const {
  for (const auto& [n, v] : headers_) {
    if (EqualsIgnoreCase(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<uint64_t> Response::body_length() const {
  if (const auto* s = std::get_if<std::string>(&body_)) return s->size();
  if (const auto* f = std::get_if<FileRegion>(&body_)) return f->length;
  return std::get<StreamBody>(body_).length;
}

std::string JsonEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out.push_back(kHex[(c >> 4) & 0xf]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

Response JsonError(int status, std::string_view code, std::string_view message) {
  std::string body = "{\"error\": {\"code\": \"";
  body += JsonEscape(code);
  body += "\", \"message\": \"";
  body += JsonEscape(message);
  body += "\"}}";
  return Response::Json(status, std::move(body));
}

Response ErrorResponse(const Status& status) {
  int http_status = 500;
  switch (status.code()) {
    case StatusCode::kOk: http_status = 200; break;
    case StatusCode::kInvalidArgument: http_status = 400; break;
    case StatusCode::kNotFound: http_status = 404; break;
    case StatusCode::kAlreadyExists: http_status = 409; break;
    case StatusCode::kFailedPrecondition: http_status = 412; break;
    case StatusCode::kTimeout: http_status = 408; break;
    case StatusCode::kNotLeader:
    case StatusCode::kRetry:
    case StatusCode::kUnavailable:
    case StatusCode::kCommitUnknown: http_status = 503; break;
    case StatusCode::kNoSpace: http_status = 507; break;
    case StatusCode::kCompacted:
    case StatusCode::kCorruption:
    case StatusCode::kIoError:
    case StatusCode::kAborted: http_status = 500; break;
  }
  std::string code;
  for (char c : StatusCodeName(status.code())) {
    code.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return JsonError(http_status, code, status.message());
}

}  // namespace dispotify::api::http
