#pragma once
// Cover art: thumbnails of the pictures embedded in songs, rendered on demand and cached.
//
// A song's cover (catalog::Song::cover) names its embedded picture by the SHA-256 of the
// picture's bytes. The picture is stored only inside the audio file, so it is replicated,
// repaired and scrubbed with it: a cover survives exactly what the song survives. Serving
// GET /music/covers/{sha256}?size=N (N in kCoverSizes, default 256):
//   1. the cached thumbnail <cache_dir>/<sha256>-<N>.jpg, when present;
//   2. else, for N = 1024 (the base thumbnail): a song with that cover from the catalog (this
//      node's; once more after a linearizable sync when it has none, so a cover uploaded through
//      another node a moment ago is found), its bytes read from any copy (this node's first:
//      FileService::ReadContent, verified) into a spool file, the picture decoded and scaled to
//      fit N x N inside the sandboxed tagger (node/api/tags/: pictures come from uploads, so they
//      are untrusted and never decoded in the node), and the JPEG written to the cache (temp
//      file + rename); for the smaller sizes: the base thumbnail, scaled by the tagger again
//      (so a song is copied once per cover, not once per size).
// The name fixes the bytes, so the answer is `immutable` and needs no linearizable read.
// Concurrent requests for one thumbnail render it once, and at most kMaxRendering taggers run at
// a time (kMaxWaiting more wait; beyond that a request is answered 503 at once): a page of 50
// cold covers cannot fork 50 taggers. The cache is bounded (max_cache_bytes): when a new
// thumbnail takes it over, the oldest thumbnails go until it is at 90%. A picture that does not
// decode (the same bytes fail the same way) is remembered, up to kMaxFailures of them, so that
// every page showing it does not rerun the tagger; a tagger that ran out of time (a busy machine)
// is not, and the request is answered 503.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"
#include "node/api/http/router.h"

namespace dispotify::catalog {
class MetadataStore;
}
namespace dispotify::replication {
class FileService;
}

namespace dispotify::api {

// The thumbnail sizes a client may ask for (pixels, the longer side): a fixed set, so that a
// client cannot fill the cache with every size of every cover.
inline constexpr uint32_t kCoverSizes[] = {64, 128, 256, 512, 1024};
inline constexpr uint32_t kDefaultCoverSize = 256;

struct CoverServiceOptions {
  std::string cache_dir;  // created by Start
  std::string spool_dir;  // where a song's bytes wait while its picture is rendered
  uint64_t max_cache_bytes = uint64_t{256} << 20;
};

struct CoverServiceDeps {
  catalog::MetadataStore* store = nullptr;
  replication::FileService* files = nullptr;
  // The JPEG of the picture in the file at `path` (audio or image), scaled to fit size x size:
  // kNotFound when the file has no picture, kInvalidArgument when it does not decode
  // (tags::RenderCover in the node).
  std::function<Result<std::string>(const std::string& path, uint32_t size)> render;
};

class CoverService {
 public:
  static constexpr size_t kMaxFailures = 4096;
  static constexpr int kMaxRendering = 2;
  static constexpr int kMaxWaiting = 64;

  CoverService(CoverServiceOptions options, CoverServiceDeps deps);

  // Creates the cache directory, removes temp files a crash left and measures what is there.
  Status Start();

  // The thumbnail's JPEG bytes. kInvalidArgument: `sha256` is not 64 lowercase hex digits or
  // `size` is not in kCoverSizes; kNotFound: no song has this cover, or its picture does not
  // decode; kUnavailable: the latest catalog state cannot be had, no copy of the song could be
  // read, too many renders are waiting, or the tagger cannot run (in time); kIoError: the spool
  // file cannot be written.
  Result<std::string> Get(std::string_view sha256, uint32_t size);

  // Whether the file at `path` is a picture the tagger decodes (an album picture being uploaded):
  // kInvalidArgument when it is not, kUnavailable when the tagger cannot run (or not in time).
  Status CheckPicture(const std::string& path);

  // For tests and metrics: thumbnails rendered (not served from the cache) so far, and the
  // cache's size in bytes.
  uint64_t renders() const;
  uint64_t cache_bytes() const;

 private:
  struct Flight {
    bool done = false;
    Result<std::string> result = Status::Unavailable("not rendered yet");
  };

  Result<std::string> GetOrRender(const std::string& sha256, uint32_t size);
  // The base thumbnail from a song that has the cover.
  Result<std::string> RenderFromSong(const std::string& sha256);
  Result<std::string> BasePath(const std::string& sha256);
  // The render dependency, at most kMaxRendering at a time.
  Result<std::string> RenderLimited(const std::string& path, uint32_t size);
  // Writes the thumbnail to the cache (best effort: a cache that cannot be written only costs a
  // render next time) and evicts what is over the budget.
  void Store(const std::string& name, const std::string& jpeg);
  void EvictLocked();

  const CoverServiceOptions options_;
  const CoverServiceDeps deps_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Flight>> flights_;  // by cache file name
  std::set<std::string> failures_;                          // pictures that do not decode
  uint64_t cache_bytes_ = 0;
  uint64_t renders_ = 0;
  int rendering_ = 0;
  int waiting_ = 0;
};

// GET /music/covers/{sha256}?size=N: image/jpeg, `Cache-Control: public, max-age=31536000,
// immutable`, an ETag (If-None-Match: 304). Errors are the API's JSON errors (400, 404, 503).
void AddCoverRoutes(CoverService* covers, http::Router* router);

}  // namespace dispotify::api
