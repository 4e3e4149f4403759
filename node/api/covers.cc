#include "node/api/covers.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "node/api/http/request.h"
#include "node/api/http/response.h"
#include "node/api/rest_api.h"
#include "node/api/spool_file.h"
#include "node/catalog/metadata_store.h"
#include "node/replication/file_service.h"

namespace dispotify::api {

namespace fs = std::filesystem;

namespace {

constexpr char kTempSuffix[] = ".tmp";
constexpr uint32_t kCheckSize = 16;
// Rendered from the song; the other sizes from it.
constexpr uint32_t kBaseSize = 1024;

bool IsCoverName(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool IsCoverSize(uint32_t size) {
  return std::find(std::begin(kCoverSizes), std::end(kCoverSizes), size) != std::end(kCoverSizes);
}

std::string FileName(std::string_view sha256, uint32_t size) {
  return std::string(sha256) + "-" + std::to_string(size) + ".jpg";
}

// The whole file, or nullopt when it cannot be read (absent, or removed by an eviction meanwhile).
std::optional<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return bytes;
}

}  // namespace

CoverService::CoverService(CoverServiceOptions options, CoverServiceDeps deps)
    : options_(std::move(options)), deps_(std::move(deps)) {}

Status CoverService::Start() {
  std::error_code ec;
  fs::create_directories(options_.cache_dir, ec);
  if (ec) return Status::IoError("creating the cover cache " + options_.cache_dir + ": " + ec.message());
  uint64_t total = 0;
  for (fs::directory_iterator it(options_.cache_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code e2;
    if (name.ends_with(kTempSuffix)) {
      fs::remove(it->path(), e2);
      continue;
    }
    const auto size = it->file_size(e2);
    if (!e2) total += size;
  }
  if (ec) return Status::IoError("listing the cover cache " + options_.cache_dir + ": " + ec.message());
  std::lock_guard<std::mutex> lock(mu_);
  cache_bytes_ = total;
  return Status::Ok();
}

uint64_t CoverService::renders() const {
  std::lock_guard<std::mutex> lock(mu_);
  return renders_;
}

uint64_t CoverService::cache_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_bytes_;
}

Result<std::string> CoverService::Get(std::string_view sha256, uint32_t size) {
  if (!IsCoverName(sha256)) return Status::InvalidArgument("a cover is named by 64 lowercase hex digits");
  if (!IsCoverSize(size)) return Status::InvalidArgument("size must be one of 64, 128, 256, 512, 1024");
  return GetOrRender(std::string(sha256), size);
}

Result<std::string> CoverService::GetOrRender(const std::string& sha256, uint32_t size) {
  const std::string name = FileName(sha256, size);
  if (auto cached = ReadWhole(options_.cache_dir + "/" + name)) return std::move(*cached);

  std::shared_ptr<Flight> flight;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (failures_.count(sha256) > 0)
      return Status::NotFound("the picture of cover " + sha256 + " does not decode");
    auto it = flights_.find(name);
    if (it != flights_.end()) {
      flight = it->second;
      cv_.wait(lock, [&] { return flight->done; });
      return flight->result;
    }
    flight = std::make_shared<Flight>();
    flights_.emplace(name, flight);
  }
  // Whatever happens below, the flight ends, so that no request waits on it forever.
  Result<std::string> result = Status::Unavailable("rendering cover " + sha256 + " stopped");
  struct Land {
    CoverService* self;
    const std::string& name;
    const std::shared_ptr<Flight>& flight;
    Result<std::string>& result;
    ~Land() {
      std::lock_guard<std::mutex> lock(self->mu_);
      flight->result = result;
      flight->done = true;
      self->flights_.erase(name);
      self->cv_.notify_all();
    }
  } land{this, name, flight, result};

  if (size == kBaseSize) {
    result = RenderFromSong(sha256);
  } else {
    // The smaller sizes come from the base thumbnail, an image file: the song is copied once.
    Result<std::string> base = GetOrRender(sha256, kBaseSize);
    if (!base.ok()) {
      result = base.status();
    } else if (auto path = BasePath(sha256); !path.ok()) {
      result = path.status();
    } else {
      result = RenderLimited(*path, size);
    }
  }
  if (result.ok()) Store(name, *result);
  return result;
}

Result<std::string> CoverService::BasePath(const std::string& sha256) {
  const std::string path = options_.cache_dir + "/" + FileName(sha256, kBaseSize);
  std::error_code ec;
  if (fs::exists(path, ec)) return path;
  // Not kept (a full cache evicted it, or it could not be written): render from the song again.
  return Status::Unavailable("the cover cache lost the base thumbnail of " + sha256);
}

Result<std::string> CoverService::RenderLimited(const std::string& path, uint32_t size) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (waiting_ >= kMaxWaiting) return Status::Unavailable("too many covers are being rendered; retry");
    ++waiting_;
    cv_.wait(lock, [&] { return rendering_ < kMaxRendering; });
    --waiting_;
    ++rendering_;
    ++renders_;
  }
  Result<std::string> jpeg = deps_.render(path, size);
  {
    std::lock_guard<std::mutex> lock(mu_);
    --rendering_;
  }
  cv_.notify_all();
  return jpeg;
}

Status CoverService::CheckPicture(const std::string& path) {
  // The smallest thumbnail: a full decode (libvips shrinks on load), little output.
  auto jpeg = RenderLimited(path, kCheckSize);
  if (jpeg.ok()) return Status::Ok();
  const StatusCode code = jpeg.status().code();
  if (code == StatusCode::kNotFound || code == StatusCode::kInvalidArgument) {
    return Status::InvalidArgument("not a picture the node can read (JPEG, PNG or WebP): " +
                                   jpeg.status().message());
  }
  if (code == StatusCode::kTimeout)
    return Status::Unavailable("the node is too busy to check the picture; retry");
  return jpeg.status();
}

Result<std::string> CoverService::RenderFromSong(const std::string& sha256) {
  auto song = deps_.store->SongWithCover(sha256);
  if (song.ok() && !song->has_value()) {
    // Perhaps uploaded through another node a moment ago: once more with the latest state.
    DISPOTIFY_RETURN_IF_ERROR(deps_.files->SyncForRead(replication::ReadConsistency::kLinearizable));
    song = deps_.store->SongWithCover(sha256);
  }
  if (!song.ok()) return song.status();
  if (!song->has_value()) return Status::NotFound("no song has the cover " + sha256);
  const catalog::Song& s = **song;

  auto spool = SpoolFile::Create(options_.spool_dir, "cover");
  if (!spool.ok()) return Status::IoError("cannot spool a song to render its cover");
  SpoolFile* file = spool->get();
  Status read = deps_.files->ReadContent(
      s.file_id, s.sha256, s.size_bytes, 0, 0,
      [file](std::string_view bytes) { return file->Write(bytes.data(), bytes.size()); });
  if (!read.ok()) {
    if (read.code() == StatusCode::kNotFound) {
      return Status::Unavailable("no copy of " + s.file_id + " (which holds cover " + sha256 +
                                 ") is reachable");
    }
    return read;
  }
  auto jpeg = RenderLimited(file->path(), kBaseSize);
  const StatusCode code = jpeg.ok() ? StatusCode::kOk : jpeg.status().code();
  if (code == StatusCode::kInvalidArgument || code == StatusCode::kNotFound) {
    // The same bytes fail the same way: remembered, so that pages showing it do not rerun it.
    DLOG_WARN << "cover " << sha256 << " of " << s.file_id
              << " cannot be rendered: " << jpeg.status().message();
    std::lock_guard<std::mutex> lock(mu_);
    if (failures_.size() < kMaxFailures) failures_.insert(sha256);
    return Status::NotFound("the picture of cover " + sha256 + " does not decode");
  }
  if (code == StatusCode::kTimeout)
    return Status::Unavailable("rendering cover " + sha256 + " timed out; retry");
  return jpeg;
}

void CoverService::Store(const std::string& name, const std::string& jpeg) {
  const std::string path = options_.cache_dir + "/" + name;
  const std::string temp = path + kTempSuffix;
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(jpeg.data(), static_cast<std::streamsize>(jpeg.size()));
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(temp, ec);
      return;
    }
  }
  // A cache: no fsync, but a rename, since a thumbnail torn by a crash would be served: it is
  // whole or absent.
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    fs::remove(temp, ec);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  cache_bytes_ += jpeg.size();
  if (cache_bytes_ > options_.max_cache_bytes) EvictLocked();
}

void CoverService::EvictLocked() {
  struct Entry {
    fs::file_time_type written;
    fs::path path;
    uint64_t size;
  };
  std::vector<Entry> entries;
  std::error_code ec;
  for (fs::directory_iterator it(options_.cache_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().ends_with(kTempSuffix)) continue;
    std::error_code e2;
    const auto written = it->last_write_time(e2);
    const auto size = e2 ? 0 : it->file_size(e2);
    if (!e2) entries.push_back({written, it->path(), size});
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.written < b.written; });
  uint64_t total = 0;
  for (const Entry& e : entries) total += e.size;
  const uint64_t target = options_.max_cache_bytes / 10 * 9;
  for (const Entry& e : entries) {
    if (total <= target) break;
    std::error_code e2;
    if (fs::remove(e.path, e2)) total -= e.size;
  }
  cache_bytes_ = total;
}

void AddCoverRoutes(CoverService* covers, http::Router* router) {
  router->Get("/music/covers/{sha256}", [covers](http::Request& req, http::BodyReader&) {
    auto size = rest::UintParam(req, "size", kDefaultCoverSize, 1, 4096);
    if (!size.ok()) return rest::Error(size.status());
    const std::string sha256(req.PathParam("sha256"));
    // The bytes of a name and size never change: a strong tag, and the client keeps them.
    const std::string etag = "\"" + sha256 + "-" + std::to_string(*size) + "\"";
    auto with_cache_headers = [&](http::Response r) {
      r.AddHeader("ETag", etag);
      r.AddHeader("Cache-Control", "public, max-age=31536000, immutable");
      r.AddHeader("X-Content-Type-Options", "nosniff");
      return r;
    };
    if (auto inm = req.Header("If-None-Match"); inm && http::IfNoneMatchMatches(*inm, etag) &&
                                                IsCoverName(sha256) &&
                                                IsCoverSize(static_cast<uint32_t>(*size))) {
      return with_cache_headers(http::Response::Empty(304));
    }
    auto jpeg = covers->Get(sha256, static_cast<uint32_t>(*size));
    if (!jpeg.ok()) return rest::Error(jpeg.status());
    return with_cache_headers(http::Response::Text(200, std::move(jpeg).value(), "image/jpeg"));
  });
}

}  // namespace dispotify::api
