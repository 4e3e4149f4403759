#include "node/catalog/sqlite_library.h"

#include <array>
#include <set>
#include <string>
#include <vector>

#include "common/logging.h"

namespace dispotify::catalog::sqlite {

const char kCreateLibrarySchema[] = R"sql(
CREATE INDEX songs_album ON songs(album_id, disc, track, title, file_id);
CREATE TABLE albums(
  album_id TEXT PRIMARY KEY, title TEXT NOT NULL, album_artist TEXT NOT NULL,
  title_key TEXT NOT NULL, artist_key TEXT NOT NULL, year INTEGER NOT NULL, neg_year INTEGER NOT NULL,
  song_count INTEGER NOT NULL, duration_ms INTEGER NOT NULL, created_at_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX albums_name ON albums(title_key, album_id);
CREATE INDEX albums_year ON albums(neg_year, title_key, album_id);
CREATE INDEX albums_recent ON albums(created_at_ms, album_id);
CREATE INDEX albums_artist_name ON albums(album_artist, title_key, album_id);
CREATE INDEX albums_artist_year ON albums(album_artist, neg_year, title_key, album_id);
CREATE INDEX albums_artist_recent ON albums(album_artist, created_at_ms, album_id);
CREATE INDEX albums_artists ON albums(artist_key, album_artist, song_count);
)sql";

// Version 3 -> 4 (and the last step of a new database): the covers. The index is partial: most
// lookups are of a cover that exists, and songs without one need no entry.
const char kAddCoverColumns[] = R"sql(
ALTER TABLE songs ADD COLUMN cover TEXT NOT NULL DEFAULT '';
ALTER TABLE albums ADD COLUMN cover TEXT NOT NULL DEFAULT '';
CREATE INDEX songs_cover ON songs(cover) WHERE cover <> '';
)sql";

namespace {

// Version 2 -> 3: the new song columns (every song gets the defaults, then its album).
constexpr char kAddSongColumns[] = R"sql(
ALTER TABLE songs ADD COLUMN album_artist TEXT NOT NULL DEFAULT '';
ALTER TABLE songs ADD COLUMN disc INTEGER NOT NULL DEFAULT 0;
ALTER TABLE songs ADD COLUMN genre TEXT NOT NULL DEFAULT '';
ALTER TABLE songs ADD COLUMN compilation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE songs ADD COLUMN album_id TEXT NOT NULL DEFAULT '';
)sql";
constexpr char kSongsForBackfill[] = "SELECT id, artist, album FROM songs WHERE id > ?1 ORDER BY id LIMIT ?2";
constexpr char kBackfillSong[] = "UPDATE songs SET album_artist = ?2, album_id = ?3 WHERE id = ?1";

// The album's cover: its picture (the smallest file id among its pictures), else the picture
// embedded in its first song (album order, on the songs_album index) that has one. The summary's
// other columns count songs only.
#define ALBUM_COVER(album_id)                                                                           \
  "coalesce((SELECT c.cover FROM songs c WHERE c.album_id = " album_id                                  \
  " AND c.cover <> '' AND substr(c.content_type, 1, 6) = 'image/' ORDER BY c.file_id LIMIT 1), "        \
  "(SELECT c.cover FROM songs c WHERE c.album_id = " album_id                                           \
  " AND c.cover <> '' AND substr(c.content_type, 1, 6) <> 'image/' ORDER BY c.disc, c.track, c.title, " \
  "c.file_id "                                                                                          \
  "LIMIT 1), '')"
constexpr char kAlbumAggregate[] =
    "SELECT count(*), min(album), min(album_artist), max(year), sum(duration_ms), "
    "max(created_at_ms), " ALBUM_COVER(
        "?1") " FROM songs WHERE album_id = ?1 AND substr(content_type, 1, 6) <> 'image/'";
constexpr char kAllAlbumAggregates[] =
    "SELECT s.album_id, count(*), min(s.album), min(s.album_artist), max(s.year), sum(s.duration_ms), "
    "max(s.created_at_ms), " ALBUM_COVER("s.album_id") " FROM songs s WHERE substr(s.content_type, 1, 6) <> 'image/' "
    "GROUP BY s.album_id";
#undef ALBUM_COVER
constexpr char kUpsertAlbum[] =
    "INSERT OR REPLACE INTO albums(album_id, title, album_artist, title_key, artist_key, year, neg_year, "
    "song_count, duration_ms, created_at_ms, cover) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
constexpr char kSongWithCover[] = "SELECT " DISPOTIFY_SQLITE_SONG_COLUMNS
                                  " FROM songs WHERE cover = ?1 AND cover <> '' ORDER BY file_id LIMIT 1";
constexpr char kDeleteAlbum[] = "DELETE FROM albums WHERE album_id = ?1";

#define ALBUM_COLUMNS \
  "album_id, title, album_artist, year, song_count, duration_ms, created_at_ms, title_key, cover"
constexpr char kGetAlbum[] = "SELECT " ALBUM_COLUMNS " FROM albums WHERE album_id = ?1";
constexpr char kAlbumSongs[] = "SELECT " DISPOTIFY_SQLITE_SONG_COLUMNS
                               " FROM songs WHERE album_id = ?1 AND substr(content_type, 1, 6) <> 'image/' "
                               "ORDER BY disc, track, title, file_id";

// [artist filter][after][sort]: ?1 key, ?2 album_id, ?3 number (year: -year), ?4 artist, ?5 limit.
constexpr const char* kListAlbums[2][2][3] = {
    {{"SELECT " ALBUM_COLUMNS " FROM albums ORDER BY title_key, album_id LIMIT ?5",
      "SELECT " ALBUM_COLUMNS " FROM albums ORDER BY neg_year, title_key, album_id LIMIT ?5",
      "SELECT " ALBUM_COLUMNS " FROM albums ORDER BY created_at_ms DESC, album_id DESC LIMIT ?5"},
     {"SELECT " ALBUM_COLUMNS " FROM albums WHERE (title_key, album_id) > (?1, ?2) "
      "ORDER BY title_key, album_id LIMIT ?5",
      "SELECT " ALBUM_COLUMNS " FROM albums WHERE (neg_year, title_key, album_id) > (?3, ?1, ?2) "
      "ORDER BY neg_year, title_key, album_id LIMIT ?5",
      "SELECT " ALBUM_COLUMNS " FROM albums WHERE (created_at_ms, album_id) < (?3, ?2) "
      "ORDER BY created_at_ms DESC, album_id DESC LIMIT ?5"}},
    {{"SELECT " ALBUM_COLUMNS " FROM albums WHERE album_artist = ?4 ORDER BY title_key, album_id LIMIT ?5",
      "SELECT " ALBUM_COLUMNS " FROM albums WHERE album_artist = ?4 "
      "ORDER BY neg_year, title_key, album_id LIMIT ?5",
      "SELECT " ALBUM_COLUMNS " FROM albums WHERE album_artist = ?4 "
      "ORDER BY created_at_ms DESC, album_id DESC LIMIT ?5"},
     {"SELECT " ALBUM_COLUMNS " FROM albums WHERE album_artist = ?4 AND (title_key, album_id) > (?1, ?2) "
      "ORDER BY title_key, album_id LIMIT ?5",
      "SELECT " ALBUM_COLUMNS " FROM albums WHERE album_artist = ?4 AND "
      "(neg_year, title_key, album_id) > (?3, ?1, ?2) ORDER BY neg_year, title_key, album_id LIMIT ?5",
      "SELECT " ALBUM_COLUMNS " FROM albums WHERE album_artist = ?4 AND (created_at_ms, album_id) < (?3, ?2) "
      "ORDER BY created_at_ms DESC, album_id DESC LIMIT ?5"}}};
#undef ALBUM_COLUMNS

constexpr const char* kListArtists[2] = {
    "SELECT artist_key, album_artist, count(*), sum(song_count) FROM albums "
    "GROUP BY artist_key, album_artist ORDER BY artist_key, album_artist LIMIT ?3",
    "SELECT artist_key, album_artist, count(*), sum(song_count) FROM albums "
    "WHERE (artist_key, album_artist) > (?1, ?2) "
    "GROUP BY artist_key, album_artist ORDER BY artist_key, album_artist LIMIT ?3"};

constexpr int64_t kBackfillBatch = 10000;

// Writes the albums row from an aggregate over its songs (columns from `first`: count, album,
// album_artist, year, duration, created, cover).
Status WriteAlbum(Conn& w, std::string_view album_id, const Stmt& agg, int first) {
  const std::string title = agg.Text(first + 1);
  const std::string artist = agg.Text(first + 2);
  const int64_t year = agg.Int(first + 3);
  DISPOTIFY_ASSIGN_STMT(put, w, kUpsertAlbum);
  return put.Bind(1, album_id)
      .Bind(2, title)
      .Bind(3, artist)
      .Bind(4, FoldKey(title))
      .Bind(5, FoldKey(artist))
      .Bind(6, year)
      .Bind(7, -year)
      .Bind(8, agg.Int(first))
      .Bind(9, agg.Int(first + 4))
      .Bind(10, agg.Int(first + 5))
      .Bind(11, agg.Text(first + 6))
      .Run();
}

AlbumSummary ReadAlbum(const Stmt& st) {
  AlbumSummary a;
  a.album_id = st.Text(0);
  a.title = st.Text(1);
  a.album_artist = st.Text(2);
  a.year = static_cast<uint32_t>(st.Int(3));
  a.song_count = static_cast<uint64_t>(st.Int(4));
  a.duration_ms = static_cast<uint64_t>(st.Int(5));
  a.created_at_ms = st.Int(6);
  a.cover = st.Text(8);
  return a;
}

}  // namespace

Status MigrateToV3(Conn& w) {
  DISPOTIFY_RETURN_IF_ERROR(w.Exec(kAddSongColumns));
  // In batches by id, collected before they are written: a statement must not update the rows
  // it is still stepping through.
  int64_t after = -1;
  uint64_t songs = 0;
  while (true) {
    std::vector<std::array<std::string, 3>> batch;  // id, album_artist, album_id
    {
      DISPOTIFY_ASSIGN_STMT(st, w, kSongsForBackfill);
      st.Bind(1, after).Bind(2, kBackfillBatch);
      while (true) {
        auto row = st.Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        after = st.Int(0);
        Song s;
        s.artist = st.Text(1);
        s.album = st.Text(2);
        CompleteSong(&s);  // a version-2 song has no album artist tag: its artist
        batch.push_back({std::to_string(after), std::move(s.album_artist), std::move(s.album_id)});
      }
    }
    for (const auto& [id, album_artist, album_id] : batch) {
      DISPOTIFY_ASSIGN_STMT(up, w, kBackfillSong);
      DISPOTIFY_RETURN_IF_ERROR(up.Bind(1, std::stoll(id)).Bind(2, album_artist).Bind(3, album_id).Run());
    }
    songs += batch.size();
    if (batch.size() < static_cast<size_t>(kBackfillBatch)) break;
  }
  DISPOTIFY_RETURN_IF_ERROR(w.Exec(kCreateLibrarySchema));
  DLOG_INFO << "catalog store: schema 3 (albums) built for " << songs << " songs";
  return Status::Ok();
}

Status RefreshAlbum(Conn& w, std::string_view album_id) {
  DISPOTIFY_ASSIGN_STMT(agg, w, kAlbumAggregate);
  auto row = agg.Bind(1, album_id).Step();
  if (!row.ok()) return row.status();
  if (!*row || agg.Int(0) == 0) {
    DISPOTIFY_ASSIGN_STMT(del, w, kDeleteAlbum);
    return del.Bind(1, album_id).Run();
  }
  return WriteAlbum(w, album_id, agg, 0);
}

Status RebuildAlbums(Conn& w) {
  DISPOTIFY_RETURN_IF_ERROR(w.Exec("DELETE FROM albums"));
  DISPOTIFY_ASSIGN_STMT(agg, w, kAllAlbumAggregates);
  while (true) {
    auto row = agg.Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
    DISPOTIFY_RETURN_IF_ERROR(WriteAlbum(w, agg.Text(0), agg, 1));
  }
}

Result<ArtistPage> ListArtists(Conn& r, const ArtistListRequest& request) {
  DISPOTIFY_RETURN_IF_ERROR(ValidateArtistList(request));
  LibraryCursor after;
  if (!request.after.empty()) {
    auto decoded = DecodeArtistCursor(request.after);
    if (!decoded.ok()) return decoded.status();
    after = std::move(decoded).value();
  }
  DISPOTIFY_ASSIGN_STMT(st, r, kListArtists[request.after.empty() ? 0 : 1]);
  st.Bind(1, after.key).Bind(2, after.name).Bind(3, static_cast<int64_t>(request.limit) + 1);
  ArtistPage page;
  std::string last_key;
  while (true) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (page.items.size() == request.limit) {
      page.next_after = EncodeArtistCursor({last_key, page.items.back().name, 0});
      break;
    }
    last_key = st.Text(0);
    page.items.push_back(
        ArtistSummary{st.Text(1), static_cast<uint64_t>(st.Int(2)), static_cast<uint64_t>(st.Int(3))});
  }
  return page;
}

Result<AlbumPage> ListAlbums(Conn& r, const AlbumListRequest& request) {
  DISPOTIFY_RETURN_IF_ERROR(ValidateAlbumList(request));
  LibraryCursor after;
  if (!request.after.empty()) {
    auto decoded = DecodeAlbumCursor(request.sort, request.after);
    if (!decoded.ok()) return decoded.status();
    after = std::move(decoded).value();
  }
  const auto sort = static_cast<size_t>(request.sort);
  DISPOTIFY_ASSIGN_STMT(st, r, kListAlbums[request.artist ? 1 : 0][request.after.empty() ? 0 : 1][sort]);
  st.Bind(1, after.key)
      .Bind(2, after.name)
      .Bind(3, request.sort == AlbumSort::kYear ? -after.number : after.number)
      .Bind(4, request.artist.value_or(""))
      .Bind(5, static_cast<int64_t>(request.limit) + 1);
  AlbumPage page;
  std::string last_key;
  while (true) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (page.items.size() == request.limit) {
      const AlbumSummary& last = page.items.back();
      const int64_t number =
          request.sort == AlbumSort::kYear ? static_cast<int64_t>(last.year) : last.created_at_ms;
      page.next_after = EncodeAlbumCursor(request.sort, {last_key, last.album_id, number});
      break;
    }
    last_key = st.Text(7);
    page.items.push_back(ReadAlbum(st));
  }
  return page;
}

Result<std::optional<Song>> SongWithCover(Conn& r, std::string_view cover) {
  DISPOTIFY_ASSIGN_STMT(st, r, kSongWithCover);
  auto row = st.Bind(1, cover).Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<Song>();
  return std::optional<Song>(ReadSongRow(st));
}

Result<std::optional<AlbumDetail>> GetAlbum(Conn& r, std::string_view album_id) {
  if (!IsValidAlbumId(album_id)) return Status::InvalidArgument("an album id is 16 lowercase hex digits");
  AlbumDetail detail;
  {
    DISPOTIFY_ASSIGN_STMT(st, r, kGetAlbum);
    auto row = st.Bind(1, album_id).Step();
    if (!row.ok()) return row.status();
    if (!*row) return std::optional<AlbumDetail>();
    detail.summary = ReadAlbum(st);
  }
  std::set<std::string> genres;
  DISPOTIFY_ASSIGN_STMT(st, r, kAlbumSongs);
  st.Bind(1, album_id);
  while (true) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    detail.songs.push_back(ReadSongRow(st));
    if (!detail.songs.back().genre.empty()) genres.insert(detail.songs.back().genre);
  }
  detail.genres.assign(genres.begin(), genres.end());
  return std::optional<AlbumDetail>(std::move(detail));
}

}  // namespace dispotify::catalog::sqlite
