#pragma once
// The public REST API (documented in docs/openapi.yaml) as routes on the HTTP server
// (node/api/http/): everything is JSON except audio bytes; errors are
// {"error": {"code": "...", "message": "..."}} with the matching status code.
//
//   POST   /music/upload              raw body (?filename=&file_id=&title=&artist=&album=&track=
//                                    &year=) or multipart/form-data (text fields first, then the
//                                    `file` part). Streamed to the replicas through a local spool
//                                    file (tags are read from it), bounded memory. 201 (or 200 when
//                                    the same content is already stored under that id).
//   GET    /music/search?q=&limit=&offset=&cursor=
//   GET    /music/stream/{file_id}    (and HEAD) Range, ETag, If-None-Match; a local verified copy
//                                    goes out with sendfile(2), otherwise it is proxied from a
//                                    replica.
//   GET    /music/songs?limit=&after=
//   GET    /music/songs/{file_id}
//   DELETE /music/songs/{file_id}
//   GET    /music/artists?limit=&after=, /music/albums?limit=&after=&sort=&artist=,
//          /music/albums/{album_id}   (library_routes.h)
//   GET    /music/covers/{sha256}?size=  a song's embedded picture as a JPEG thumbnail (covers.h)
//   GET    /healthz, /readyz, /cluster/status
//   admin (bearer token when configured):
//   POST   /admin/members {"node_id","address"[,"node_uuid"]}, POST /admin/members/{id}/promote,
//   DELETE /admin/members/{id}, POST /admin/leadership {"target"},
//   PUT    /admin/replication {"factor"}

#include <cpprest/json.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "node/api/http/router.h"
#include "node/replication/file_service.h"  // ReadConsistency

namespace web::json {
class value;  // cpprestsdk's; not included here: its U() macro breaks GoogleTest in includers
}  // namespace web::json

namespace dispotify::catalog {
class MetadataStore;
class Proposer;
struct Song;
struct Replica;
}  // namespace dispotify::catalog

namespace dispotify::audit {
class AuditLog;
}  // namespace dispotify::audit

namespace dispotify::replication {
class BlobStore;
class FileService;
class PeerClient;
class RepairManager;
}  // namespace dispotify::replication

namespace dispotify::api {

class AuthApi;
class ClusterControl;
class CoverService;

// Tags read from an uploaded file (by an isolated TagLib process; see node/api/tags/).
struct AudioInfo {
  std::string format;  // e.g. mp3, flac
  std::string title;
  std::string artist;
  std::string album;
  uint32_t track = 0;
  uint32_t year = 0;
  uint64_t duration_ms = 0;
  std::string album_artist;  // "": not tagged
  uint32_t disc = 0;
  std::string genre;
  bool compilation = false;
  std::string cover;  // SHA-256 (lowercase hex) of the embedded picture; "" when none
};

struct RestApiOptions {
  NodeId self;
  uint64_t max_upload_bytes = 2ull << 30;
  std::string bearer_token;  // empty: the admin API is open (a local cluster)
  std::string spool_dir;     // where uploads are spooled while they stream to the replicas
  // Shown in /cluster/status: the software's version (mixed versions run side by side during a
  // rolling upgrade), the cluster's id and this node's incarnation (its data directory's uuid).
  std::string version;
  std::string cluster_id;
  std::string node_uuid;
};

struct RestApiDeps {
  replication::FileService* files = nullptr;
  catalog::MetadataStore* store = nullptr;
  catalog::Proposer* proposer = nullptr;
  replication::BlobStore* blobs = nullptr;
  replication::PeerClient* peers = nullptr;
  replication::RepairManager* repair = nullptr;  // runs on the leader
  ClusterControl* cluster = nullptr;
  CoverService* covers = nullptr;    // null: no /music/covers route
  AuthApi* auth = nullptr;           // null: security off (the /auth routes answer 404)
  audit::AuditLog* audit = nullptr;  // null: nothing is recorded
  std::function<uint32_t()> replication_factor;
  // Reads the tags of the file at `path`; kInvalidArgument when it is not audio. Null: no tags
  // are read (names and types come from the request only).
  std::function<Result<AudioInfo>(const std::string& path)> read_tags;
};

// Registers every route on `router`. `deps` must outlive the server.
void AddRestRoutes(const RestApiOptions& options, const RestApiDeps& deps, http::Router* router);

// What the route files share (rest_api.cc, library_routes.cc): one error mapping, one song JSON,
// one consistency rule for every catalog read.
namespace rest {
std::string Quote(std::string_view s);
// A song's JSON object; with `replicas`, their nodes and states too.
std::string SongJson(const catalog::Song& s, const std::vector<catalog::Replica>* replicas);
// A data-plane error as the REST status and error body.
http::Response Error(const Status& s);
// A query parameter as an unsigned number in [min, max]; `fallback` when absent.
Result<uint64_t> UintParam(const http::Request& req, std::string_view name, uint64_t fallback, uint64_t min,
                           uint64_t max);
// The request body as a JSON object whose keys are all in `allowed` (kInvalidArgument otherwise,
// naming the key); at most 16 KiB.
Result<web::json::value> ParseJsonObject(http::BodyReader& body, const std::vector<std::string>& allowed);
// obj[key] as an integer in [0, max]; 0 when absent and not required.
Result<uint64_t> JsonUint(const web::json::value& obj, const std::string& key, bool required, uint64_t max);
// ?consistency= / Dispotify-Consistency: linearizable (default) or stale.
Result<replication::ReadConsistency> ConsistencyOf(const http::Request& req);
http::Response WithConsistency(http::Response r, replication::ReadConsistency c);
}  // namespace rest

}  // namespace dispotify::api
