#pragma once
// The embedded store's library model (node/catalog/library.h), schema version 3:
//   songs   + album_artist, disc, genre, compilation, album_id  + index (album_id, disc, track,
//           title, file_id): an album's songs in order, and its summary recomputed from them
//   albums(album_id PRIMARY KEY, title, album_artist, title_key, artist_key, year, neg_year,
//          song_count, duration_ms, created_at_ms) WITHOUT ROWID: one row per album, kept by
//          Apply (RefreshAlbum for the albums a song leaves and joins) and rebuilt by Load and the
//          migration; title_key = FoldKey(title), artist_key = FoldKey(album_artist), neg_year =
//          -year (so that "year descending, title ascending" is one ascending index order).
//          Indexes: (title_key, album_id), (neg_year, title_key, album_id), (created_at_ms,
//          album_id), the same three behind album_artist, and (artist_key, album_artist,
//          song_count) for the artist listing (a covering index: a page of artists reads only
//          the index entries of the albums of those artists).
// Every listing is a keyset range scan on one of these indexes, LIMIT page + 1: a page costs
// the same at any depth (no OFFSET).
// Migration from version 2 (MigrateToV3, inside Open's transaction): the columns are added,
// album_artist = artist and album_id are written in batches of songs, the table and indexes
// built; Open fills albums from songs once the later versions' columns exist.
// Schema version 4 (kAddCoverColumns): songs.cover and albums.cover (the album's: its picture's,
// else that of its first song in album order that has one), and a partial index on songs(cover)
// for SongWithCover.

#include <optional>
#include <string_view>

#include "common/status.h"
#include "node/catalog/library.h"
#include "node/catalog/sqlite_internal.h"

namespace dispotify::catalog::sqlite {

// The schema-3 objects a new database gets after the songs table (which already has the
// columns); also run by MigrateToV3.
extern const char kCreateLibrarySchema[];

// Version 3 -> 4; also the last step of creating a database.
extern const char kAddCoverColumns[];

// --- on the writer connection, inside its transaction ---
Status MigrateToV3(Conn& writer);
// Recomputes the row of `album_id` from its songs (deletes it when it has none left).
Status RefreshAlbum(Conn& writer, std::string_view album_id);
// Refills albums from songs.
Status RebuildAlbums(Conn& writer);

// --- on a reader connection (GetAlbum inside a read transaction) ---
Result<ArtistPage> ListArtists(Conn& reader, const ArtistListRequest& request);
Result<AlbumPage> ListAlbums(Conn& reader, const AlbumListRequest& request);
Result<std::optional<AlbumDetail>> GetAlbum(Conn& reader, std::string_view album_id);
// A song whose cover is `cover` (the one with the smallest file_id), or nullopt.
Result<std::optional<Song>> SongWithCover(Conn& reader, std::string_view cover);

}  // namespace dispotify::catalog::sqlite
