#pragma once
// Where a node keeps the catalog: one interface, two implementations (embedded SQLite, the
// default; PostgreSQL), one conformance suite run on both (tests/node/catalog/).
//
// Contract:
//  - Writes arrive only through Apply, from the Raft driver's thread, in log order. Apply records
//    the entry's index in the same transaction as its mutations, so after a crash at any point the
//    store holds exactly the effects of entries 1..AppliedIndex(): replaying an entry at or below
//    it is a no-op (idempotent apply), and no entry is skipped.
//  - Reads may come from any thread, concurrently with Apply, and see committed state only.
//  - Dump/Load carry the whole state (with the applied index) in one store-independent format,
//    so a snapshot taken on SQLite installs on PostgreSQL and the other way round.
//  - Expected failures are Status values (kInvalidArgument for a bad request, kIoError /
//    kNoSpace / kUnavailable for the store itself); a store never throws.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "node/catalog/library.h"
#include "node/catalog/types.h"

namespace dispotify::catalog {

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // Highest Raft index whose effects are in the store (0 when new).
  virtual Result<LogIndex> AppliedIndex() = 0;
  // Applies `mutations` and records `index`, atomically. index <= AppliedIndex(): no-op, OK.
  virtual Status Apply(LogIndex index, const std::vector<Mutation>& mutations) = 0;

  virtual Result<std::optional<Song>> GetSong(std::string_view file_id) = 0;
  virtual Result<SongPage> ListSongs(const ListRequest& request) = 0;
  // Search over title, artist, album and file name: case- and accent-insensitive, prefix
  // matches ("beat" finds "Beatles"), tolerant of a typo ("beatels" finds "Beatles"), ranked
  // (exact > prefix > fuzzy; ties by file_id), paginated. No stemming or stop words: "The The",
  // "U2" and non-Latin scripts are found. Deep pages use the keyset cursor, not a large OFFSET.
  virtual Result<SearchPage> Search(const SearchRequest& request) = 0;

  // The library model (node/catalog/library.h): album artists, albums and an album with its
  // songs, each listing paged by keyset. kInvalidArgument for a bad limit, cursor or album id.
  virtual Result<ArtistPage> ListArtists(const ArtistListRequest& request) = 0;
  virtual Result<AlbumPage> ListAlbums(const AlbumListRequest& request) = 0;
  virtual Result<std::optional<AlbumDetail>> GetAlbum(std::string_view album_id) = 0;
  // A song whose cover (Song::cover) is `cover`, the smallest file_id among them; nullopt when
  // none has it (or `cover` is empty).
  virtual Result<std::optional<Song>> SongWithCover(std::string_view cover) = 0;

  virtual Result<std::vector<Replica>> GetReplicas(std::string_view file_id) = 0;
  // Replicas held by `node`, in file_id order after `after_file_id` (for repair and rebalancing).
  virtual Result<std::vector<Replica>> ReplicasOnNode(NodeId node, std::string_view after_file_id,
                                                      uint32_t limit) = 0;
  virtual Result<std::optional<Lock>> GetLock(std::string_view name) = 0;
  virtual Result<std::optional<std::string>> GetSetting(std::string_view key) = 0;
  // Settings whose key starts with `prefix`, in key order (bytewise), after `after` (exclusive;
  // "" = from the first), at most `limit` (1..1000). Users and tokens live here (node/auth/).
  virtual Result<std::vector<std::pair<std::string, std::string>>> ListSettings(std::string_view prefix,
                                                                                std::string_view after,
                                                                                uint32_t limit) = 0;
  virtual Result<CatalogStats> Stats() = 0;

  // Streams the whole state, as of AppliedIndex(), to `sink` in the common dump format
  // (node/catalog/dump_format.h).
  virtual Status Dump(const std::function<Status(std::string_view)>& sink) = 0;
  // Replaces the whole state with a dump read from the file at `path`.
  virtual Status Load(const std::string& path) = 0;
};

// The embedded store: a SQLite database file at `path` (created if missing).
Result<std::unique_ptr<MetadataStore>> OpenSqliteStore(const std::string& path);
// The PostgreSQL store: `conninfo` is a libpq connection string naming this node's database;
// the schema is created and migrated on open.
Result<std::unique_ptr<MetadataStore>> OpenPostgresStore(const std::string& conninfo);

}  // namespace dispotify::catalog
