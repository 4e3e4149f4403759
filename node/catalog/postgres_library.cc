#include "node/catalog/postgres_library.h"

#include <set>
#include <tuple>
#include <vector>

#include "common/logging.h"

namespace dispotify::catalog::pg {

namespace {

using pqxx::binarystring;

binarystring Bytes(std::string_view s) {
  return binarystring(s.data(), s.size());
}
std::string Bytes(const pqxx::field& f) {
  return binarystring(f).str();
}
uint64_t U64(const pqxx::field& f) {
  return static_cast<uint64_t>(f.as<int64_t>());
}

std::string Hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char ch : s) {
    const auto b = static_cast<unsigned char>(ch);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

// The aggregate that defines an album's summary (library.h), over the songs in scope (pictures
// are not songs: every query using it leaves them out). The cover: the album's picture (the
// smallest file id among them), else that of its first song in album order with one.
constexpr const char* kAggregate =
    "count(*), (array_agg(album ORDER BY album))[1], (array_agg(album_artist ORDER BY album_artist))[1], "
    "max(year), coalesce(sum(duration_ms), 0)::bigint, max(created_at_ms), "
    "coalesce((SELECT p.cover FROM songs p WHERE p.album_id = songs.album_id AND p.cover <> ''::bytea AND "
    "substring(p.content_type from 1 for 6) = 'image/'::bytea ORDER BY p.file_id LIMIT 1), "
    "(array_agg(cover ORDER BY disc, track, title, file_id) FILTER (WHERE cover <> ''::bytea))[1], "
    "''::bytea)";
constexpr const char* kSongsOnly = "substring(content_type from 1 for 6) <> 'image/'::bytea";

constexpr const char* kAlbumColumns =
    "album_id, title, album_artist, year, song_count, duration_ms, created_at_ms, title_key, cover";

AlbumSummary AlbumFromRow(const pqxx::row& r) {
  AlbumSummary a;
  a.album_id = Bytes(r[0]);
  a.title = Bytes(r[1]);
  a.album_artist = Bytes(r[2]);
  a.year = static_cast<uint32_t>(r[3].as<int64_t>());
  a.song_count = U64(r[4]);
  a.duration_ms = U64(r[5]);
  a.created_at_ms = r[6].as<int64_t>();
  a.cover = Bytes(r[8]);
  return a;
}

// Writes an album's row from an aggregate row (columns from `first`: count, album, album_artist,
// year, duration, created, cover).
void WriteAlbum(pqxx::work& tx, const std::string& album_id, const pqxx::row& agg, int first) {
  const std::string title = Bytes(agg[first + 1]);
  const std::string artist = Bytes(agg[first + 2]);
  const int64_t year = agg[first + 3].as<int64_t>();
  tx.exec_prepared0("put_album", Bytes(album_id), Bytes(title), Bytes(artist), Bytes(FoldKey(title)),
                    Bytes(FoldKey(artist)), year, -year, agg[first].as<int64_t>(),
                    agg[first + 4].as<int64_t>(), agg[first + 5].as<int64_t>(), binarystring(agg[first + 6]));
}

std::string ListAlbumsSql(bool artist, bool after, AlbumSort sort) {
  std::string where;
  if (artist) where = "album_artist = $4";
  std::string order;
  std::string range;
  switch (sort) {
    case AlbumSort::kName:
      order = "title_key, album_id";
      range = "(title_key, album_id) > ($1, $2)";
      break;
    case AlbumSort::kYear:
      order = "neg_year, title_key, album_id";
      range = "(neg_year, title_key, album_id) > ($3, $1, $2)";
      break;
    case AlbumSort::kRecent:
      order = "created_at_ms DESC, album_id DESC";
      range = "(created_at_ms, album_id) < ($3, $2)";
      break;
  }
  if (after) where += (where.empty() ? "" : " AND ") + range;
  // Every parameter appears (typed), so that one prepared signature serves all variants.
  return std::string("SELECT ") + kAlbumColumns + " FROM albums WHERE " + (where.empty() ? "true" : where) +
         " AND $1::bytea IS NOT NULL AND $2::bytea IS NOT NULL AND $3::bigint IS NOT NULL AND "
         "$4::bytea IS NOT NULL ORDER BY " +
         order + " LIMIT $5";
}

std::string ListAlbumsName(bool artist, bool after, AlbumSort sort) {
  return std::string("list_albums_") + (artist ? "a" : "x") + (after ? "a" : "f") +
         std::to_string(static_cast<int>(sort));
}

}  // namespace

const char* const kSongColumns =
    "file_id, title, artist, album, file_name, content_type, track, year, duration_ms, size_bytes, sha256, "
    "created_at_ms, album_artist, disc, genre, compilation, album_id, cover";

Song SongFromRow(const pqxx::row& r) {
  Song s;
  s.file_id = Bytes(r[0]);
  s.title = Bytes(r[1]);
  s.artist = Bytes(r[2]);
  s.album = Bytes(r[3]);
  s.file_name = Bytes(r[4]);
  s.content_type = Bytes(r[5]);
  s.track = static_cast<uint32_t>(r[6].as<int64_t>());
  s.year = static_cast<uint32_t>(r[7].as<int64_t>());
  s.duration_ms = U64(r[8]);
  s.size_bytes = U64(r[9]);
  s.sha256 = Bytes(r[10]);
  s.created_at_ms = r[11].as<int64_t>();
  s.album_artist = Bytes(r[12]);
  s.disc = static_cast<uint32_t>(r[13].as<int64_t>());
  s.genre = Bytes(r[14]);
  s.compilation = r[15].as<bool>();
  s.album_id = Bytes(r[16]);
  s.cover = Bytes(r[17]);
  return s;
}

void MigrateToV3(pqxx::work& tx) {
  tx.exec(
      "ALTER TABLE songs ADD COLUMN album_artist bytea NOT NULL DEFAULT ''::bytea,"
      "  ADD COLUMN disc bigint NOT NULL DEFAULT 0, ADD COLUMN genre bytea NOT NULL DEFAULT ''::bytea,"
      "  ADD COLUMN compilation boolean NOT NULL DEFAULT false,"
      "  ADD COLUMN album_id bytea NOT NULL DEFAULT ''::bytea;"
      "CREATE TEMP TABLE album_backfill (file_id bytea, album_artist bytea, album_id bytea) ON COMMIT DROP;");
  // Computed in C++ (the folding is the embedded store's), page by page: one COPY per page, as a
  // COPY cannot run beside a query.
  std::string after;
  constexpr int64_t kPage = 5000;
  uint64_t songs = 0;
  while (true) {
    const pqxx::result rows = tx.exec_params(
        "SELECT file_id, artist, album FROM songs WHERE file_id > $1 ORDER BY file_id LIMIT $2", Bytes(after),
        kPage);
    {
      pqxx::stream_to out(tx, "album_backfill",
                          std::vector<std::string>{"file_id", "album_artist", "album_id"});
      for (const auto& r : rows) {
        Song s;
        s.artist = Bytes(r[1]);
        s.album = Bytes(r[2]);
        CompleteSong(&s);  // a version-2 song has no album artist tag: its artist
        out << std::make_tuple("\\x" + Hex(Bytes(r[0])), "\\x" + Hex(s.album_artist),
                               "\\x" + Hex(s.album_id));
      }
      out.complete();
    }
    songs += rows.size();
    if (rows.size() < static_cast<size_t>(kPage)) break;
    after = Bytes(rows[rows.size() - 1][0]);
  }
  tx.exec(
      "UPDATE songs s SET album_artist = b.album_artist, album_id = b.album_id FROM album_backfill b "
      "WHERE s.file_id = b.file_id;"
      "CREATE INDEX songs_album ON songs (album_id, disc, track, title, file_id);"
      "CREATE TABLE albums (album_id bytea PRIMARY KEY, title bytea NOT NULL, album_artist bytea NOT NULL,"
      "  title_key bytea NOT NULL, artist_key bytea NOT NULL, year bigint NOT NULL, neg_year bigint NOT NULL,"
      "  song_count bigint NOT NULL, duration_ms bigint NOT NULL, created_at_ms bigint NOT NULL);"
      "CREATE INDEX albums_name ON albums (title_key, album_id);"
      "CREATE INDEX albums_year ON albums (neg_year, title_key, album_id);"
      "CREATE INDEX albums_recent ON albums (created_at_ms, album_id);"
      "CREATE INDEX albums_artist_name ON albums (album_artist, title_key, album_id);"
      "CREATE INDEX albums_artist_year ON albums (album_artist, neg_year, title_key, album_id);"
      "CREATE INDEX albums_artist_recent ON albums (album_artist, created_at_ms, album_id);"
      "CREATE INDEX albums_artists ON albums (artist_key, album_artist, song_count);");
  // The statements of this connection were not prepared for the new table: write it directly.
  tx.exec(std::string("INSERT INTO albums SELECT album_id, title, album_artist, ''::bytea, ''::bytea, year, "
                      "-year, song_count, duration_ms, created_at_ms FROM (SELECT album_id, ") +
          "count(*) AS song_count, (array_agg(album ORDER BY album))[1] AS title, "
          "(array_agg(album_artist ORDER BY album_artist))[1] AS album_artist, max(year) AS year, "
          "coalesce(sum(duration_ms), 0)::bigint AS duration_ms, max(created_at_ms) AS created_at_ms "
          "FROM songs GROUP BY album_id) a");
  // The folded keys come from C++.
  std::string after_album;
  while (true) {
    const pqxx::result rows = tx.exec_params(
        "SELECT album_id, title, album_artist FROM albums WHERE album_id > $1 ORDER BY album_id LIMIT 5000",
        Bytes(after_album));
    for (const auto& r : rows) {
      tx.exec_params("UPDATE albums SET title_key = $2, artist_key = $3 WHERE album_id = $1",
                     binarystring(r[0]), Bytes(FoldKey(Bytes(r[1]))), Bytes(FoldKey(Bytes(r[2]))));
    }
    if (rows.size() < 5000) break;
    after_album = Bytes(rows[rows.size() - 1][0]);
  }
  DLOG_INFO << "postgres catalog: schema 3 (albums) built for " << songs << " songs";
}

void MigrateToV4(pqxx::work& tx) {
  // Every song so far has no cover, so the albums' rows need no recomputing.
  tx.exec(
      "ALTER TABLE songs ADD COLUMN cover bytea NOT NULL DEFAULT ''::bytea;"
      "ALTER TABLE albums ADD COLUMN cover bytea NOT NULL DEFAULT ''::bytea;"
      "CREATE INDEX songs_cover ON songs (cover) WHERE cover <> ''::bytea;");
}

void PrepareLibraryStatements(pqxx::connection& c) {
  c.prepare("album_aggregate", std::string("SELECT ") + kAggregate + " FROM songs WHERE album_id = $1 AND " +
                                   kSongsOnly + " GROUP BY album_id");
  c.prepare("all_album_aggregates", std::string("SELECT album_id, ") + kAggregate + " FROM songs WHERE " +
                                        kSongsOnly + " GROUP BY album_id ORDER BY album_id");
  c.prepare(
      "put_album",
      "INSERT INTO albums (album_id, title, album_artist, title_key, artist_key, year, neg_year, song_count, "
      "duration_ms, created_at_ms, cover) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
      "ON CONFLICT (album_id) DO UPDATE SET title = EXCLUDED.title, album_artist = EXCLUDED.album_artist, "
      "title_key = EXCLUDED.title_key, artist_key = EXCLUDED.artist_key, year = EXCLUDED.year, "
      "neg_year = EXCLUDED.neg_year, song_count = EXCLUDED.song_count, duration_ms = EXCLUDED.duration_ms, "
      "created_at_ms = EXCLUDED.created_at_ms, cover = EXCLUDED.cover");
  c.prepare("delete_album", "DELETE FROM albums WHERE album_id = $1");
  c.prepare("get_album", std::string("SELECT ") + kAlbumColumns + " FROM albums WHERE album_id = $1");
  c.prepare("album_songs", std::string("SELECT ") + kSongColumns + " FROM songs WHERE album_id = $1 AND " +
                               kSongsOnly + " ORDER BY disc, track, title, file_id");
  c.prepare("song_with_cover",
            std::string("SELECT ") + kSongColumns +
                " FROM songs WHERE cover = $1 AND cover <> ''::bytea ORDER BY file_id LIMIT 1");
  c.prepare("list_artists_first",
            "SELECT artist_key, album_artist, count(*), sum(song_count)::bigint FROM albums "
            "WHERE $1::bytea IS NOT NULL AND $2::bytea IS NOT NULL "  // typed: one signature for both
            "GROUP BY artist_key, album_artist ORDER BY artist_key, album_artist LIMIT $3");
  c.prepare("list_artists_after",
            "SELECT artist_key, album_artist, count(*), sum(song_count)::bigint FROM albums "
            "WHERE (artist_key, album_artist) > ($1, $2) "
            "GROUP BY artist_key, album_artist ORDER BY artist_key, album_artist LIMIT $3");
  for (bool artist : {false, true}) {
    for (bool after : {false, true}) {
      for (AlbumSort sort : {AlbumSort::kName, AlbumSort::kYear, AlbumSort::kRecent}) {
        c.prepare(ListAlbumsName(artist, after, sort), ListAlbumsSql(artist, after, sort));
      }
    }
  }
}

void RefreshAlbum(pqxx::work& tx, const std::string& album_id) {
  // Grouped, so that the picture subquery may name the group's album_id: no row when the album
  // has no song left.
  const pqxx::result rows = tx.exec_prepared("album_aggregate", Bytes(album_id));
  if (rows.empty() || rows[0][0].as<int64_t>() == 0) {
    tx.exec_prepared0("delete_album", Bytes(album_id));
    return;
  }
  WriteAlbum(tx, album_id, rows[0], 0);
}

void RebuildAlbums(pqxx::work& tx) {
  tx.exec("TRUNCATE albums");
  const pqxx::result rows = tx.exec_prepared("all_album_aggregates");
  for (const auto& r : rows) WriteAlbum(tx, Bytes(r[0]), r, 1);
}

Result<ArtistPage> ListArtists(pqxx::transaction_base& tx, const ArtistListRequest& request) {
  DISPOTIFY_RETURN_IF_ERROR(ValidateArtistList(request));
  LibraryCursor after;
  if (!request.after.empty()) {
    auto decoded = DecodeArtistCursor(request.after);
    if (!decoded.ok()) return decoded.status();
    after = std::move(decoded).value();
  }
  const pqxx::result r =
      tx.exec_prepared(request.after.empty() ? "list_artists_first" : "list_artists_after", Bytes(after.key),
                       Bytes(after.name), static_cast<int64_t>(request.limit) + 1);
  ArtistPage page;
  std::string last_key;
  for (const auto& row : r) {
    if (page.items.size() == request.limit) {
      page.next_after = EncodeArtistCursor({last_key, page.items.back().name, 0});
      break;
    }
    last_key = Bytes(row[0]);
    page.items.push_back(ArtistSummary{Bytes(row[1]), U64(row[2]), U64(row[3])});
  }
  return page;
}

Result<AlbumPage> ListAlbums(pqxx::transaction_base& tx, const AlbumListRequest& request) {
  DISPOTIFY_RETURN_IF_ERROR(ValidateAlbumList(request));
  LibraryCursor after;
  if (!request.after.empty()) {
    auto decoded = DecodeAlbumCursor(request.sort, request.after);
    if (!decoded.ok()) return decoded.status();
    after = std::move(decoded).value();
  }
  const int64_t number = request.sort == AlbumSort::kYear ? -after.number : after.number;
  const pqxx::result r = tx.exec_prepared(
      ListAlbumsName(request.artist.has_value(), !request.after.empty(), request.sort), Bytes(after.key),
      Bytes(after.name), number, Bytes(request.artist.value_or("")), static_cast<int64_t>(request.limit) + 1);
  AlbumPage page;
  std::string last_key;
  for (const auto& row : r) {
    if (page.items.size() == request.limit) {
      const AlbumSummary& last = page.items.back();
      const int64_t n =
          request.sort == AlbumSort::kYear ? static_cast<int64_t>(last.year) : last.created_at_ms;
      page.next_after = EncodeAlbumCursor(request.sort, {last_key, last.album_id, n});
      break;
    }
    last_key = Bytes(row[7]);
    page.items.push_back(AlbumFromRow(row));
  }
  return page;
}

Result<std::optional<Song>> SongWithCover(pqxx::transaction_base& tx, std::string_view cover) {
  const pqxx::result r = tx.exec_prepared("song_with_cover", Bytes(cover));
  if (r.empty()) return std::optional<Song>();
  return std::optional<Song>(SongFromRow(r[0]));
}

Result<std::optional<AlbumDetail>> GetAlbum(pqxx::transaction_base& tx, std::string_view album_id) {
  if (!IsValidAlbumId(album_id)) return Status::InvalidArgument("an album id is 16 lowercase hex digits");
  const pqxx::result head = tx.exec_prepared("get_album", Bytes(album_id));
  if (head.empty()) return std::optional<AlbumDetail>();
  AlbumDetail detail;
  detail.summary = AlbumFromRow(head[0]);
  std::set<std::string> genres;
  for (const auto& row : tx.exec_prepared("album_songs", Bytes(album_id))) {
    detail.songs.push_back(SongFromRow(row));
    if (!detail.songs.back().genre.empty()) genres.insert(detail.songs.back().genre);
  }
  detail.genres.assign(genres.begin(), genres.end());
  return std::optional<AlbumDetail>(std::move(detail));
}

}  // namespace dispotify::catalog::pg
