#pragma once
// The PostgreSQL metadata store (libpqxx), behind the MetadataStore interface. One database per
// node (UTF8 encoding); OpenPostgresStore (metadata_store.h) creates and migrates the schema.
// libpqxx stays out of this header: everything lives in postgres_store.cc.
//
// SCHEMA (version 4; meta.schema_version; the library columns and the albums table of version 3,
// and the covers' columns of version 4, are in postgres_library.h)
//   meta      (key text PRIMARY KEY, value bigint): 'schema_version', 'applied_index', and the
//             Stats counters 'songs', 'bytes', 'replicas_healthy', 'replicas_other' [v2]
//   songs     (file_id bytea PRIMARY KEY, title, artist, album, file_name, content_type bytea,
//              track, year, duration_ms, size_bytes bigint, sha256 bytea, created_at_ms bigint)
//   song_search (file_id bytea PRIMARY KEY, search_text text, fields text[])         [v2]
//             + GIN (search_text gin_trgm_ops), GIN (fields): one narrow row per song, so that
//             the trigram index's rechecks and the in-order scans of a search read ~2.5x fewer
//             pages than on songs; `fields` = the non-empty folded fields, for exact matches
//   replicas  (file_id bytea, node bigint, state smallint, updated_at_ms bigint,
//              PRIMARY KEY (file_id, node))        + btree (node, file_id)
//   locks     (name bytea PRIMARY KEY, owner bytea, expires_at_ms bigint, token bigint)
//   settings  (key bytea PRIMARY KEY, value bytea)
//   vocab     (word text PRIMARY KEY, n bigint, len int, c0 bigint, cl bigint)      [v2]
//             + btree (c0, len), (cl, len): the distinct folded words (3+ code points, not all
//             digits) of all songs, n = number of songs holding the word, c0/cl = first/last
//             code point — the embedded store's vocabulary, for the same fuzzy candidates.
// The catalog's strings are bytes (the SQLite store and the dump carry any byte, NUL included),
// so they are stored as bytea: text would refuse invalid UTF-8 or a NUL, and an entry one store
// accepts and the other refuses would stop a node. bytea also orders byte-wise, as SQLite's
// BINARY collation does, so keyset pages agree between the stores. Unsigned 64-bit values are
// stored as their two's complement in bigint (sizes and durations are <= INT64_MAX by
// validation).
//
// song_search.search_text is FoldField(title) + FoldField(artist) + FoldField(album) +
// FoldField(file_name) (sqlite_store.h's folding, so both stores see the same words), e.g.
// "\x02 yesterday \x03\x02 the beatles \x03\x02 help \x03": a folded word never holds a space,
// \x02 or \x03, so a LIKE pattern built from words cannot match across two fields, and
// "%\x02 w1 w2 \x03%" is exactly "a whole field equals w1 w2".
//
// Migrations run on open, in order, each in its own transaction under an advisory lock, and
// record the version they reach; a database of a newer version than this build is refused
// (kFailedPrecondition). v1: the catalog tables; v2: pg_trgm, song_search (computed here for
// existing songs), vocab, the Stats counters, the search indexes; v3: the library columns of
// songs (album_artist = artist and album_id computed here for existing songs) and albums.
//
// Apply: one transaction that first reads meta.applied_index FOR UPDATE (an entry at or below it
// is a no-op), validates the mutations as the embedded store does, applies them, and writes the
// index and the counters. A COMMIT whose answer is lost (connection dropped) is resolved by
// reading the applied index on a new connection. Reads use a pool of other connections, so they
// never wait for Apply; a pooled connection found broken (the server restarted) is replaced once,
// transparently. While the server is unreachable every call returns kUnavailable, and the store
// recovers by itself when it is back.

#include <cstddef>
#include <memory>
#include <string>

#include "common/status.h"
#include "node/catalog/metadata_store.h"

namespace dispotify::catalog {

inline constexpr int kPostgresSchemaVersion = 4;

struct PostgresStoreOptions {
  size_t max_idle_read_connections = 4;  // pooled reader connections kept open
};

Result<std::unique_ptr<MetadataStore>> OpenPostgresStore(const std::string& conninfo,
                                                         const PostgresStoreOptions& options);

}  // namespace dispotify::catalog
