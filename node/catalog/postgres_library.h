#pragma once
// The PostgreSQL store's library model (node/catalog/library.h), schema version 3 — the embedded
// store's design (sqlite_library.h) in PostgreSQL terms:
//   songs   + album_artist bytea, disc bigint, genre bytea, compilation boolean, album_id bytea
//           + btree (album_id, disc, track, title, file_id)
//   albums  (album_id bytea PRIMARY KEY, title, album_artist, title_key, artist_key bytea, year,
//            neg_year, song_count, duration_ms, created_at_ms bigint) + the same btree indexes as
//            the embedded store's, kept by Apply (RefreshAlbum) and rebuilt by Load and the
//            migration.
// Strings are bytea as everywhere in this store, so every order (and so every cursor) is the
// byte order the embedded store uses. An album's title and album_artist are the smallest of its
// songs' (array_agg ORDER BY: PostgreSQL has no min(bytea)).
// Schema version 4 (MigrateToV4): songs.cover, albums.cover, a partial index on songs (cover).
// Internal to node/catalog: used by postgres_store.cc only. Functions throw libpqxx exceptions,
// which the store turns into a Status.

#include <pqxx/pqxx>
#include <string>
#include <string_view>

#include "node/catalog/library.h"
#include "node/catalog/types.h"

namespace dispotify::catalog::pg {

// A song's columns in the order SongFromRow reads them.
extern const char* const kSongColumns;
Song SongFromRow(const pqxx::row& r);

// Version 2 -> 3: the song columns (backfilled: album_artist = artist, album_id), albums.
void MigrateToV3(pqxx::work& tx);
// Version 3 -> 4: the covers' columns.
void MigrateToV4(pqxx::work& tx);
// Recomputes the row of `album_id` from its songs (deletes it when none is left).
void RefreshAlbum(pqxx::work& tx, const std::string& album_id);
// Refills albums from songs.
void RebuildAlbums(pqxx::work& tx);
// Statements the store prepares on every connection.
void PrepareLibraryStatements(pqxx::connection& c);

Result<ArtistPage> ListArtists(pqxx::transaction_base& tx, const ArtistListRequest& request);
Result<AlbumPage> ListAlbums(pqxx::transaction_base& tx, const AlbumListRequest& request);
Result<std::optional<AlbumDetail>> GetAlbum(pqxx::transaction_base& tx, std::string_view album_id);
Result<std::optional<Song>> SongWithCover(pqxx::transaction_base& tx, std::string_view cover);

}  // namespace dispotify::catalog::pg
