#include "node/api/http/request.h"

#include <algorithm>
#include <cstring>

namespace dispotify::api::http {

namespace {

char Lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::optional<std::string_view> HeaderMap::Get(std::string_view name) const {
  for (const auto& [n, v] : fields_) {
    if (EqualsIgnoreCase(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::vector<std::string_view> HeaderMap::GetAll(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [n, v] : fields_) {
    if (EqualsIgnoreCase(n, name)) out.emplace_back(v);
  }
  return out;
}

std::optional<std::string> PercentDecode(std::string_view in, bool plus_as_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (in.size() - i < 3) return std::nullopt;
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool ParseQuery(std::string_view query, std::vector<std::pair<std::string, std::string>>* out) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (piece.empty()) continue;
    size_t eq = piece.find('=');
    auto key = PercentDecode(piece.substr(0, eq), /*plus_as_space=*/true);
    auto value = PercentDecode(eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1),
                               /*plus_as_space=*/true);
    if (!key || !value) return false;
    out->emplace_back(std::move(*key), std::move(*value));
  }
  return true;
}

std::string_view Request::PathParam(std::string_view name) const {
  auto it = path_params.find(name);
  return it == path_params.end() ? std::string_view() : std::string_view(it->second);
}

std::optional<std::string_view> Request::Query(std::string_view name) const {
  for (const auto& [k, v] : query_params) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

Result<std::string> ReadBodyToString(BodyReader& body, size_t max_bytes) {
  std::string out;
  char buf[16 * 1024];
  for (;;) {
    Result<size_t> n = body.Read(buf, sizeof(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) return out;
    if (out.size() + *n > max_bytes) {
      return Status::InvalidArgument("request body exceeds " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, *n);
  }
}

Result<size_t> StringBodyReader::Read(char* buf, size_t max) {
  if (pos_ == data_.size()) {
    if (final_error_) return *final_error_;
    return size_t{0};
  }
  size_t n = std::min({max, chunk_, data_.size() - pos_});
  std::memcpy(buf, data_.data() + pos_, n);
  pos_ += n;
  return n;
}

bool IfNoneMatchMatches(std::string_view if_none_match, std::string_view etag) {
  if (if_none_match.find('*') != std::string_view::npos) return true;
  // Weak comparison (RFC 9110 §8.8.3.2): the opaque tags match, W/ prefixes aside.
  auto opaque = [](std::string_view t) {
    if (t.size() >= 2 && t.substr(0, 2) == "W/") t.remove_prefix(2);
    return t;
  };
  size_t pos = 0;
  while (pos < if_none_match.size()) {
    size_t comma = if_none_match.find(',', pos);
    std::string_view item =
        if_none_match.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? if_none_match.size() : comma + 1;
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (opaque(item) == opaque(etag)) return true;
  }
  return false;
}

}  // namespace dispotify::api::http
