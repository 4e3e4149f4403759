#include "node/api/http/router.h"

#include <algorithm>
#include <set>

#include "common/assert.h"

namespace dispotify::api::http {

namespace {

bool IsParam(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

// "/a/b/" -> {"a", "b", ""}; "/" -> {""}.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  path.remove_prefix(1);
  for (;;) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool SegmentsMatch(const std::vector<std::string>& pattern, const std::vector<std::string_view>& path) {
  if (pattern.size() != path.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (IsParam(pattern[i])) {
      if (path[i].empty()) return false;
    } else if (pattern[i] != path[i]) {
      return false;
    }
  }
  return true;
}

// True when `a` is more specific than `b` (both match the same path): the first segment where
// they differ in kind is a literal in `a`.
bool MoreSpecific(const Router::Route& a, const Router::Route& b) {
  for (size_t i = 0; i < a.segments.size(); ++i) {
    bool pa = IsParam(a.segments[i]);
    bool pb = IsParam(b.segments[i]);
    if (pa != pb) return !pa;
  }
  return false;
}

}  // namespace

Router& Router::Add(std::string method, std::string pattern, Handler handler, RouteOptions options) {
  DISPOTIFY_CHECK(!method.empty(), "empty HTTP method");
  DISPOTIFY_CHECK(!pattern.empty() && pattern.front() == '/', "route pattern must start with '/'");
  Route route;
  route.method = std::move(method);
  route.pattern = std::move(pattern);
  for (std::string_view seg : SplitPath(route.pattern)) {
    if (seg.find('{') != std::string_view::npos || seg.find('}') != std::string_view::npos) {
      DISPOTIFY_CHECK(IsParam(seg) && seg.size() > 2, "malformed {param} segment in a route pattern");
      DISPOTIFY_CHECK(seg.substr(1, seg.size() - 2).find_first_of("{}") == std::string_view::npos,
                      "malformed {param} segment in a route pattern");
    }
    route.segments.emplace_back(seg);
  }
  for (const Route& r : routes_) {
    DISPOTIFY_CHECK(!(r.method == route.method && r.segments == route.segments), "duplicate route");
  }
  route.handler = std::move(handler);
  route.options = options;
  routes_.push_back(std::move(route));
  return *this;
}

Router& Router::Fallback(Handler handler) {
  DISPOTIFY_CHECK(!fallback_.has_value(), "a second fallback route");
  Route route;
  route.method = "GET";
  route.pattern = "/*";
  route.handler = std::move(handler);
  fallback_ = std::move(route);
  return *this;
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match match;
  if (path.empty() || path.front() != '/') return match;
  const std::vector<std::string_view> segments = SplitPath(path);

  const Route* best = nullptr;
  const Route* best_get = nullptr;  // for HEAD without a HEAD route
  const Route* best_any = nullptr;  // of any method
  std::set<std::string> allowed;
  for (const Route& r : routes_) {
    if (!SegmentsMatch(r.segments, segments)) continue;
    if (best_any == nullptr || MoreSpecific(r, *best_any)) best_any = &r;
    allowed.insert(r.method);
    if (r.method == "GET") allowed.insert("HEAD");
    if (r.method == method) {
      if (best == nullptr || MoreSpecific(r, *best)) best = &r;
    } else if (method == "HEAD" && r.method == "GET") {
      if (best_get == nullptr || MoreSpecific(r, *best_get)) best_get = &r;
    }
  }
  if (best == nullptr) best = best_get;
  if (best == nullptr) {
    if (allowed.empty()) {
      if (fallback_ && (method == "GET" || method == "HEAD")) {
        match.kind = MatchKind::kFound;
        match.route = &*fallback_;
        match.pattern = fallback_->pattern;
      }
      return match;
    }
    match.kind = MatchKind::kMethodNotAllowed;
    match.pattern = best_any->pattern;
    for (const std::string& m : allowed) {
      if (!match.allow.empty()) match.allow += ", ";
      match.allow += m;
    }
    return match;
  }
  match.kind = MatchKind::kFound;
  match.route = best;
  match.pattern = best->pattern;
  for (size_t i = 0; i < best->segments.size(); ++i) {
    const std::string& seg = best->segments[i];
    if (!IsParam(seg)) continue;
    std::optional<std::string> value = PercentDecode(segments[i], /*plus_as_space=*/false);
    if (!value) {
      match.bad_escape = true;
      continue;
    }
    match.path_params.emplace(seg.substr(1, seg.size() - 2), std::move(*value));
  }
  return match;
}

}  // namespace dispotify::api::http
