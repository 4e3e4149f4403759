#pragma once
// The catalog's vocabulary: songs, replica locations, locks and settings. Plain values; both
// metadata stores (SQLite, PostgreSQL) hold exactly these, and snapshots carry them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_id.h"
#include "common/ids.h"
#include "common/status.h"

namespace dispotify::catalog {

// The file id rule is shared with the clients (common/file_id.h); the catalog names it here too.
using ::dispotify::IsValidFileId;
using ::dispotify::kMaxFileIdSize;

// A song's metadata. `file_id` is the key: 1..kMaxFileIdSize characters of [A-Za-z0-9._-], not
// "." or "..".
//
// A catalog entry is a stored file, replicated, repaired and scrubbed alike: a song, or a picture
// uploaded beside an album's songs (content_type image/*, IsPicture; its album fields name the
// album it illustrates and its cover is its own SHA-256). Pictures are not songs: search, the
// song listing and album summaries leave them out, and an album's picture wins over the pictures
// embedded in its songs.
struct Song {
  std::string file_id;
  std::string title;
  std::string artist;
  std::string album;
  std::string file_name;     // as uploaded (display only)
  std::string content_type;  // e.g. audio/mpeg
  uint32_t track = 0;
  uint32_t year = 0;
  uint64_t duration_ms = 0;
  uint64_t size_bytes = 0;
  std::string sha256;         // 64 lowercase hex characters: SHA-256 of the content
  int64_t created_at_ms = 0;  // the leader's timestamp in the entry that created it
  // The album model (catalog schema 3; node/catalog/library.h). album_artist is the tag; a store
  // fills an empty one when it writes the song ("Various Artists" for a compilation, else
  // `artist`), so that every song belongs to exactly one album.
  std::string album_artist;
  uint32_t disc = 0;  // 0: unknown
  std::string genre;
  bool compilation = false;
  // The embedded picture (catalog schema 4): the SHA-256 (64 lowercase hex characters) of its
  // bytes as stored in the audio file, or "" when the file has none. The picture itself is not
  // stored apart: it lives in the audio file, replicated with it, and a node renders thumbnails
  // from any copy (node/api/covers.h).
  std::string cover;
  // Derived, never carried in a command or a dump: AlbumIdOf(album_artist, album), set by the
  // store that wrote the song (a derived value then never disagrees with what it derives from).
  std::string album_id;
  bool operator==(const Song&) const = default;
};

// True for an album's picture (content_type image/...), false for a song.
bool IsPicture(const Song& s);

enum class ReplicaState : uint8_t {
  kPending = 0,  // a copy is being made; not served
  kHealthy = 1,  // verified copy
  kCorrupt = 2,  // failed its checksum; to be replaced
  kMissing = 3,  // expected but not found (node lost its disk, or never received it)
};

struct Replica {
  std::string file_id;
  NodeId node;
  ReplicaState state = ReplicaState::kPending;
  int64_t updated_at_ms = 0;
  bool operator==(const Replica&) const = default;
};

// A named lock with a TTL. Times come from the leader's timestamp inside the log entry, so apply
// is deterministic on every server.
struct Lock {
  std::string name;
  std::string owner;
  int64_t expires_at_ms = 0;
  uint64_t token = 0;  // fencing token: grows with every acquisition of this name
  bool operator==(const Lock&) const = default;
};

// One change to the catalog. A Raft entry's effect is a list of these, applied atomically with
// the entry's index (see MetadataStore::Apply).
struct Mutation {
  enum class Kind : uint8_t {
    kPutSong = 0,        // insert or replace `song`
    kDeleteSong = 1,     // by `key` (a file_id); also deletes its replicas
    kPutReplica = 2,     // insert or replace (file_id, node) -> `replica`
    kDeleteReplica = 3,  // (replica.file_id, replica.node)
    kPutLock = 4,        // insert or replace `lock`
    kDeleteLock = 5,     // by `key` (a lock name)
    kPutSetting = 6,     // `key` -> `value`
    kDeleteSetting = 7,  // by `key` (absent: no-op)
  };
  Kind kind = Kind::kPutSong;
  Song song;
  Replica replica;
  Lock lock;
  std::string key;
  std::string value;
};

// Search: one query string over title, artist, album and file name; see MetadataStore::Search.
struct SearchRequest {
  std::string query;
  uint32_t limit = 20;  // 1..100
  uint32_t offset = 0;  // for shallow pages; deep pages use `cursor`
  std::string cursor;   // opaque, from a previous page's next_cursor (keyset pagination)
};

struct SearchPage {
  uint64_t total = 0;  // matches in all (exact up to a cap; see the store's header)
  std::vector<Song> items;
  std::string next_cursor;  // empty on the last page
};

struct ListRequest {
  uint32_t limit = 50;        // 1..1000
  std::string after_file_id;  // keyset: songs with file_id > this, in file_id order
};

struct SongPage {
  std::vector<Song> items;
  std::string next_after;  // pass as after_file_id for the next page; empty on the last page
};

struct CatalogStats {
  uint64_t songs = 0;
  uint64_t bytes = 0;  // sum of size_bytes
  uint64_t replicas_healthy = 0;
  uint64_t replicas_other = 0;  // pending, corrupt or missing
};

// The limits every metadata store enforces (the same on SQLite and PostgreSQL).
inline constexpr size_t kMaxTextBytes = 4096;        // a song's text fields
inline constexpr size_t kMaxNameBytes = 1024;        // lock names and owners, setting keys
inline constexpr size_t kMaxSettingBytes = 1 << 20;  // a setting's value

// kInvalidArgument when a store must refuse `m` (bad id, over a limit, unknown kind or state).
Status ValidateMutation(const Mutation& m);

// "pending", "healthy", "corrupt", "missing": how the APIs spell a replica's state.
const char* ReplicaStateName(ReplicaState state);

}  // namespace dispotify::catalog
