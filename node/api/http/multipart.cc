#include "node/api/http/multipart.h"

#include <algorithm>
#include <cstring>

namespace dispotify::api::http {

namespace {

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct Param {
  std::string name;  // lower case
  std::string value;
};

// Splits `type; a=b; c="d;e"` into the type ("type") and its parameters. Quoted values may
// contain ';' and backslash escapes. Returns false for an unterminated quoted string.
bool SplitParams(std::string_view in, std::string* type, std::vector<Param>* params) {
  size_t semi = in.find(';');
  *type = std::string(TrimOws(in.substr(0, semi)));
  if (semi == std::string_view::npos) return true;
  in.remove_prefix(semi + 1);
  while (!in.empty()) {
    size_t eq = in.find('=');
    size_t next_semi = in.find(';');
    if (eq == std::string_view::npos || (next_semi != std::string_view::npos && next_semi < eq)) {
      // A parameter without a value: skip it.
      if (next_semi == std::string_view::npos) break;
      in.remove_prefix(next_semi + 1);
      continue;
    }
    Param p;
    for (char c : TrimOws(in.substr(0, eq))) {
      p.name.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c);
    }
    in.remove_prefix(eq + 1);
    while (!in.empty() && (in.front() == ' ' || in.front() == '\t')) in.remove_prefix(1);
    if (!in.empty() && in.front() == '"') {
      size_t i = 1;
      bool closed = false;
      for (; i < in.size(); ++i) {
        if (in[i] == '\\' && i + 1 < in.size()) {
          p.value.push_back(in[++i]);
        } else if (in[i] == '"') {
          closed = true;
          break;
        } else {
          p.value.push_back(in[i]);
        }
      }
      if (!closed) return false;
      in.remove_prefix(i + 1);
      size_t after = in.find(';');
      in = after == std::string_view::npos ? std::string_view() : in.substr(after + 1);
    } else {
      size_t end = in.find(';');
      p.value = std::string(TrimOws(in.substr(0, end)));
      in = end == std::string_view::npos ? std::string_view() : in.substr(end + 1);
    }
    params->push_back(std::move(p));
  }
  return true;
}

// RFC 8187 ext-value: charset'language'pct-encoded (UTF-8 and ASCII are taken as they are).
std::optional<std::string> DecodeExtValue(std::string_view v) {
  size_t q1 = v.find('\'');
  if (q1 == std::string_view::npos) return std::nullopt;
  size_t q2 = v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return std::nullopt;
  return PercentDecode(v.substr(q2 + 1), /*plus_as_space=*/false);
}

}  // namespace

Result<std::string> BoundaryFromContentType(std::string_view content_type) {
  std::string type;
  std::vector<Param> params;
  if (!SplitParams(content_type, &type, &params)) {
    return Status::InvalidArgument("malformed Content-Type parameters");
  }
  if (!EqualsIgnoreCase(type, "multipart/form-data")) {
    return Status::InvalidArgument("Content-Type is not multipart/form-data");
  }
  for (const Param& p : params) {
    if (p.name != "boundary") continue;
    if (p.value.empty() || p.value.size() > 70 || p.value.back() == ' ') {
      return Status::InvalidArgument("invalid multipart boundary");
    }
    return p.value;
  }
  return Status::InvalidArgument("multipart/form-data without a boundary");
}

MultipartReader::MultipartReader(BodyReader& body, std::string boundary, MultipartLimits limits)
    : body_(body), delimiter_("\r\n--" + boundary), limits_(limits), buf_(kBufferSize) {
  // The first delimiter may start the body without the CRLF that precedes every other one: a
  // virtual CRLF in front of the body lets one search find both.
  buf_[0] = '\r';
  buf_[1] = '\n';
  end_ = 2;
  if (boundary.empty() || delimiter_.size() * 4 > kBufferSize) {
    state_ = State::kFailed;
    error_ = Status::InvalidArgument("invalid multipart boundary");
  }
}

Status MultipartReader::Fail(Status s) {
  state_ = State::kFailed;
  error_ = s;
  return s;
}

Status MultipartReader::Fill() {
  if (eof_) return Status::Ok();
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buf_.size()) return Fail(Status::InvalidArgument("multipart parser buffer full"));
  Result<size_t> n = body_.Read(buf_.data() + end_, buf_.size() - end_);
  if (!n.ok()) return Fail(n.status());
  if (*n == 0) {
    eof_ = true;
  } else {
    end_ += *n;
  }
  return Status::Ok();
}

Status MultipartReader::SkipPreamble() {
  for (;;) {
    std::string_view view = Buffered();
    size_t pos = view.find(delimiter_);
    if (pos != std::string_view::npos) {
      begin_ += pos + delimiter_.size();
      state_ = State::kAfterDelimiter;
      return Status::Ok();
    }
    // Keep what could be the start of a delimiter split across reads.
    size_t keep = std::min(view.size(), delimiter_.size() - 1);
    begin_ = end_ - keep;
    if (eof_) return Fail(Status::InvalidArgument("multipart body without a boundary delimiter"));
    DISPOTIFY_RETURN_IF_ERROR(Fill());
  }
}

Result<bool> MultipartReader::ParseAfterDelimiter() {
  const size_t max_padding = std::min(limits_.max_header_bytes, kBufferSize / 2);
  for (;;) {
    std::string_view view = Buffered();
    if (view.size() >= 2 && view[0] == '-' && view[1] == '-') {
      // Close delimiter: drain the epilogue so the request body is consumed.
      state_ = State::kDone;
      begin_ = end_;
      while (!eof_) {
        DISPOTIFY_RETURN_IF_ERROR(Fill());
        begin_ = end_;
      }
      return false;
    }
    size_t i = 0;
    while (i < view.size() && (view[i] == ' ' || view[i] == '\t')) ++i;
    if (i > max_padding) return Fail(Status::InvalidArgument("too much padding after a multipart boundary"));
    if (view.size() - i >= 2) {
      if (view[i] != '\r' || view[i + 1] != '\n') {
        return Fail(Status::InvalidArgument("unexpected bytes after a multipart boundary"));
      }
      begin_ += i + 2;
      DISPOTIFY_RETURN_IF_ERROR(ParseHeaders());
      state_ = State::kContent;
      return true;
    }
    if (view.size() - i == 1 && view[i] != '\r' && !(i == 0 && view[0] == '-')) {
      return Fail(Status::InvalidArgument("unexpected bytes after a multipart boundary"));
    }
    if (eof_) return Fail(Status::InvalidArgument("multipart body truncated after a boundary"));
    DISPOTIFY_RETURN_IF_ERROR(Fill());
  }
}

Status MultipartReader::ParseHeaders() {
  part_ = MultipartPart{};
  const size_t max = std::min(limits_.max_header_bytes, kBufferSize / 2);
  size_t total = 0;
  for (;;) {
    std::string_view view = Buffered();
    size_t pos = view.find("\r\n");
    if (pos == std::string_view::npos) {
      if (total + view.size() > max) return Fail(Status::InvalidArgument("multipart part headers too large"));
      if (eof_) return Fail(Status::InvalidArgument("multipart body truncated in part headers"));
      DISPOTIFY_RETURN_IF_ERROR(Fill());
      continue;
    }
    total += pos + 2;
    if (total > max) return Fail(Status::InvalidArgument("multipart part headers too large"));
    std::string_view line = view.substr(0, pos);
    begin_ += pos + 2;
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      return Fail(Status::InvalidArgument("obsolete line folding in multipart part headers"));
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Fail(Status::InvalidArgument("malformed multipart part header line"));
    }
    part_.headers.Add(std::string(TrimOws(line.substr(0, colon))),
                      std::string(TrimOws(line.substr(colon + 1))));
  }

  if (auto cd = part_.headers.Get("Content-Disposition")) {
    std::string type;
    std::vector<Param> params;
    if (!SplitParams(*cd, &type, &params)) {
      return Fail(Status::InvalidArgument("malformed Content-Disposition in a multipart part"));
    }
    std::optional<std::string> ext_filename;
    for (Param& p : params) {
      if (p.name == "name") {
        part_.name = std::move(p.value);
      } else if (p.name == "filename") {
        part_.filename = std::move(p.value);
      } else if (p.name == "filename*") {
        ext_filename = DecodeExtValue(p.value);
      }
    }
    if (ext_filename) part_.filename = std::move(ext_filename);
  }
  auto ct = part_.headers.Get("Content-Type");
  part_.content_type = ct ? std::string(*ct) : "text/plain";
  return Status::Ok();
}

Result<bool> MultipartReader::NextPart() {
  if (state_ == State::kFailed) return error_;
  if (state_ == State::kDone) return false;
  if (state_ == State::kStart) {
    DISPOTIFY_RETURN_IF_ERROR(SkipPreamble());
  }
  if (state_ == State::kContent) {
    char scratch[8 * 1024];
    for (;;) {
      Result<size_t> n = Read(scratch, sizeof(scratch));
      if (!n.ok()) return n.status();
      if (*n == 0) break;
    }
  }
  return ParseAfterDelimiter();
}

Result<size_t> MultipartReader::Read(char* buf, size_t max) {
  if (state_ == State::kFailed) return error_;
  if (state_ != State::kContent || max == 0) return size_t{0};
  const std::string_view delim = delimiter_;
  for (;;) {
    std::string_view view = Buffered();
    size_t pos = view.find(delim);
    if (pos == 0) {
      begin_ += delim.size();
      state_ = State::kAfterDelimiter;
      return size_t{0};
    }
    size_t safe = pos;
    if (pos == std::string_view::npos) {
      // Hold back the longest tail that could begin a delimiter completed by the next read.
      size_t keep = 0;
      for (size_t k = std::min(view.size(), delim.size() - 1); k > 0; --k) {
        if (view.substr(view.size() - k) == delim.substr(0, k)) {
          keep = k;
          break;
        }
      }
      safe = view.size() - keep;
    }
    if (safe > 0) {
      size_t n = std::min(safe, max);
      std::memcpy(buf, view.data(), n);
      begin_ += n;
      return n;
    }
    if (eof_) return Fail(Status::InvalidArgument("multipart body truncated: missing final boundary"));
    DISPOTIFY_RETURN_IF_ERROR(Fill());
  }
}

}  // namespace dispotify::api::http
