#include "node/api/static_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "common/logging.h"

namespace dispotify::api {

namespace {

using http::Response;

constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";
constexpr std::string_view kNoCache = "no-cache";

std::optional<std::string> Canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return std::nullopt;
  return std::string(buf);
}

bool Under(const std::string& path, const std::string& root) {
  return path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/';
}

std::string_view Extension(std::string_view name) {
  size_t slash = name.rfind('/');
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) return {};
  return name.substr(dot + 1);
}

std::string_view ContentTypeFor(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 17> kTypes = {{
      {"html", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"woff2", "font/woff2"},
      {"woff", "font/woff"},
      {"txt", "text/plain; charset=utf-8"},
      {"wasm", "application/wasm"},
  }};
  std::string_view ext = Extension(name);
  for (const auto& [e, type] : kTypes) {
    if (http::EqualsIgnoreCase(e, ext)) return type;
  }
  return "application/octet-stream";
}

// q-value of `coding` in an Accept-Encoding value (0 when absent or refused; "*" counts).
double Quality(std::string_view header, std::string_view coding) {
  std::optional<double> star;
  size_t pos = 0;
  while (pos <= header.size()) {
    size_t comma = header.find(',', pos);
    std::string_view item =
        header.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? header.size() + 1 : comma + 1;
    size_t semi = item.find(';');
    std::string_view name = item.substr(0, semi);
    while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.remove_prefix(1);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    double q = 1.0;
    if (semi != std::string_view::npos) {
      std::string_view params = item.substr(semi + 1);
      size_t qpos = params.find("q=");
      if (qpos == std::string_view::npos) qpos = params.find("Q=");
      if (qpos != std::string_view::npos)
        q = std::strtod(std::string(params.substr(qpos + 2)).c_str(), nullptr);
    }
    if (http::EqualsIgnoreCase(name, coding)) return q;
    if (name == "*") star = q;
  }
  return star.value_or(0.0);
}

Response NotFound(std::string_view path) {
  return http::JsonError(404, "not_found", "no route for " + std::string(path));
}

void AddCommonHeaders(Response& r) {
  r.AddHeader("Content-Security-Policy", std::string(kContentSecurityPolicy));
  r.AddHeader("X-Content-Type-Options", "nosniff");
  r.AddHeader("Referrer-Policy", "same-origin");
}

struct Opened {
  http::OwnedFd fd;
  struct stat st {};
};

// Opens `relative` under `root`, refusing anything whose canonical path leaves the root or that is
// not a regular file.
std::optional<Opened> OpenUnder(const std::string& root, const std::string& relative) {
  std::optional<std::string> real = Canonical(root + "/" + relative);
  if (!real || !Under(*real, root)) return std::nullopt;
  int fd = ::open(real->c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  Opened o{http::OwnedFd(fd), {}};
  if (::fstat(fd, &o.st) != 0 || !S_ISREG(o.st.st_mode)) return std::nullopt;
  return o;
}

std::string ETagOf(const struct stat& st, std::string_view encoding) {
  const long long mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  std::string tag = "W/\"" + std::to_string(st.st_size) + "-" + std::to_string(mtime_ns);
  if (!encoding.empty()) tag += "-" + std::string(encoding);
  return tag + "\"";
}

}  // namespace

bool IsApiPath(std::string_view path) {
  // Trees of routes: anything below them is the API's ("/cluster" alone is the UI's cluster page).
  static constexpr std::array<std::string_view, 3> kTrees = {"/music/", "/admin/", "/cluster/"};
  // Single routes.
  static constexpr std::array<std::string_view, 3> kExact = {"/healthz", "/readyz", "/metrics"};
  for (std::string_view prefix : kTrees) {
    if (path.starts_with(prefix)) return true;
  }
  for (std::string_view route : kExact) {
    if (path == route || (path.starts_with(route) && path[route.size()] == '/')) return true;
  }
  return false;
}

Result<std::unique_ptr<StaticFiles>> StaticFiles::Open(const std::string& root) {
  std::optional<std::string> real = Canonical(root);
  if (!real) return Status::NotFound("web root " + root + " does not exist");
  struct stat st {};
  if (::stat((*real + "/index.html").c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::NotFound("web root " + root + " has no index.html");
  }
  if (*real == "/") return Status::InvalidArgument("the web root cannot be /");
  return std::unique_ptr<StaticFiles>(new StaticFiles(std::move(*real)));
}

http::Response StaticFiles::Serve(const http::Request& request) const {
  const std::string& raw = request.path;
  if (IsApiPath(raw)) return NotFound(raw);
  std::optional<std::string> decoded = http::PercentDecode(raw, /*plus_as_space=*/false);
  if (!decoded) return http::JsonError(400, "bad_request", "malformed percent-escape in the path");

  // The decoded path's segments: no ".", "..", dot-files, NUL or backslash, whatever the file system
  // would make of them.
  std::vector<std::string_view> segments;
  std::string_view rest = *decoded;
  bool bad = decoded->find('\0') != std::string::npos || decoded->find('\\') != std::string::npos;
  while (!rest.empty() && !bad) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (seg.empty()) continue;
    if (seg.front() == '.') bad = true;
    segments.push_back(seg);
  }
  if (bad) return NotFound(raw);
  std::string relative;
  for (std::string_view seg : segments) {
    if (!relative.empty()) relative += '/';
    relative += seg;
  }

  const bool asset = !segments.empty() && segments.front() == "assets";
  std::string file = relative.empty() ? "index.html" : relative;
  std::optional<Opened> plain = OpenUnder(root_, file);
  if (!plain) {
    // Client-side routes get the UI; a missing file (an old hashed asset, a favicon) a 404.
    const bool looks_like_file = !segments.empty() && segments.back().find('.') != std::string_view::npos;
    if (asset || looks_like_file) return NotFound(raw);
    file = "index.html";
    plain = OpenUnder(root_, file);
    if (!plain) return NotFound(raw);
  }

  std::string_view encoding;
  Opened chosen = std::move(*plain);
  if (auto accept = request.Header("Accept-Encoding")) {
    for (std::string_view coding : {std::string_view("br"), std::string_view("gzip")}) {
      if (Quality(*accept, coding) <= 0) continue;
      std::optional<Opened> sibling = OpenUnder(root_, file + (coding == "br" ? ".br" : ".gz"));
      if (!sibling) continue;
      chosen = std::move(*sibling);
      encoding = coding;
      break;
    }
  }

  const std::string etag = ETagOf(chosen.st, encoding);
  const bool immutable = file.rfind("assets/", 0) == 0;
  Response r;
  if (auto inm = request.Header("If-None-Match"); inm && http::IfNoneMatchMatches(*inm, etag)) {
    r = Response::Empty(304);
  } else {
    r = Response::File(200, std::move(chosen.fd), 0, static_cast<uint64_t>(chosen.st.st_size),
                       std::string(ContentTypeFor(file)));
    if (!encoding.empty()) r.AddHeader("Content-Encoding", std::string(encoding));
  }
  r.AddHeader("ETag", etag);
  r.AddHeader("Cache-Control", std::string(immutable ? kImmutable : kNoCache));
  r.AddHeader("Vary", "Accept-Encoding");
  AddCommonHeaders(r);
  return r;
}

std::string FindWebRoot(const std::string& executable) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::weakly_canonical(executable, ec);
  if (ec) return "";
  fs::path dir = exe.parent_path();
  auto has_index = [](const fs::path& p) {
    std::error_code e;
    return fs::is_regular_file(p / "index.html", e);
  };
  if (fs::path installed = dir.parent_path() / "share" / "dispotify" / "web"; has_index(installed)) {
    return installed.string();
  }
  fs::path d = dir;
  for (int up = 0; up <= 5 && !d.empty(); ++up) {
    if (has_index(d / "web" / "dist")) return (d / "web" / "dist").string();
    if (d == d.parent_path()) break;
    d = d.parent_path();
  }
  return "";
}

Status AddWebUi(const std::string& web_root, http::Router* router) {
  std::string root = web_root;
  if (root == "auto") {
    std::error_code ec;
    root = FindWebRoot(std::filesystem::read_symlink("/proc/self/exe", ec).string());
    if (root.empty()) {
      DLOG_INFO << "no web UI: no built web/dist found near the executable (set web_root)";
      return Status::Ok();
    }
  }
  if (root.empty()) return Status::Ok();
  auto files = StaticFiles::Open(root);
  if (!files.ok()) return Status::InvalidArgument("web_root: " + files.status().message());
  std::shared_ptr<const StaticFiles> shared = std::move(files).value();
  DLOG_INFO << "web UI from " << shared->root();
  router->Fallback([shared](http::Request& request, http::BodyReader&) { return shared->Serve(request); });
  return Status::Ok();
}

}  // namespace dispotify::api
