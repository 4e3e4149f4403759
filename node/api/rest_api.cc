#include "node/api/rest_api.h"

#include <cpprest/json.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "common/audit/chain.h"
#include "common/audit/entry.h"
#include "common/base64.h"
#include "common/file_id.h"
#include "common/logging.h"
#include "common/repr_digest.h"
#include "common/sha256.h"
#include "common/utf8.h"
#include "node/api/auth_api.h"
#include "node/api/cluster_control.h"
#include "node/api/covers.h"
#include "node/api/http/content_type.h"
#include "node/api/http/multipart.h"
#include "node/api/http/range.h"
#include "node/api/http/request.h"
#include "node/api/http/response.h"
#include "node/api/library_routes.h"
#include "node/api/spool_file.h"
#include "node/audit/audit_log.h"
#include "node/auth/policy.h"
#include "node/catalog/library.h"
#include "node/catalog/metadata_store.h"
#include "node/catalog/proposer.h"
#include "node/replication/blob_store.h"
#include "node/replication/file_service.h"
#include "node/replication/peer_client.h"
#include "node/replication/repair.h"

namespace dispotify::api {
namespace {

using http::BodyReader;
using http::JsonError;
using http::JsonEscape;
using http::Request;
using http::Response;

constexpr size_t kMaxFieldBytes = 4096;     // title, artist, album (the catalog's limit)
constexpr size_t kMaxFileNameBytes = 1024;  // filename
constexpr size_t kMaxAdminBody = 16 * 1024;
constexpr uint64_t kMaxTrack = 100000;
constexpr uint64_t kMaxYear = 9999;
constexpr uint64_t kMaxSearchOffset = 1000;  // deeper pages use the cursor (the stores' limit)
// The tagger refuses larger images (node/api/tags/picture.h).
constexpr uint64_t kMaxPictureBytes = uint64_t{16} << 20;
// How many songs of a picture's folder are looked at to find its album.
constexpr uint32_t kMaxFolderScan = 5000;

}  // namespace

// Shared with the library routes (library_routes.cc); declared in rest_api.h.
namespace rest {

std::string Quote(std::string_view s) {
  return "\"" + JsonEscape(s) + "\"";
}

std::string SongJson(const catalog::Song& s, const std::vector<catalog::Replica>* replicas) {
  std::string out =
      "{\"file_id\":" + Quote(s.file_id) + ",\"title\":" + Quote(s.title) + ",\"artist\":" + Quote(s.artist) +
      ",\"album\":" + Quote(s.album) + ",\"file_name\":" + Quote(s.file_name) +
      ",\"content_type\":" + Quote(s.content_type) + ",\"track\":" + std::to_string(s.track) +
      ",\"year\":" + std::to_string(s.year) + ",\"duration_ms\":" + std::to_string(s.duration_ms) +
      ",\"size_bytes\":" + std::to_string(s.size_bytes) + ",\"sha256\":" + Quote(s.sha256) +
      ",\"created_at_ms\":" + std::to_string(s.created_at_ms) + ",\"album_artist\":" + Quote(s.album_artist) +
      ",\"disc\":" + std::to_string(s.disc) + ",\"genre\":" + Quote(s.genre) +
      ",\"compilation\":" + (s.compilation ? "true" : "false") + ",\"album_id\":" + Quote(s.album_id) +
      ",\"cover\":" + Quote(s.cover) +
      // The content URL: served from any copy, even without a quorum; cacheable.
      ",\"stream_url\":" + Quote("/music/stream/" + s.file_id + "?sha256=" + s.sha256);
  if (replicas != nullptr) {
    out += ",\"replicas\":[";
    for (size_t i = 0; i < replicas->size(); ++i) {
      const auto& r = (*replicas)[i];
      if (i > 0) out += ",";
      out += "{\"node_id\":" + std::to_string(r.node.value()) + ",\"state\":\"" +
             catalog::ReplicaStateName(r.state) + "\"}";
    }
    out += "]";
  }
  return out + "}";
}

// Maps a data-plane error to the REST status and error body.
Response Error(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kNotLeader:
    case StatusCode::kRetry:
    case StatusCode::kCommitUnknown: {
      Response r = JsonError(503, "unavailable", s.message());
      r.AddHeader("Retry-After", "2");
      return r;
    }
    case StatusCode::kAborted: return JsonError(409, "conflict", s.message());
    case StatusCode::kAlreadyExists: return JsonError(409, "already_exists", s.message());
    case StatusCode::kFailedPrecondition: return JsonError(409, "failed_precondition", s.message());
    case StatusCode::kTimeout: return JsonError(504, "timeout", s.message());
    case StatusCode::kInvalidArgument: return JsonError(400, "invalid_argument", s.message());
    case StatusCode::kNotFound: return JsonError(404, "not_found", s.message());
    case StatusCode::kNoSpace: return JsonError(507, "insufficient_storage", s.message());
    default: return JsonError(500, "internal", s.ToString());
  }
}

// Query parameter as an unsigned number in [min, max]; `fallback` when absent.
Result<uint64_t> UintParam(const Request& req, std::string_view name, uint64_t fallback, uint64_t min,
                           uint64_t max) {
  auto v = req.Query(name);
  if (!v) return fallback;
  uint64_t out = 0;
  if (v->empty() || v->size() > 19) return Status::InvalidArgument(std::string(name) + " must be a number");
  for (char c : *v) {
    if (c < '0' || c > '9') return Status::InvalidArgument(std::string(name) + " must be a number");
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  if (out < min || out > max) {
    return Status::InvalidArgument(std::string(name) + " must be in [" + std::to_string(min) + ", " +
                                   std::to_string(max) + "]");
  }
  return out;
}

// A catalog read's consistency: linearizable unless the client opts in to a possibly stale answer
// with ?consistency=stale or the header Dispotify-Consistency: stale.
// Both are checked when both are sent; the parameter wins.
Result<replication::ReadConsistency> ConsistencyOf(const Request& req) {
  using replication::ReadConsistency;
  std::optional<ReadConsistency> out;
  for (std::optional<std::string_view> v : {req.Header("Dispotify-Consistency"), req.Query("consistency")}) {
    if (!v) continue;
    if (*v == "linearizable") {
      out = ReadConsistency::kLinearizable;
    } else if (*v == "stale") {
      out = ReadConsistency::kStale;
    } else {
      return Status::InvalidArgument("consistency must be 'linearizable' or 'stale'");
    }
  }
  return out.value_or(ReadConsistency::kLinearizable);
}

// Every catalog read says how it was served; a stale one may miss recent changes.
Response WithConsistency(Response r, replication::ReadConsistency c) {
  r.AddHeader("Dispotify-Consistency", c == replication::ReadConsistency::kStale ? "stale" : "linearizable");
  return r;
}

}  // namespace rest

namespace {

using rest::ConsistencyOf;
using rest::Error;
using rest::Quote;
using rest::SongJson;
using rest::UintParam;
using rest::WithConsistency;

// A node's incarnation as node/storage/identity.h makes it (32 lowercase hex digits); up to 64
// accepted so that the format may grow.
bool ValidNodeUuid(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// "Album/01.mp3" -> "01.mp3"; either separator, trailing ones ignored.
std::string LastPathComponent(std::string_view path) {
  while (!path.empty() && (path.back() == '/' || path.back() == '\\')) path.remove_suffix(1);
  if (const size_t sep = path.find_last_of("/\\"); sep != std::string_view::npos) path.remove_prefix(sep + 1);
  return std::string(path);
}

// The SHA-256 the client expects the body to have, from ?sha256=<hex> and the Repr-Digest field
// (RFC 9530); both must agree when both are sent.
Result<std::optional<std::string>> ExpectedSha256(const Request& req) {
  std::optional<std::string> from_query;
  if (auto q = req.Query("sha256")) {
    if (!IsSha256Hex(*q)) return Status::InvalidArgument("sha256 must be 64 hex digits");
    std::string hex(*q);
    for (char& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    from_query = std::move(hex);
  }
  auto from_header = Sha256FromReprDigest(req.headers.GetAll("Repr-Digest"));
  if (!from_header.ok()) return from_header.status();
  if (from_query && *from_header && *from_query != **from_header)
    return Status::InvalidArgument("the sha256 parameter and the Repr-Digest field disagree");
  return from_query ? from_query : *from_header;
}

// Runs a push-style read (FileService::Read) on its own thread into a bounded queue, for a
// pull-style HTTP body. Started by the first Produce (a HEAD request never starts it).
class ProxyStream {
 public:
  using Reader = std::function<Status(const std::function<Status(std::string_view)>& sink)>;
  static constexpr size_t kMaxQueued = 1 << 20;

  explicit ProxyStream(Reader reader) : reader_(std::move(reader)) {}
  ~ProxyStream() {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  Result<size_t> Produce(char* buf, size_t max) {
    std::unique_lock lock(mu_);
    if (!started_) {
      started_ = true;
      thread_ = std::thread([this] { Run(); });
    }
    cv_.wait(lock, [this] { return !queue_.empty() || done_; });
    if (queue_.empty()) {
      if (!status_.ok()) return status_;
      return size_t{0};
    }
    std::string& front = queue_.front();
    const size_t n = std::min(max, front.size() - offset_);
    std::memcpy(buf, front.data() + offset_, n);
    offset_ += n;
    queued_ -= n;
    if (offset_ == front.size()) {
      queue_.pop_front();
      offset_ = 0;
    }
    cv_.notify_all();
    return n;
  }

 private:
  void Run() {
    Status s = reader_([this](std::string_view data) -> Status {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return queued_ < kMaxQueued || cancelled_; });
      if (cancelled_) return Status::Aborted("the client went away");
      queue_.emplace_back(data);
      queued_ += data.size();
      cv_.notify_all();
      return Status::Ok();
    });
    std::lock_guard lock(mu_);
    status_ = s;
    done_ = true;
    cv_.notify_all();
  }

  Reader reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  size_t offset_ = 0;
  size_t queued_ = 0;
  bool started_ = false;
  bool done_ = false;
  bool cancelled_ = false;
  Status status_;
  std::thread thread_;
};

}  // namespace

namespace rest {

Result<web::json::value> ParseJsonObject(BodyReader& body, const std::vector<std::string>& allowed) {
  auto text = http::ReadBodyToString(body, kMaxAdminBody);
  if (!text.ok()) return text.status();
  web::json::value v;
  try {
    v = web::json::value::parse(*text);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("malformed JSON: ") + e.what());
  }
  if (!v.is_object()) return Status::InvalidArgument("the body must be a JSON object");
  for (const auto& [key, value] : v.as_object()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      return Status::InvalidArgument("unknown field '" + key + "'");
  }
  return v;
}

Result<uint64_t> JsonUint(const web::json::value& obj, const std::string& key, bool required, uint64_t max) {
  if (!obj.has_field(key)) {
    if (required) return Status::InvalidArgument("missing field '" + key + "'");
    return uint64_t{0};
  }
  const auto& v = obj.at(key);
  if (!v.is_number() || !v.as_number().is_integral() || v.as_number().to_int64() < 0 ||
      v.as_number().to_uint64() > max) {
    return Status::InvalidArgument("'" + key + "' must be an integer in [0, " + std::to_string(max) + "]");
  }
  return v.as_number().to_uint64();
}

}  // namespace rest

namespace {

using rest::JsonUint;
using rest::ParseJsonObject;

Result<NodeId> NodeParam(const Request& req) {
  std::string_view text = req.PathParam("id");
  uint64_t id = 0;
  if (text.empty() || text.size() > 19) return Status::InvalidArgument("the node id must be a number");
  for (char c : text) {
    if (c < '0' || c > '9') return Status::InvalidArgument("the node id must be a number");
    id = id * 10 + static_cast<uint64_t>(c - '0');
  }
  if (id == 0) return Status::InvalidArgument("the node id must be >= 1");
  return NodeId(id);
}

class Routes {
 public:
  Routes(RestApiOptions options, RestApiDeps deps) : options_(std::move(options)), deps_(std::move(deps)) {}

  Response Upload(Request& req, BodyReader& body) {
    replication::UploadRequest up;
    auto text_field = [&](std::string_view name, std::string* out) {
      if (auto v = req.Query(name)) *out = std::string(*v);
    };
    std::string path;  // the client's relative path (docs/file-ids.md)
    std::string replace;
    text_field("file_id", &up.file_id);
    text_field("filename", &up.file_name);
    text_field("path", &path);
    text_field("replace", &replace);
    std::string album_id;  // a picture's album (otherwise the album of the songs beside it)
    text_field("album_id", &album_id);
    text_field("title", &up.title);
    text_field("artist", &up.artist);
    text_field("album", &up.album);
    auto track = UintParam(req, "track", 0, 0, kMaxTrack);
    auto year = UintParam(req, "year", 0, 0, kMaxYear);
    if (!track.ok()) return Error(track.status());
    if (!year.ok()) return Error(year.status());
    up.track = static_cast<uint32_t>(*track);
    up.year = static_cast<uint32_t>(*year);

    BodyReader* content = &body;
    std::unique_ptr<http::MultipartReader> multipart;
    const std::string_view ctype = req.Header("Content-Type").value_or("");
    if (ctype.substr(0, 19) == "multipart/form-data") {
      auto boundary = http::BoundaryFromContentType(ctype);
      if (!boundary.ok()) return JsonError(400, "invalid_argument", boundary.status().message());
      multipart = std::make_unique<http::MultipartReader>(body, *boundary);
      bool found = false;
      while (!found) {
        auto next = multipart->NextPart();
        if (!next.ok())
          return JsonError(400, "invalid_argument", "malformed multipart body: " + next.status().message());
        if (!*next) return JsonError(400, "invalid_argument", "the multipart body has no 'file' part");
        const auto& part = multipart->part();
        if (part.name == "file") {
          if (up.file_name.empty()) up.file_name = part.filename.value_or("");
          if (up.content_type.empty() && !part.content_type.empty() &&
              part.content_type != "application/octet-stream")
            up.content_type = part.content_type;
          found = true;
          break;
        }
        auto value = http::ReadBodyToString(*multipart, kMaxFieldBytes);
        if (!value.ok())
          return JsonError(400, "invalid_argument",
                           "form field '" + part.name + "': " + value.status().message());
        if (part.name == "file_id")
          up.file_id = *value;
        else if (part.name == "path")
          path = *value;
        else if (part.name == "replace")
          replace = *value;
        else if (part.name == "album_id")
          album_id = *value;
        else if (part.name == "filename")
          up.file_name = *value;
        else if (part.name == "title")
          up.title = *value;
        else if (part.name == "artist")
          up.artist = *value;
        else if (part.name == "album")
          up.album = *value;
        else if (part.name == "track" || part.name == "year") {
          const uint64_t max = part.name == "track" ? kMaxTrack : kMaxYear;
          uint64_t n = 0;
          bool ok = !value->empty() && value->size() < 8;
          for (char c : *value) ok = ok && c >= '0' && c <= '9', n = n * 10 + static_cast<uint64_t>(c - '0');
          if (!ok || n > max)
            return JsonError(
                400, "invalid_argument",
                "form field '" + part.name + "' must be a number in [0, " + std::to_string(max) + "]");
          (part.name == "track" ? up.track : up.year) = static_cast<uint32_t>(n);
        } else {
          return JsonError(400, "invalid_argument", "unknown form field '" + part.name + "'");
        }
      }
      content = multipart.get();
    } else if (!multipart && req.content_length) {
      up.expected_size = *req.content_length;
    }
    if (path.size() > kMaxFileNameBytes)
      return JsonError(400, "invalid_argument",
                       "the path is longer than " + std::to_string(kMaxFileNameBytes) + " bytes");
    if (!IsValidUtf8(path)) return JsonError(400, "invalid_argument", "the path must be valid UTF-8");
    if (up.file_name.empty()) up.file_name = LastPathComponent(path);
    if (up.file_name.empty() && up.file_id.empty())
      return JsonError(400, "invalid_argument",
                       "name the file: ?path=, ?filename=, a multipart file name, or ?file_id=");
    if (up.file_name.empty()) up.file_name = up.file_id;
    if (replace == "true" || replace == "false")
      up.replace = replace == "true";
    else if (!replace.empty())
      return JsonError(400, "invalid_argument", "replace must be true or false");
    auto sha256 = ExpectedSha256(req);
    if (!sha256.ok()) return Error(sha256.status());
    up.expected_sha256 = *sha256;
    // Names that are not catalog user names (an OIDC subject such as "auth0|123") own nothing.
    if (req.principal && catalog::IsValidUserName(req.principal->name)) up.uploader = req.principal->name;
    // Everything the request names is checked before any byte reaches a disk (the spool file).
    if (!up.file_id.empty() && !catalog::IsValidFileId(up.file_id))
      return JsonError(400, "invalid_argument",
                       "invalid file_id: 1-128 characters of A-Z a-z 0-9 . _ - (not . or ..)");
    if (up.file_name.size() > kMaxFileNameBytes)
      return JsonError(400, "invalid_argument",
                       "the file name is longer than " + std::to_string(kMaxFileNameBytes) + " bytes");
    for (const auto& [name, value] : {std::pair<const char*, const std::string*>{"title", &up.title},
                                      {"artist", &up.artist},
                                      {"album", &up.album}}) {
      if (value->size() > kMaxFieldBytes)
        return JsonError(400, "invalid_argument",
                         std::string(name) + " is longer than " + std::to_string(kMaxFieldBytes) + " bytes");
    }
    for (const std::string* text : {&up.file_name, &up.title, &up.artist, &up.album}) {
      if (!IsValidUtf8(*text)) return JsonError(400, "invalid_argument", "text fields must be valid UTF-8");
    }
    // The id is known before the body arrives (placement hashes it): the explicit one, else the
    // path's, else the file name's.
    if (up.file_id.empty()) {
      up.file_id = FileIdFromPath(path.empty() ? up.file_name : path);
      if (up.file_id.empty())
        return JsonError(400, "invalid_argument",
                         std::string("no file_id given and none can be derived from the ") +
                             (path.empty() ? "file name" : "path") + " (see docs/file-ids.md)");
    }
    if (up.replace) {
      if (Response refusal = CheckOwner(req, up.file_id); refusal.status() != 200) return refusal;
    }
    // A raw body's audio/* Content-Type counts like a multipart part's.
    if (!multipart && ctype.substr(0, 6) == "audio/") {
      std::string_view media = ctype.substr(0, ctype.find(';'));
      while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
      const bool token = std::all_of(media.begin(), media.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               (c != '\0' && std::strchr("/!#$&^_.+-", c) != nullptr);
      });
      if (token && media.size() > 6 && media.size() <= 255) up.content_type = std::string(media);
    }
    // The type comes from the extension of the file name's last component (as when streaming).
    if (up.content_type.empty()) up.content_type = std::string(http::ContentTypeForFileName(up.file_name));
    const bool picture = up.content_type.rfind("image/", 0) == 0;
    if (picture && up.content_type != "image/jpeg" && up.content_type != "image/png" &&
        up.content_type != "image/webp") {
      return JsonError(415, "unsupported_media_type",
                       "an album picture is a JPEG, PNG or WebP image: " + up.file_name);
    }
    if (!picture && up.content_type.rfind("audio/", 0) != 0) {
      return JsonError(415, "unsupported_media_type",
                       "not an audio file or an album picture (by name or type): " + up.file_name);
    }
    // A picture illustrates an album that exists: named, or that of the songs beside it. Checked
    // before any byte is read.
    catalog::AlbumSummary album;
    if (picture) {
      if (!deps_.covers)
        return JsonError(415, "unsupported_media_type", "this node does not store album pictures");
      if (up.expected_size && *up.expected_size > kMaxPictureBytes)
        return JsonError(413, "payload_too_large",
                         "an album picture is at most " + std::to_string(kMaxPictureBytes >> 20) + " MiB");
      auto found = AlbumForPicture(album_id, path, up.file_name);
      if (!found.ok()) {
        if (found.status().code() == StatusCode::kFailedPrecondition)
          return JsonError(409, "no_album", found.status().message());
        return Error(found.status());
      }
      album = std::move(found).value();
      up.title.clear();
      up.artist = album.album_artist;
      up.album = album.title;
      up.track = up.year = 0;
    }

    auto spool = SpoolFile::Create(options_.spool_dir);
    if (!spool.ok()) return Error(spool.status());
    SpoolFile* sp = spool->get();
    auto source = [content, sp](char* buf, size_t max) -> Result<size_t> {
      auto n = content->Read(buf, max);
      if (!n.ok() || *n == 0) return n;
      DISPOTIFY_RETURN_IF_ERROR(sp->Write(buf, *n));
      return n;
    };
    bool not_audio = false;
    const replication::UploadRequest given = up;
    up.before_commit = [&](catalog::Song* song) -> Status {
      if (picture) {
        if (song->size_bytes > kMaxPictureBytes) {
          return Status::FailedPrecondition("an album picture is at most " +
                                            std::to_string(kMaxPictureBytes >> 20) + " MiB");
        }
        if (Status s = deps_.covers->CheckPicture(sp->path()); !s.ok()) {
          not_audio = s.code() == StatusCode::kInvalidArgument;
          return s;
        }
        // Its album's names, so that its album id is the album's; its cover is itself.
        song->album_artist = album.album_artist;
        song->compilation = false;
        song->cover = song->sha256;
        return Status::Ok();
      }
      if (!deps_.read_tags) return Status::Ok();
      auto tags = deps_.read_tags(sp->path());
      if (!tags.ok()) {
        not_audio = tags.status().code() == StatusCode::kInvalidArgument;
        return tags.status();
      }
      // Form fields override what the file says.
      if (given.title.empty()) song->title = tags->title;
      if (given.artist.empty()) song->artist = tags->artist;
      if (given.album.empty()) song->album = tags->album;
      if (given.track == 0) song->track = tags->track;
      if (given.year == 0) song->year = tags->year;
      song->duration_ms = tags->duration_ms;
      song->album_artist = tags->album_artist;
      song->disc = tags->disc;
      song->genre = tags->genre;
      song->compilation = tags->compilation;
      song->cover = tags->cover;
      return Status::Ok();
    };
    auto result = deps_.files->Upload(up, source);
    if (!result.ok()) {
      if (not_audio) return JsonError(415, "unsupported_media_type", result.status().message());
      if (result.status().code() == StatusCode::kFailedPrecondition)
        return JsonError(413, "payload_too_large", result.status().message());
      return Error(result.status());
    }
    auto replicas = deps_.store->GetReplicas(result->song.file_id);
    std::vector<catalog::Replica> listed;
    if (replicas.ok()) listed = std::move(replicas).value();
    catalog::Song song = result->song;
    catalog::CompleteSong(&song);  // what the store derived when it wrote the song
    if (result->created) {
      AuditAction(audit::Action::kUpload, req, song.file_id, "ok", "sha256=" + song.sha256);
    }
    Response r = Response::Json(result->created ? 201 : 200, SongJson(song, &listed));
    r.AddHeader("Location", "/music/songs/" + result->song.file_id);
    return r;
  }

  // Records an action of the request's caller in the audit trail (when there is one).
  void AuditAction(audit::Action action, const Request& req, std::string_view target, std::string_view code,
                   std::string_view detail = {}, audit::Outcome outcome = audit::Outcome::kOk) {
    if (deps_.audit == nullptr) return;
    const std::string actor = req.principal && req.principal->authenticated()
                                  ? req.principal->name
                                  : std::string(audit::kAnonymous);
    const std::string& a = req.remote_address;
    deps_.audit->Record(action, outcome, actor, a.substr(0, a.rfind(':')), target, code, detail,
                        req.request_id);
  }

  // The album a picture illustrates: `album_id` when given (it must exist), else that of the
  // songs in the picture's folder: those whose ids start with the folder's id and '_' (the
  // folder and below; a sibling folder whose name extends this one's with '_' matches too, which
  // is why clients name the album when they know it). FailedPrecondition (409) when no song
  // matches yet or songs of several albums do. `file_name` must be an album picture's name.
  // Linearizable: the songs uploaded just before, through any node, are seen.
  Result<catalog::AlbumSummary> AlbumForPicture(const std::string& album_id, const std::string& path,
                                                const std::string& file_name) {
    // Whatever names the album, only the names players give an album's picture: a folder's
    // other images (the back, booklet scans) are not its cover.
    if (!IsAlbumPictureName(file_name)) {
      return Status::InvalidArgument(
          "an album picture is named cover, folder or front (.jpg, .jpeg, .png or .webp, any case)");
    }
    std::string id = album_id;
    if (id.empty()) {
      const size_t slash = path.find_last_of("/\\");
      const std::string folder = slash == std::string::npos ? "" : FileIdFromPath(path.substr(0, slash));
      if (folder.empty()) {
        return Status::InvalidArgument(
            "name the picture's album: ?album_id=, or a ?path= in the folder of the album's songs");
      }
      // Ids in the folder start with "<folder>_". The keyset starts after "<folder>Z" padded with
      // 'z' to the longest id: 'Z' is the largest id character below '_' and 'z' the largest of
      // all, so no id lies between it and the folder's first.
      const std::string prefix = folder + "_";
      if (prefix.size() >= kMaxFileIdSize) {
        return Status::FailedPrecondition("no song can be in the picture's folder: its path is too long");
      }
      DISPOTIFY_RETURN_IF_ERROR(deps_.files->SyncForRead(replication::ReadConsistency::kLinearizable));
      catalog::ListRequest lr;
      lr.limit = 500;
      lr.after_file_id = folder + "Z" + std::string(kMaxFileIdSize - prefix.size(), 'z');
      std::set<std::string> albums;
      uint32_t scanned = 0;
      bool more = true;
      while (more && albums.size() < 2 && scanned < kMaxFolderScan) {
        auto page = deps_.store->ListSongs(lr);
        if (!page.ok()) return page.status();
        for (const catalog::Song& song : page->items) {
          if (!song.file_id.starts_with(prefix)) {
            more = false;
            break;
          }
          ++scanned;
          if (!catalog::IsPicture(song)) albums.insert(song.album_id);
        }
        if (page->next_after.empty()) more = false;
        lr.after_file_id = page->next_after;
      }
      if (albums.empty()) {
        return Status::FailedPrecondition("no song in the picture's folder yet (ids starting " + prefix +
                                          "): upload the songs first, or name the album with ?album_id=");
      }
      if (albums.size() > 1) {
        return Status::FailedPrecondition(
            "the songs in the picture's folder belong to several albums: name one "
            "with ?album_id=");
      }
      id = *albums.begin();
    }
    if (!catalog::IsValidAlbumId(id))
      return Status::InvalidArgument("an album id is 16 lowercase hex digits");
    auto detail = deps_.store->GetAlbum(id);
    if (!detail.ok()) return detail.status();
    if (!detail->has_value()) return Status::NotFound("no album " + id);
    return (*detail)->summary;
  }

  Response Search(Request& req, BodyReader&) {
    catalog::SearchRequest sr;
    auto q = req.Query("q");
    if (!q || q->empty()) return JsonError(400, "invalid_argument", "q is required");
    sr.query = std::string(*q);
    auto limit = UintParam(req, "limit", 20, 1, 100);
    auto offset = UintParam(req, "offset", 0, 0, kMaxSearchOffset);
    if (!limit.ok()) return Error(limit.status());
    if (!offset.ok()) return Error(offset.status());
    sr.limit = static_cast<uint32_t>(*limit);
    sr.offset = static_cast<uint32_t>(*offset);
    if (auto c = req.Query("cursor")) sr.cursor = std::string(*c);
    auto consistency = ConsistencyOf(req);
    if (!consistency.ok()) return Error(consistency.status());
    if (Status s = deps_.files->SyncForRead(*consistency); !s.ok()) return Error(s);
    auto page = deps_.store->Search(sr);
    if (!page.ok()) return Error(page.status());
    std::string out = "{\"total\":" + std::to_string(page->total) + ",\"items\":[";
    for (size_t i = 0; i < page->items.size(); ++i) {
      if (i > 0) out += ",";
      out += SongJson(page->items[i], nullptr);
    }
    out += "],\"next_cursor\":" + Quote(page->next_cursor) + "}";
    return WithConsistency(Response::Json(200, std::move(out)), *consistency);
  }

  Response ListSongs(Request& req, BodyReader&) {
    catalog::ListRequest lr;
    auto limit = UintParam(req, "limit", 50, 1, 1000);
    if (!limit.ok()) return Error(limit.status());
    lr.limit = static_cast<uint32_t>(*limit);
    if (auto a = req.Query("after")) lr.after_file_id = std::string(*a);
    auto consistency = ConsistencyOf(req);
    if (!consistency.ok()) return Error(consistency.status());
    if (Status s = deps_.files->SyncForRead(*consistency); !s.ok()) return Error(s);
    // Album pictures are files of the catalog but not songs: they are skipped, and the store is
    // read on until the page is full, so that only the last page is short. Reads take at least
    // 100 entries, so that a run of pictures costs few queries; a page that fills up in the
    // middle of a read ends at its last song.
    std::string out = "{\"items\":[";
    size_t n = 0;
    std::string next;
    while (true) {
      lr.limit = static_cast<uint32_t>(std::max<uint64_t>(*limit - n, 100));
      auto page = deps_.store->ListSongs(lr);
      if (!page.ok()) return Error(page.status());
      bool full = false;
      for (size_t i = 0; i < page->items.size() && !full; ++i) {
        const catalog::Song& song = page->items[i];
        if (catalog::IsPicture(song)) continue;
        if (n++ > 0) out += ",";
        out += SongJson(song, nullptr);
        full = n == *limit;
        // The catalog's last entry ends the listing, as the store's last page does.
        const bool last = i + 1 == page->items.size() && page->next_after.empty();
        if (full) next = last ? "" : song.file_id;
      }
      if (full) break;
      next = page->next_after;
      if (next.empty()) break;
      lr.after_file_id = next;
    }
    out += "],\"next_after\":" + Quote(next) + "}";
    return WithConsistency(Response::Json(200, std::move(out)), *consistency);
  }

  Response GetSong(Request& req, BodyReader&) {
    auto consistency = ConsistencyOf(req);
    if (!consistency.ok()) return Error(consistency.status());
    auto song = deps_.files->GetSong(req.PathParam("file_id"), *consistency);
    if (!song.ok()) return WithConsistency(Error(song.status()), *consistency);
    auto replicas = deps_.store->GetReplicas(song->file_id);
    std::vector<catalog::Replica> listed;
    if (replicas.ok()) listed = std::move(replicas).value();
    return WithConsistency(Response::Json(200, SongJson(*song, &listed)), *consistency);
  }

  // With security on: 200 when the caller may change song `file_id` (an admin, its uploader, or
  // anyone allowed to delete when it has no recorded owner), else the 403 to send.
  Response CheckOwner(const Request& req, const std::string& file_id) {
    if (!req.principal || req.principal->Has(auth::Permission::kDeleteAny)) return Response::Empty(200);
    auto owner = deps_.store->GetSetting(catalog::UploaderKey(file_id));
    if (!owner.ok()) return Error(Status::Unavailable(owner.status().message()));
    if (owner->has_value() && **owner != req.principal->name) {
      return JsonError(403, "forbidden", "\"" + file_id + "\" was uploaded by someone else");
    }
    return Response::Empty(200);
  }

  Response DeleteSong(Request& req, BodyReader&) {
    if (Response refusal = CheckOwner(req, std::string(req.PathParam("file_id"))); refusal.status() != 200) {
      return refusal;
    }
    // The state machine answers kNotFound (404) for an absent song: no read needed first.
    Status s = deps_.files->Delete(req.PathParam("file_id"));
    if (!s.ok()) return Error(s);
    AuditAction(audit::Action::kDelete, req, req.PathParam("file_id"), "ok");
    return Response::Empty(204);
  }

  Response Stream(Request& req, BodyReader&) {
    if (auto sha = req.Query("sha256")) return StreamContent(req, std::string(*sha));
    auto consistency = ConsistencyOf(req);
    if (!consistency.ok()) return Error(consistency.status());
    auto song_r = deps_.files->GetSong(req.PathParam("file_id"), *consistency);
    if (!song_r.ok()) return WithConsistency(Error(song_r.status()), *consistency);
    // By id the bytes may change (a delete, then another upload under the same id): the client
    // revalidates with the ETag on every use. The content URL (?sha256=) is the cacheable one.
    return WithConsistency(StreamSong(req, std::move(song_r).value(), "no-cache"), *consistency);
  }

  // GET /music/stream/{file_id}?sha256=<hex>: the content named by the URL, from any verified copy;
  // no catalog read through the leader, so playback survives the loss of the quorum.
  Response StreamContent(Request& req, std::string sha256) {
    const std::string file_id(req.PathParam("file_id"));
    if (!catalog::IsValidFileId(file_id)) return JsonError(400, "invalid_argument", "invalid file_id");
    if (!IsSha256Hex(sha256))
      return JsonError(400, "invalid_argument", "sha256 must be 64 hexadecimal digits");
    for (char& c : sha256) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    catalog::Song song;
    // Metadata (type, name) from this node's catalog when it has this content; otherwise the size
    // comes from a copy and the type from the id's extension.
    auto local = deps_.store->GetSong(file_id);
    if (local.ok() && local->has_value() && (*local)->sha256 == sha256) {
      song = **local;
    } else {
      auto size = deps_.files->StatContent(file_id, sha256);
      if (!size.ok()) {
        if (size.status().code() == StatusCode::kNotFound)
          return JsonError(404, "not_found", "no copy of " + file_id + " with this content is reachable");
        return Error(size.status());
      }
      song.file_id = file_id;
      song.file_name = file_id;
      song.sha256 = sha256;
      song.size_bytes = *size;
    }
    return StreamSong(req, std::move(song), "public, max-age=31536000, immutable", /*by_content=*/true);
  }

  // The response for `song`'s bytes (range, conditional and cache headers included).
  Response StreamSong(Request& req, const catalog::Song& song, const char* cache_control,
                      bool by_content = false) {
    const std::string etag = "\"" + song.sha256 + "\"";
    const std::string ctype = song.content_type.empty()
                                  ? std::string(http::ContentTypeForFileName(song.file_name))
                                  : song.content_type;
    auto headers = [&](Response r) {
      r.AddHeader("ETag", etag);
      r.AddHeader("Accept-Ranges", "bytes");
      r.AddHeader("Cache-Control", cache_control);
      // Which node answered: behind a front address (nginx, a Kubernetes Service) the client and
      // the tests can tell which node a stream came from, e.g. to stop that one.
      r.AddHeader("Dispotify-Node", std::to_string(options_.self.value()));
      return r;
    };
    if (auto inm = req.Header("If-None-Match"); inm && http::IfNoneMatchMatches(*inm, etag)) {
      return headers(Response::Empty(304));
    }
    uint64_t start = 0;
    uint64_t length = song.size_bytes;
    int status = 200;
    std::string content_range;
    // If-Range (RFC 9110 13.1.5): the range only while the client's copy is this content, i.e. the
    // validator is this strong ETag; a date (there is no Last-Modified) or another tag gets the whole
    // file. Browsers' caches send it to fetch the rest of a partly cached stream.
    const auto if_range = req.Header("If-Range");
    const bool range_applies = !if_range.has_value() || *if_range == etag;
    if (auto range = req.Header("Range"); range && range_applies) {
      auto parsed = http::ParseRange(*range, song.size_bytes);
      if (parsed.kind == http::RangeKind::kUnsatisfiable) {
        Response r = JsonError(416, "range_not_satisfiable", "the range is outside the file");
        r.AddHeader("Content-Range", http::UnsatisfiedContentRange(song.size_bytes));
        return headers(std::move(r));
      }
      if (parsed.kind == http::RangeKind::kSatisfiable) {
        start = parsed.range.first;
        length = parsed.range.length();
        status = 206;
        content_range = http::ContentRangeHeader(parsed.range, song.size_bytes);
      }
    }
    auto finish = [&](Response r) {
      if (!content_range.empty()) r.AddHeader("Content-Range", content_range);
      return headers(std::move(r));
    };

    // A verified local copy goes out with sendfile(2); a sealed (encrypted) one cannot, since the
    // file holds ciphertext: its chunks are decrypted by this request's own reader straight into
    // the server's send buffer (whole chunks, no copy) and written from there.
    if (song.size_bytes > 0 && (by_content || HoldsHealthyCopy(song.file_id))) {
      auto reader = deps_.blobs->OpenVerified(song.file_id);
      if (reader.ok() && (*reader)->sha256() == song.sha256 && (*reader)->sealed() && length > 0) {
        std::shared_ptr<replication::BlobReader> sealed(std::move(reader).value());
        auto next = std::make_shared<uint64_t>(start);
        const uint64_t end = start + length;
        replication::FileService* files = by_content ? nullptr : deps_.files;
        const NodeId self = options_.self;
        return finish(Response::Stream(
            status,
            [sealed, next, end, files, self](char* buf, size_t max) -> Result<size_t> {
              // Stop each piece at a chunk boundary when it can, so that after a Range's first
              // piece every chunk is decrypted once, in place.
              const uint64_t chunk = sealed->seal_chunk_size();
              uint64_t want = std::min<uint64_t>(max, end - *next);
              const uint64_t to_boundary = chunk - *next % chunk;
              if (want > to_boundary) want = to_boundary + (want - to_boundary) / chunk * chunk;
              auto n = sealed->ReadAt(*next, buf, static_cast<size_t>(want));
              if (n.ok()) {
                *next += *n;
              } else if (n.status().code() == StatusCode::kCorruption && files != nullptr) {
                // A chunk failed its tag: nothing of it went out (the stream is cut); unlike a
                // plaintext range, the damage is known now, so repair need not wait for the scrub.
                files->ReportBadCopy(sealed->file_id(), self, catalog::ReplicaState::kCorrupt);
              }
              return n;
            },
            length, ctype));
      }
      if (reader.ok() && (*reader)->sha256() == song.sha256 && !(*reader)->sealed()) {
        int fd = ::open((*reader)->path().c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
          return finish(
              Response::File(status, http::OwnedFd(fd), (*reader)->data_offset() + start, length, ctype));
        }
      } else if (!by_content && !reader.ok() && reader.status().code() == StatusCode::kCorruption) {
        deps_.files->ReportBadCopy(song.file_id, options_.self, catalog::ReplicaState::kCorrupt);
      }
    }
    // Otherwise from a replica, relayed as it arrives.
    const bool full = status == 200;
    replication::FileService* files = deps_.files;
    auto proxy =
        std::make_shared<ProxyStream>([files, song, full, start, length, by_content](const auto& sink) {
          const uint64_t offset = full ? 0 : start;
          const uint64_t count = full ? 0 : length;
          // Exactly the bytes the headers describe (the song as this request read it).
          if (by_content)
            return files->ReadContent(song.file_id, song.sha256, song.size_bytes, offset, count, sink);
          return files->ReadSong(song, offset, count, sink);
        });
    if (length == 0)
      return finish(Response::Stream(
          status, [](char*, size_t) -> Result<size_t> { return size_t{0}; }, 0, ctype));
    return finish(Response::Stream(
        status, [proxy](char* buf, size_t max) { return proxy->Produce(buf, max); }, length, ctype));
  }

  Response Healthz(Request&, BodyReader&) { return Response::Json(200, "{\"status\":\"ok\"}"); }

  Response Readyz(Request&, BodyReader&) {
    ClusterView v = deps_.cluster->View();
    std::string reason;
    bool member = false;
    for (const auto& m : v.members) member = member || m.id == v.self;
    if (!v.running)
      reason = "the node is stopping";
    else if (!member)
      reason = "this node is not a member of the cluster yet";
    else if (v.leader == kNoNode)
      reason = "no leader is known";
    else if (v.commit_index > v.applied_index + 1000)
      reason = "still applying the log";
    for (const auto& m : v.members) {
      if (reason.empty() && !deps_.peers->Address(m.id))
        reason = "the peer table does not know every member yet";
    }
    if (!reason.empty()) return JsonError(503, "not_ready", reason);
    return Response::Json(200, "{\"status\":\"ready\"}");
  }

  Response ClusterStatus(Request&, BodyReader&) {
    ClusterView v = deps_.cluster->View();
    std::string out =
        "{\"node_id\":" + std::to_string(v.self.value()) + ",\"node_uuid\":" + Quote(options_.node_uuid) +
        ",\"cluster_id\":" + Quote(options_.cluster_id) + ",\"version\":" + Quote(options_.version) +
        ",\"role\":" + Quote(v.role) + ",\"term\":" + std::to_string(v.term) +
        ",\"leader_id\":" + std::to_string(v.leader.value()) +
        ",\"leader_address\":" + Quote(v.leader_address) +
        ",\"commit_index\":" + std::to_string(v.commit_index) +
        ",\"applied_index\":" + std::to_string(v.applied_index) +
        ",\"replication_factor\":" + std::to_string(deps_.replication_factor()) + ",\"members\":[";
    const auto peers = deps_.peers->Peers();
    std::vector<NodeId> draining;
    if (auto d = deps_.store->GetSetting(catalog::kDrainingNodesKey); d.ok() && d->has_value())
      draining = catalog::ParseNodeList(**d);
    for (size_t i = 0; i < v.members.size(); ++i) {
      const auto& m = v.members[i];
      if (i > 0) out += ",";
      bool alive = m.id == v.self || deps_.peers->IsAlive(m.id);
      out += "{\"node_id\":" + std::to_string(m.id.value()) + ",\"address\":" + Quote(m.address) +
             ",\"role\":\"" + (m.id == v.leader ? "leader" : (m.voter ? "voter" : "learner")) +
             "\",\"healthy\":" + (alive ? "true" : "false") + ",\"draining\":" +
             (std::find(draining.begin(), draining.end(), m.id) != draining.end() ? "true" : "false") +
             ",\"match_index\":" + std::to_string(m.match_index) + ",\"node_uuid\":" + Quote(m.node_uuid) +
             ",\"incarnation_refused\":" + (m.incarnation_refused ? "true" : "false");
      if (auto it = peers.find(m.id); it != peers.end()) {
        out += ",\"files\":" + std::to_string(it->second.files) +
               ",\"bytes\":" + std::to_string(it->second.bytes) +
               ",\"free_bytes\":" + std::to_string(it->second.free_bytes);
      }
      out += "}";
    }
    out += "]";
    if (auto stats = deps_.store->Stats(); stats.ok()) {
      out += ",\"songs\":" + std::to_string(stats->songs) + ",\"bytes\":" + std::to_string(stats->bytes) +
             ",\"replicas_healthy\":" + std::to_string(stats->replicas_healthy) +
             ",\"replicas_other\":" + std::to_string(stats->replicas_other);
    }
    if (auto bs = deps_.blobs->Stats(); bs.ok()) {
      out += ",\"local\":{\"files\":" + std::to_string(bs->files) +
             ",\"bytes\":" + std::to_string(bs->bytes) + ",\"free_bytes\":" + std::to_string(bs->free_bytes) +
             "}";
    }
    if (v.role == "leader" && deps_.repair) {
      auto rs = deps_.repair->Stats();
      out += ",\"repair\":{\"under_replicated\":" + std::to_string(rs.under_replicated) +
             ",\"unavailable\":" + std::to_string(rs.unavailable) +
             ",\"queued\":" + std::to_string(rs.queued) +
             ",\"copies_made\":" + std::to_string(rs.copies_made) +
             ",\"copies_trimmed\":" + std::to_string(rs.copies_trimmed) +
             ",\"bytes_copied\":" + std::to_string(rs.bytes_copied) + "}";
    }
    return Response::Json(200, out + "}");
  }

  // Admin routes: the bearer token (when configured) is checked first.
  Response Admin(Request& req, BodyReader& body,
                 const std::function<Response(Request&, BodyReader&)>& handler) {
    if (!options_.bearer_token.empty()) {
      auto auth = req.Header("Authorization");
      if (!auth || *auth != "Bearer " + options_.bearer_token) {
        Response r = JsonError(401, "unauthorized", "the admin API needs a valid bearer token");
        r.AddHeader("WWW-Authenticate", "Bearer");
        return r;
      }
    }
    Response r = handler(req, body);
    // Reads (the audit trail itself) are not actions: recording them would grow the trail with
    // every look at it.
    if (req.method != "GET" && req.method != "HEAD") {
      AuditAction(audit::Action::kAdmin, req, req.method + " " + req.path, std::to_string(r.status()), {},
                  r.status() < 400 ? audit::Outcome::kOk : audit::Outcome::kError);
    }
    return r;
  }

  // GET /admin/audit?after=&limit=&action=&actor=&outcome=: the trail in seq order, with the head
  // and checkpoint to verify it against (each item has its exact encoding, base64, for
  // `dispotifyctl audit verify`). Filters apply to the items of the page scanned; next_after
  // continues the scan (a filtered page may hold fewer than `limit` items).
  Response AuditTrail(Request& req, BodyReader&) {
    auto consistency = ConsistencyOf(req);
    if (!consistency.ok()) return Error(consistency.status());
    if (*consistency == replication::ReadConsistency::kLinearizable && deps_.proposer != nullptr) {
      if (Status s = deps_.proposer->CatchUp(std::chrono::seconds(2)); !s.ok()) return Error(s);
    }
    auto limit = UintParam(req, "limit", 100, 1, 1000);
    if (!limit.ok()) return Error(limit.status());
    auto after = UintParam(req, "after", 0, 0, UINT64_MAX >> 1);
    if (!after.ok()) return Error(after.status());
    const auto action = req.Query("action");
    const auto actor = req.Query("actor");
    const auto outcome = req.Query("outcome");
    auto page = deps_.store->ListSettings(catalog::kAuditEntryPrefix, catalog::AuditEntryKey(*after),
                                          static_cast<uint32_t>(*limit));
    if (!page.ok()) return Error(page.status());
    std::string items;
    uint64_t last = *after;
    for (const auto& [key, bytes] : *page) {
      // The page goes on after this key even when its entry does not decode (a page of damaged
      // entries must not hand back the same next_after and loop a client forever).
      if (const auto digits = std::string_view(key).substr(catalog::kAuditEntryPrefix.size());
          !digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos) {
        last = std::max<uint64_t>(last, std::strtoull(std::string(digits).c_str(), nullptr, 10));
      }
      auto e = audit::Decode(bytes);
      // A damaged entry is shown as such, not skipped: verify must see it.
      if (!e.ok()) {
        items += std::string(items.empty() ? "" : ",") + "{\"key\":" + Quote(key) +
                 ",\"damaged\":" + Quote(e.status().message()) + ",\"raw\":" + Quote(Base64Encode(bytes)) +
                 "}";
        continue;
      }
      last = e->seq;
      if (action && *action != audit::ActionName(e->action)) continue;
      if (actor && *actor != e->actor) continue;
      if (outcome && *outcome != audit::OutcomeName(e->outcome)) continue;
      items += std::string(items.empty() ? "" : ",") + "{\"seq\":" + std::to_string(e->seq) +
               ",\"time_ms\":" + std::to_string(e->time_ms) + ",\"actor\":" + Quote(e->actor) +
               ",\"client\":" + Quote(e->client) + ",\"action\":" + Quote(audit::ActionName(e->action)) +
               ",\"target\":" + Quote(e->target) + ",\"outcome\":" + Quote(audit::OutcomeName(e->outcome)) +
               ",\"code\":" + Quote(e->code) + ",\"request_id\":" + Quote(e->request_id) +
               ",\"detail\":" + Quote(e->detail) + ",\"hash\":" + Quote(ToHex(e->hash)) +
               ",\"raw\":" + Quote(Base64Encode(bytes)) + "}";
    }
    auto head = deps_.store->GetSetting(catalog::kAuditHeadKey);
    auto checkpoint = deps_.store->GetSetting(catalog::kAuditCheckpointKey);
    if (!head.ok()) return Error(head.status());
    if (!checkpoint.ok()) return Error(checkpoint.status());
    auto head_json = [](const std::optional<std::string>& v) {
      const audit::ChainHead h = v ? audit::ParseHead(*v).value_or(audit::ChainHead{}) : audit::ChainHead{};
      return "{\"seq\":" + std::to_string(h.seq) + ",\"hash\":" + Quote(ToHex(h.hash)) + "}";
    };
    const bool more = page->size() == *limit;
    std::string body = "{\"items\":[" + items + "],\"next_after\":" + (more ? std::to_string(last) : "null") +
                       ",\"head\":" + head_json(*head) + ",\"checkpoint\":" + head_json(*checkpoint) + "}";
    return WithConsistency(Response::Json(200, body), *consistency);
  }

  Response AddMember(Request&, BodyReader& body) {
    auto obj = ParseJsonObject(body, {"node_id", "address", "node_uuid"});
    if (!obj.ok()) return Error(obj.status());
    auto id = JsonUint(*obj, "node_id", true, UINT64_MAX >> 1);
    if (!id.ok()) return Error(id.status());
    if (*id == 0) return JsonError(400, "invalid_argument", "node_id must be >= 1");
    if (!obj->has_field("address") || !obj->at("address").is_string())
      return JsonError(400, "invalid_argument", "address (host:port) is required");
    const std::string address = obj->at("address").as_string();
    if (address.empty() || address.size() > 255 || address.find(':') == std::string::npos)
      return JsonError(400, "invalid_argument", "address must be host:port");
    std::string uuid;
    if (obj->has_field("node_uuid")) {
      const auto& u = obj->at("node_uuid");
      if (!u.is_string() || !ValidNodeUuid(u.as_string()))
        return JsonError(400, "invalid_argument",
                         "node_uuid must be the node's incarnation: 1 to 64 lowercase hex digits (its "
                         "/cluster/status node_uuid)");
      uuid = u.as_string();
    }
    Status s = deps_.cluster->AddLearner(NodeId(*id), address, uuid);
    if (!s.ok()) return Error(s);
    return Response::Json(200, "{\"node_id\":" + std::to_string(*id) +
                                   ",\"role\":\"learner\",\"node_uuid\":" + Quote(uuid) + "}");
  }

  Response Promote(Request& req, BodyReader&) {
    auto id = NodeParam(req);
    if (!id.ok()) return Error(id.status());
    Status s = deps_.cluster->Promote(*id);
    if (!s.ok()) return Error(s);
    return Response::Json(200, "{\"node_id\":" + std::to_string(id->value()) + ",\"role\":\"voter\"}");
  }

  Response RemoveMember(Request& req, BodyReader&) {
    auto id = NodeParam(req);
    if (!id.ok()) return Error(id.status());
    Status s = deps_.cluster->Remove(*id);
    if (!s.ok()) return Error(s);
    return Response::Empty(204);
  }

  // Drain: repair moves the member's copies to the other nodes and uploads avoid it; its "files"
  // in /cluster/status falls to 0 when it can be removed without dropping a file below R.
  Response Drain(Request& req, BodyReader&) { return SetDraining(req, true); }
  Response Undrain(Request& req, BodyReader&) { return SetDraining(req, false); }

  Response SetDraining(Request& req, bool draining) {
    auto id = NodeParam(req);
    if (!id.ok()) return Error(id.status());
    bool member = false;
    for (const auto& m : deps_.cluster->View().members) member = member || m.id == *id;
    if (!member)
      return JsonError(404, "not_found", "node " + std::to_string(id->value()) + " is not a member");
    auto r = deps_.proposer->Propose(catalog::SetDrainingCmd{*id, draining}, std::chrono::seconds(10));
    if (!r.ok()) return Error(r.status());
    return Response::Json(draining ? 202 : 200, "{\"node_id\":" + std::to_string(id->value()) +
                                                    ",\"draining\":" + (draining ? "true" : "false") + "}");
  }

  Response Leadership(Request&, BodyReader& body) {
    auto obj = ParseJsonObject(body, {"target"});
    if (!obj.ok()) return Error(obj.status());
    auto target = JsonUint(*obj, "target", false, UINT64_MAX >> 1);
    if (!target.ok()) return Error(target.status());
    Status s = deps_.cluster->TransferLeadership(NodeId(*target));
    if (!s.ok()) return Error(s);
    return Response::Json(200, "{\"status\":\"transferred\"}");
  }

  Response Replication(Request&, BodyReader& body) {
    auto obj = ParseJsonObject(body, {"factor"});
    if (!obj.ok()) return Error(obj.status());
    auto factor = JsonUint(*obj, "factor", true, catalog::kMaxReplicationFactor);
    if (!factor.ok()) return Error(factor.status());
    if (*factor < 1) return JsonError(400, "invalid_argument", "factor must be 1..16");
    auto r = deps_.proposer->Propose(catalog::SetReplicationFactorCmd{static_cast<uint32_t>(*factor)},
                                     std::chrono::seconds(10));
    if (!r.ok()) return Error(r.status());
    return Response::Json(200, "{\"replication_factor\":" + std::to_string(*factor) + "}");
  }

 private:
  bool HoldsHealthyCopy(const std::string& file_id) {
    auto replicas = deps_.store->GetReplicas(file_id);
    if (!replicas.ok()) return false;
    for (const auto& r : *replicas) {
      if (r.node == options_.self && r.state == catalog::ReplicaState::kHealthy) return true;
    }
    return false;
  }

  const RestApiOptions options_;
  const RestApiDeps deps_;
};

}  // namespace

void AddRestRoutes(const RestApiOptions& options, const RestApiDeps& deps, http::Router* router) {
  auto routes = std::make_shared<Routes>(options, deps);
  auto bind = [routes](Response (Routes::*fn)(Request&, BodyReader&)) {
    return [routes, fn](Request& req, BodyReader& body) { return ((*routes).*fn)(req, body); };
  };
  auto admin = [routes](Response (Routes::*fn)(Request&, BodyReader&)) {
    return [routes, fn](Request& req, BodyReader& body) {
      return routes->Admin(req, body, [&](Request& r, BodyReader& b) { return ((*routes).*fn)(r, b); });
    };
  };
  http::RouteOptions upload_options;
  upload_options.max_body_bytes = options.max_upload_bytes + (1 << 20);  // multipart framing
  router->Post("/music/upload", bind(&Routes::Upload), upload_options);
  router->Get("/music/search", bind(&Routes::Search));
  router->Get("/music/stream/{file_id}", bind(&Routes::Stream));
  router->Get("/music/songs", bind(&Routes::ListSongs));
  router->Get("/music/songs/{file_id}", bind(&Routes::GetSong));
  router->Delete("/music/songs/{file_id}", bind(&Routes::DeleteSong));
  AddLibraryRoutes(deps, router);
  if (deps.covers != nullptr) AddCoverRoutes(deps.covers, router);
  router->Get("/healthz", bind(&Routes::Healthz));
  router->Get("/readyz", bind(&Routes::Readyz));
  router->Get("/cluster/status", bind(&Routes::ClusterStatus));
  router->Post("/admin/members", admin(&Routes::AddMember));
  router->Post("/admin/members/{id}/promote", admin(&Routes::Promote));
  router->Delete("/admin/members/{id}", admin(&Routes::RemoveMember));
  router->Post("/admin/members/{id}/drain", admin(&Routes::Drain));
  router->Delete("/admin/members/{id}/drain", admin(&Routes::Undrain));
  router->Post("/admin/leadership", admin(&Routes::Leadership));
  router->Put("/admin/replication", admin(&Routes::Replication));
  router->Get("/admin/audit", admin(&Routes::AuditTrail));
  AddAuthRoutes(deps.auth, router);
}

}  // namespace dispotify::api
