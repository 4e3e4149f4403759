// The PostgreSQL metadata store; schema, migrations and the apply protocol are documented in
// postgres_store.h. libpqxx throws: every call into it is wrapped here, and its exceptions become
// Status values (TranslateException); nothing escapes this file.
//
// SEARCH: the embedded store's results contract (sqlite_store.h, "Search") on song_search. The
// query is folded with the same search::FoldWords into w1..wn; a song falls in the first bucket
// it meets:
//   0 exact      a whole field equals the query       fields @> ARRAY['\x02 w1 .. wn \x03']
//   1 prefix     every wi starts a word               search_text LIKE '% wi%' (1 character:
//                                                     '% wi %' or '%\x02 wi%')
//   2 substring  every wi occurs (3+ characters; shorter ones keep the prefix meaning)
//   3 fuzzy      only when buckets 0-2 hold fewer than `limit` songs: as 2, or a vocabulary
//                word within edit distance 1 (2 for 7+ characters) of wi occurs, when wi itself
//                is no vocabulary word; candidates share wi's first or last code point and a
//                close length; the closest ones only, at most 5, by (most songs, word).
// Order (bucket, file_id); cursor "v1.<bucket>.<file_id>" continues after (bucket, file_id)
// with a keyset condition; `total` counts bucket 2's condition (bucket 3's when fuzzy is in use)
// up to kSearchTotalCap. Everything one Search reads comes from one snapshot (REPEATABLE READ).
// How it stays fast at 1,000,000 songs:
//  - the trigram index is asked about the two rarest words only (Params::Indexed); the rest of
//    the condition filters the rows it yields;
//  - each bucket is read in file_id order with LIMIT (FetchBucket): a common word's page comes
//    from a short in-order window of song_search, a rare word's through the index, sorted;
//  - song_search is narrow (~130 bytes a row), so rechecks and windows read few pages.

#include "node/catalog/postgres_store.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "node/catalog/dump_format.h"
#include "node/catalog/library.h"
#include "node/catalog/postgres_library.h"
#include "node/catalog/sqlite_store.h"

namespace dispotify::catalog {
namespace {

using pqxx::binarystring;

// Limits shared with the embedded store (validation must agree, or an entry one store accepts
// would stop a node using the other).
constexpr uint32_t kMaxListLimit = 1000;
constexpr uint32_t kMaxReplicaPage = 10000;
constexpr uint32_t kMaxSearchLimit = 100;
constexpr size_t kMaxFuzzyAlternatives = 5;
constexpr size_t kProbeRows = 2000;  // see FetchBucket

// Serialises migrations of one database (pg_advisory_lock); any constant unique to us.
constexpr int64_t kMigrationLockKey = 0x44535046594341;  // "DSPFYCA"
constexpr size_t kBatch = 2000;

// ---------------------------------------------------------------------------------------------
// Exceptions -> Status (the libpqxx boundary)
// ---------------------------------------------------------------------------------------------

bool IsConnectionState(const std::string& s) {
  // 08: connection exception; 57P01..57P03: the server is shutting down / crashed / starting.
  return s.rfind("08", 0) == 0 || s == "57P01" || s == "57P02" || s == "57P03";
}

// Call only from a catch block.
Status TranslateException(std::string_view what) {
  const std::string prefix = "postgres " + std::string(what) + ": ";
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return Status::Unavailable(prefix + "connection lost: " + e.what());
  } catch (const pqxx::in_doubt_error& e) {
    return Status::Unavailable(prefix + "commit outcome unknown: " + e.what());
  } catch (const pqxx::sql_error& e) {
    const std::string& state = e.sqlstate();
    if (state == "53100") return Status::NoSpace(prefix + e.what());
    if (state.rfind("22", 0) == 0) return Status::InvalidArgument(prefix + e.what());
    if (IsConnectionState(state)) return Status::Unavailable(prefix + e.what());
    return Status::IoError(prefix + "[" + state + "] " + e.what());
  } catch (const pqxx::conversion_error& e) {
    return Status::Corruption(prefix + "unexpected value: " + e.what());
  } catch (const std::exception& e) {
    return Status::IoError(prefix + e.what());
  } catch (...) {
    return Status::IoError(prefix + "unknown exception");
  }
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

binarystring Bytes(std::string_view s) {
  return binarystring(s.data(), s.size());
}
std::string Bytes(const pqxx::field& f) {
  return binarystring(f).str();
}
int64_t I64(uint64_t v) {
  return static_cast<int64_t>(v);
}
uint64_t U64(const pqxx::field& f) {
  return static_cast<uint64_t>(f.as<int64_t>());
}

// Concatenation by appending (GCC 12 at -O3 reports a false -Wrestrict on chains of operator+).
std::string Cat(std::initializer_list<std::string_view> parts) {
  size_t n = 0;
  for (std::string_view s : parts) n += s.size();
  std::string out;
  out.reserve(n);
  for (std::string_view s : parts) out.append(s);
  return out;
}

// A text column of an outer join: "" for NULL.
std::string OptionalText(const pqxx::field& f) {
  return f.is_null() ? std::string() : f.as<std::string>();
}

std::string Hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (char ch : s) {
    const auto b = static_cast<unsigned char>(ch);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

// A bytea in COPY's text format before COPY's own escaping (pqxx::stream_to doubles the '\').
std::string CopyBytea(std::string_view s) {
  return Cat({"\\x", Hex(s)});
}

using pg::kSongColumns;
using pg::SongFromRow;

Replica ReplicaFromRow(const pqxx::row& r) {
  Replica rep;
  rep.file_id = Bytes(r[0]);
  rep.node = NodeId(U64(r[1]));
  rep.state = static_cast<ReplicaState>(r[2].as<int>());
  rep.updated_at_ms = r[3].as<int64_t>();
  return rep;
}

Lock LockFromRow(const pqxx::row& r) {
  Lock l;
  l.name = Bytes(r[0]);
  l.owner = Bytes(r[1]);
  l.expires_at_ms = r[2].as<int64_t>();
  l.token = U64(r[3]);
  return l;
}

// ---------------------------------------------------------------------------------------------
// Validation (the embedded store's rules)
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Folded text and vocabulary
// ---------------------------------------------------------------------------------------------

// A song's folded fields as song_search holds them: `text` is their concatenation, `fields` a
// text[] literal of the non-empty ones (for exact whole-field matches).
struct Folded {
  std::string text;
  std::string fields;
};

Folded Fold(const Song& s) {
  Folded f;
  f.fields = "{";
  if (IsPicture(s)) return Folded{"", "{}"};  // not searchable: a picture is not a song
  for (const std::string* field : {&s.title, &s.artist, &s.album, &s.file_name}) {
    const std::string folded = search::FoldField(*field);
    if (folded.empty()) continue;
    f.text += folded;
    if (f.fields.size() > 1) f.fields += ',';
    f.fields += '"';
    for (char c : folded) {  // folded text holds neither '"' nor '\\'; escaped all the same
      if (c == '"' || c == '\\') f.fields += '\\';
      f.fields += c;
    }
    f.fields += '"';
  }
  f.fields += '}';
  return f;
}

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// The vocabulary words of a search_text: words of 3+ code points that are not all digits.
std::set<std::string> VocabWords(std::string_view text) {
  std::set<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view w = text.substr(start, end - start);
    start = end + 1;
    if (w.find_first_of("\x02\x03") != std::string_view::npos) continue;  // field delimiters
    const bool all_digits = std::all_of(w.begin(), w.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!all_digits && CodePointCount(w) >= 3) out.emplace(w);
  }
  return out;
}

// Words joined by ' ' (words never hold one), for string_to_array($1, ' ') in SQL.
std::string JoinWords(const std::set<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Schema and migrations
// ---------------------------------------------------------------------------------------------

// A small pending list (GIN's buffer of not yet merged insertions, which every search reads
// through): searches stay fast while songs keep arriving, inserts still batch a little.
constexpr const char* kCreateSearchIndex =
    "CREATE INDEX IF NOT EXISTS song_search_trgm ON song_search USING gin (search_text gin_trgm_ops) "
    "WITH (gin_pending_list_limit = 512)";
constexpr const char* kCreateFieldsIndex =
    "CREATE INDEX IF NOT EXISTS song_search_fields ON song_search USING gin (fields)";
// Sets the Stats counters from the tables.
constexpr const char* kRecount =
    "UPDATE meta SET value = CASE key "
    "  WHEN 'songs' THEN (SELECT count(*) FROM songs) "
    "  WHEN 'bytes' THEN (SELECT coalesce(sum(size_bytes), 0)::bigint FROM songs) "
    "  WHEN 'replicas_healthy' THEN (SELECT count(*) FROM replicas WHERE state = 1) "
    "  ELSE (SELECT count(*) FROM replicas WHERE state <> 1) END "
    "WHERE key IN ('songs', 'bytes', 'replicas_healthy', 'replicas_other')";

void MigrateToV1(pqxx::work& tx) {
  tx.exec(
      "CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);"
      "INSERT INTO meta (key, value) VALUES ('applied_index', 0);"
      "CREATE TABLE songs ("
      "  file_id bytea PRIMARY KEY, title bytea NOT NULL, artist bytea NOT NULL, album bytea NOT NULL,"
      "  file_name bytea NOT NULL, content_type bytea NOT NULL, track bigint NOT NULL, year bigint NOT NULL,"
      "  duration_ms bigint NOT NULL, size_bytes bigint NOT NULL, sha256 bytea NOT NULL,"
      "  created_at_ms bigint NOT NULL);"
      "CREATE TABLE replicas ("
      "  file_id bytea NOT NULL, node bigint NOT NULL, state smallint NOT NULL,"
      "  updated_at_ms bigint NOT NULL, PRIMARY KEY (file_id, node));"
      "CREATE INDEX replicas_by_node ON replicas (node, file_id);"
      "CREATE TABLE locks (name bytea PRIMARY KEY, owner bytea NOT NULL, expires_at_ms bigint NOT NULL,"
      "  token bigint NOT NULL);"
      "CREATE TABLE settings (key bytea PRIMARY KEY, value bytea NOT NULL);");
}

// Writes `counts` (word -> songs) into vocab with one COPY.
void CopyVocab(pqxx::work& tx, const std::unordered_map<std::string, int64_t>& counts) {
  pqxx::stream_to out(tx, "vocab", std::vector<std::string>{"word", "n", "len", "c0", "cl"});
  for (const auto& [word, n] : counts) {
    const std::u32string cps = search::DecodeUtf8(word);
    out << std::make_tuple(word, n, static_cast<int64_t>(cps.size()), static_cast<int64_t>(cps.front()),
                           static_cast<int64_t>(cps.back()));
  }
  out.complete();
}

// Fills song_search and vocab (both empty) from songs, page by page: the folded text comes from
// C++ (the embedded store's folding). One COPY per page, as a COPY cannot run beside a query.
void BuildSearch(pqxx::work& tx) {
  std::unordered_map<std::string, int64_t> vocab;
  std::string after;
  constexpr size_t kPage = 5000;
  while (true) {
    const pqxx::result rows = tx.exec_params(
        "SELECT file_id, title, artist, album, file_name, content_type FROM songs WHERE file_id > $1 "
        "ORDER BY file_id LIMIT $2",
        Bytes(after), static_cast<int64_t>(kPage));
    pqxx::stream_to out(tx, "song_search", std::vector<std::string>{"file_id", "search_text", "fields"});
    for (const auto& r : rows) {
      Song s;
      s.title = Bytes(r[1]);
      s.artist = Bytes(r[2]);
      s.album = Bytes(r[3]);
      s.file_name = Bytes(r[4]);
      s.content_type = Bytes(r[5]);
      Folded f = Fold(s);
      for (const auto& w : VocabWords(f.text)) ++vocab[w];
      out << std::make_tuple(CopyBytea(Bytes(r[0])), std::move(f.text), std::move(f.fields));
    }
    out.complete();
    if (rows.size() < kPage) break;
    after = Bytes(rows[rows.size() - 1][0]);
  }
  CopyVocab(tx, vocab);
}

void MigrateToV2(pqxx::work& tx) {
  tx.exec(
      "CREATE EXTENSION IF NOT EXISTS pg_trgm;"
      "CREATE TABLE song_search (file_id bytea PRIMARY KEY, search_text text NOT NULL, fields text[] NOT "
      "NULL);"
      "CREATE TABLE vocab (word text PRIMARY KEY, n bigint NOT NULL, len int NOT NULL, c0 bigint NOT NULL,"
      "  cl bigint NOT NULL);"
      "CREATE INDEX vocab_c0 ON vocab (c0, len);"
      "CREATE INDEX vocab_cl ON vocab (cl, len);"
      "INSERT INTO meta (key, value) VALUES ('songs', 0), ('bytes', 0), ('replicas_healthy', 0),"
      "  ('replicas_other', 0);");
  BuildSearch(tx);
  tx.exec(kRecount);
  tx.exec(kCreateSearchIndex);
  tx.exec(kCreateFieldsIndex);
}

struct Migration {
  int version;
  void (*apply)(pqxx::work&);
};
constexpr Migration kMigrations[] = {
    {1, MigrateToV1}, {2, MigrateToV2}, {3, pg::MigrateToV3}, {4, pg::MigrateToV4}};
static_assert(std::size(kMigrations) == kPostgresSchemaVersion);

// The schema version recorded in the database; 0 when it has no catalog tables yet.
int64_t SchemaVersion(pqxx::transaction_base& tx) {
  if (!tx.exec1("SELECT to_regclass('meta') IS NOT NULL")[0].as<bool>()) return 0;
  const pqxx::result r = tx.exec("SELECT value FROM meta WHERE key = 'schema_version'");
  // Every migration writes the version in its own transaction: a meta table without one was
  // not made by this store.
  if (r.empty()) throw pqxx::conversion_error("table meta exists but has no schema_version row");
  return r[0][0].as<int64_t>();
}

Status Migrate(pqxx::connection& conn) {
  try {
    {
      pqxx::read_transaction tx(conn);
      const auto encoding = tx.exec1("SHOW server_encoding")[0].as<std::string>();
      if (encoding != "UTF8") {
        return Status::FailedPrecondition("postgres catalog database must use the UTF8 encoding, not " +
                                          encoding);
      }
      const int64_t v = SchemaVersion(tx);
      if (v > kPostgresSchemaVersion) {
        return Status::FailedPrecondition("postgres catalog schema version " + std::to_string(v) +
                                          " is newer than this build's " +
                                          std::to_string(kPostgresSchemaVersion) + " (no downgrades)");
      }
      if (v == kPostgresSchemaVersion) return Status::Ok();
    }
    // A session lock, taken before the migration transactions begin: a transaction that starts
    // after another opener's commit sees its tables (a transaction-level lock taken inside the
    // transaction would leave it with catalog caches from before the wait).
    pqxx::nontransaction(conn).exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
    for (const Migration& m : kMigrations) {
      pqxx::work tx(conn);
      const int64_t v = SchemaVersion(tx);  // again, under the lock: another opener may have won
      if (v >= m.version) continue;
      DLOG_INFO << "postgres catalog: migrating schema " << v << " -> " << m.version;
      m.apply(tx);
      tx.exec_params(
          "INSERT INTO meta (key, value) VALUES ('schema_version', $1) "
          "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
          m.version);
      tx.commit();
    }
    // On an error the connection is closed by the caller, which releases the lock as well.
    pqxx::nontransaction(conn).exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
    return Status::Ok();
  } catch (...) {
    return TranslateException("schema migration");
  }
}

// Statements prepared on every connection (libpqxx registers them with the server on first use).
void PrepareStatements(pqxx::connection& c) {
  const std::string cols = kSongColumns;
  c.prepare("applied", "SELECT value FROM meta WHERE key = 'applied_index'");
  c.prepare("applied_for_update", "SELECT value FROM meta WHERE key = 'applied_index' FOR UPDATE");
  c.prepare(
      "finish_apply",
      "UPDATE meta SET value = CASE key WHEN 'applied_index' THEN $1::bigint ELSE value + CASE key "
      "WHEN 'songs' THEN $2::bigint WHEN 'bytes' THEN $3::bigint WHEN 'replicas_healthy' THEN $4::bigint "
      "ELSE $5::bigint END END "
      "WHERE key IN ('applied_index', 'songs', 'bytes', 'replicas_healthy', 'replicas_other')");
  c.prepare(
      "song_for_write",
      "SELECT s.size_bytes, t.search_text, s.album_id FROM songs s LEFT JOIN song_search t USING (file_id) "
      "WHERE s.file_id = $1 FOR UPDATE OF s");
  c.prepare(
      "put_song",
      "WITH s AS (INSERT INTO songs (" + cols +
          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $15, $16, $17, $18, $19, $20) "
          "ON CONFLICT (file_id) DO UPDATE SET title = EXCLUDED.title, artist = EXCLUDED.artist, "
          "album = EXCLUDED.album, file_name = EXCLUDED.file_name, content_type = EXCLUDED.content_type, "
          "track = EXCLUDED.track, year = EXCLUDED.year, duration_ms = EXCLUDED.duration_ms, "
          "size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256, created_at_ms = "
          "EXCLUDED.created_at_ms, album_artist = EXCLUDED.album_artist, disc = EXCLUDED.disc, "
          "genre = EXCLUDED.genre, compilation = EXCLUDED.compilation, album_id = EXCLUDED.album_id, "
          "cover = EXCLUDED.cover) "
          "INSERT INTO song_search (file_id, search_text, fields) VALUES ($1, $13, $14::text[]) "
          "ON CONFLICT (file_id) DO UPDATE SET search_text = EXCLUDED.search_text, fields = EXCLUDED.fields "
          "WHERE song_search.search_text <> EXCLUDED.search_text");
  // Returns the states of the deleted replicas as (healthy, other) counts.
  c.prepare("delete_song",
            "WITH r AS (DELETE FROM replicas WHERE file_id = $1 RETURNING state), "
            "s AS (DELETE FROM songs WHERE file_id = $1), t AS (DELETE FROM song_search WHERE file_id = $1) "
            "SELECT count(*) FILTER (WHERE state = 1), count(*) FILTER (WHERE state <> 1) FROM r");
  // Returns the replica's previous state, if it had one.
  c.prepare("put_replica",
            "WITH old AS (SELECT state FROM replicas WHERE file_id = $1 AND node = $2), "
            "up AS (INSERT INTO replicas (file_id, node, state, updated_at_ms) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (file_id, node) DO UPDATE SET state = EXCLUDED.state, "
            "updated_at_ms = EXCLUDED.updated_at_ms) "
            "SELECT state FROM old");
  c.prepare("delete_replica", "DELETE FROM replicas WHERE file_id = $1 AND node = $2 RETURNING state");
  c.prepare(
      "put_lock",
      "INSERT INTO locks (name, owner, expires_at_ms, token) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at_ms = EXCLUDED.expires_at_ms, "
      "token = EXCLUDED.token");
  c.prepare("delete_lock", "DELETE FROM locks WHERE name = $1");
  c.prepare("put_setting",
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = "
            "EXCLUDED.value");
  c.prepare(
      "vocab_inc",
      "INSERT INTO vocab (word, n, len, c0, cl) "
      "SELECT w, 1, char_length(w), ascii(w), ascii(right(w, 1)) FROM unnest(string_to_array($1, ' ')) AS w "
      "ON CONFLICT (word) DO UPDATE SET n = vocab.n + 1");
  c.prepare("vocab_dec", "UPDATE vocab SET n = n - 1 WHERE word = ANY (string_to_array($1, ' '))");
  c.prepare("vocab_gc", "DELETE FROM vocab WHERE word = ANY (string_to_array($1, ' ')) AND n <= 0");
  c.prepare("vocab_has", "SELECT 1 FROM vocab WHERE word = $1");
  c.prepare("vocab_counts", "SELECT word, n FROM vocab WHERE word = ANY (string_to_array($1, ' '))");
  c.prepare("vocab_near",
            "SELECT word, n FROM vocab WHERE c0 = $1 AND len BETWEEN $2 AND $3 "
            "UNION ALL SELECT word, n FROM vocab WHERE cl = $4 AND len BETWEEN $2 AND $3 AND c0 <> $1");
  c.prepare("get_song", "SELECT " + cols + " FROM songs WHERE file_id = $1");
  c.prepare("list_songs", "SELECT " + cols + " FROM songs WHERE file_id > $1 ORDER BY file_id LIMIT $2");
  c.prepare("get_replicas",
            "SELECT file_id, node, state, updated_at_ms FROM replicas WHERE file_id = $1 ORDER BY node");
  c.prepare("replicas_on_node",
            "SELECT file_id, node, state, updated_at_ms FROM replicas WHERE node = $1 AND file_id > $2 "
            "ORDER BY file_id LIMIT $3");
  c.prepare("get_lock", "SELECT name, owner, expires_at_ms, token FROM locks WHERE name = $1");
  c.prepare("get_setting", "SELECT value FROM settings WHERE key = $1");
  c.prepare("delete_setting", "DELETE FROM settings WHERE key = $1");
  c.prepare("list_settings",
            "SELECT key, value FROM settings WHERE key > $1::bytea AND substring(key from 1 for "
            "length($2::bytea)) = $2::bytea "
            "ORDER BY key LIMIT $3");
  c.prepare(
      "stats",
      "SELECT key, value FROM meta WHERE key IN ('songs', 'bytes', 'replicas_healthy', 'replicas_other')");
  c.prepare("dump_songs", "SELECT " + cols + " FROM songs WHERE file_id > $1 ORDER BY file_id LIMIT $2");
  pg::PrepareLibraryStatements(c);
  c.prepare("dump_replicas_first",
            "SELECT file_id, node, state, updated_at_ms FROM replicas ORDER BY file_id, node LIMIT $1");
  c.prepare("dump_replicas",
            "SELECT file_id, node, state, updated_at_ms FROM replicas WHERE (file_id, node) > ($1, $2) "
            "ORDER BY file_id, node LIMIT $3");
}

std::unique_ptr<pqxx::connection> Connect(const std::string& conninfo, const char* role) {
  auto c = std::make_unique<pqxx::connection>(conninfo);
  // Visible in pg_stat_activity (libpqxx re-applies it if it ever re-establishes the session).
  c->set_variable("application_name", std::string("'dispotify-catalog-") + role + "'");
  PrepareStatements(*c);
  return c;
}

// Reader connections: taken for one call, given back when still healthy.
class ConnectionPool {
 public:
  ConnectionPool(std::string conninfo, size_t max_idle)
      : conninfo_(std::move(conninfo)), max_idle_(max_idle) {}

  // Throws (libpqxx) when a new connection cannot be made. *fresh tells whether it is new.
  std::unique_ptr<pqxx::connection> Acquire(bool* fresh) {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        *fresh = false;
        return c;
      }
    }
    *fresh = true;
    return Connect(conninfo_, "reader");
  }

  void Release(std::unique_ptr<pqxx::connection> c) {
    if (c == nullptr || !c->is_open()) return;
    std::lock_guard lock(mu_);
    if (idle_.size() < max_idle_) idle_.push_back(std::move(c));
  }

  // Drops the idle connections (after one was found broken, its siblings are suspect).
  void Clear() {
    std::vector<std::unique_ptr<pqxx::connection>> old;
    {
      std::lock_guard lock(mu_);
      old.swap(idle_);
    }
  }

 private:
  const std::string conninfo_;
  const size_t max_idle_;
  std::mutex mu_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;  // guarded by mu_
};

// ---------------------------------------------------------------------------------------------
// Search conditions
// ---------------------------------------------------------------------------------------------

// Text parameters of one dynamic statement, and its LIKE conditions. A condition is written so
// that the trigram index serves only its `Indexed` part: pg_trgm reads the posting list of every
// trigram of every pattern it is asked about, and all the rows it yields are rechecked. So the
// index gets the rarest words (see Search), and the rest of the condition filters those rows:
// "(search_text || '') LIKE ..." is the same test, but no index matches that expression.
class Params {
 public:
  std::string Add(std::string v) {
    values_.push_back(std::move(v));
    return Cat({"$", std::to_string(values_.size())});
  }
  std::string Like(std::string_view pattern) {
    return Cat({indexed_ ? "search_text LIKE " : "(search_text || '') LIKE ", Add(std::string(pattern))});
  }
  template <typename Fn>
  std::string Indexed(Fn build) {
    indexed_ = true;
    std::string out = build(this);
    indexed_ = false;
    return out;
  }
  const std::vector<std::string>& values() const { return values_; }

 private:
  std::vector<std::string> values_;
  bool indexed_ = false;
};

// Folded words hold no LIKE metacharacter (ASCII punctuation separates words); escaped anyway.
std::string LikeEscape(std::string_view w) {
  std::string out;
  for (char c : w) {
    if (c == '%' || c == '_' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string PrefixCond(Params* p, const std::string& w) {
  const std::string e = LikeEscape(w);
  if (CodePointCount(w) == 1) {
    return Cat({"(", p->Like(Cat({"% ", e, " %"})), " OR ", p->Like(Cat({"%\x02 ", e, "%"})), ")"});
  }
  return p->Like(Cat({"% ", e, "%"}));
}

std::string SubstringCond(Params* p, const std::string& w) {
  return CodePointCount(w) >= 3 ? p->Like(Cat({"%", LikeEscape(w), "%"})) : PrefixCond(p, w);
}

// AND over the words of cond(word i); alternatives[i] (fuzzy) are ORed into word i's condition.
// With `only`, the words i with only[i] ("TRUE" when there are none).
template <typename Cond>
std::string AllWords(Params* p, const std::vector<std::string>& words, Cond cond,
                     const std::vector<std::vector<std::string>>* alternatives = nullptr,
                     const std::vector<bool>* only = nullptr) {
  std::string out = "(";
  for (size_t i = 0; i < words.size(); ++i) {
    if (only != nullptr && !(*only)[i]) continue;
    if (out.size() > 1) out.append(" AND ");
    const bool alt = alternatives != nullptr && !(*alternatives)[i].empty();
    if (alt) out.append("(");
    out.append(cond(p, words[i]));
    if (alt) {
      for (const auto& a : (*alternatives)[i]) {
        out.append(" OR ").append(p->Like(Cat({"%", LikeEscape(a), "%"})));
      }
      out.append(")");
    }
  }
  if (out.size() == 1) return "TRUE";
  out.append(")");
  return out;
}

// Builds a search condition, adding its parameters to *p.
using CondFn = std::function<std::string(Params*)>;

std::string EncodeCursor(int bucket, std::string_view file_id) {
  return Cat({"v1.", std::to_string(bucket), ".", file_id});
}

bool DecodeCursor(std::string_view cursor, int* bucket, std::string* file_id) {
  if (cursor.size() < 6 || cursor.substr(0, 3) != "v1." || cursor[4] != '.') return false;
  if (cursor[3] < '0' || cursor[3] > '3') return false;
  *bucket = cursor[3] - '0';
  *file_id = std::string(cursor.substr(5));
  return IsValidFileId(*file_id);
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

// Counter changes of one Apply (meta 'songs', 'bytes', 'replicas_healthy', 'replicas_other').
struct Deltas {
  int64_t songs = 0;
  int64_t bytes = 0;
  int64_t healthy = 0;
  int64_t other = 0;
  void Replica(int state, int64_t d) {
    (state == static_cast<int>(ReplicaState::kHealthy) ? healthy : other) += d;
  }
};

class PostgresStore final : public MetadataStore {
 public:
  PostgresStore(std::string conninfo, const PostgresStoreOptions& options,
                std::unique_ptr<pqxx::connection> writer)
      : conninfo_(std::move(conninfo)),
        readers_(conninfo_, options.max_idle_read_connections),
        writer_(std::move(writer)) {}

  Result<LogIndex> AppliedIndex() override {
    return Read<LogIndex>("applied index", [](pqxx::connection& c) -> Result<LogIndex> {
      pqxx::nontransaction tx(c);
      return LogIndex(U64(tx.exec_prepared1("applied")[0]));
    });
  }

  Status Apply(LogIndex index, const std::vector<Mutation>& mutations) override;

  Result<std::optional<Song>> GetSong(std::string_view file_id) override {
    if (!IsValidFileId(file_id)) return Status::InvalidArgument("invalid file_id");
    return Read<std::optional<Song>>("get song", [&](pqxx::connection& c) -> Result<std::optional<Song>> {
      pqxx::nontransaction tx(c);
      const pqxx::result r = tx.exec_prepared("get_song", Bytes(file_id));
      if (r.empty()) return std::optional<Song>();
      return std::optional<Song>(SongFromRow(r[0]));
    });
  }

  Result<SongPage> ListSongs(const ListRequest& request) override {
    if (request.limit < 1 || request.limit > kMaxListLimit) {
      return Status::InvalidArgument("limit must be 1..1000");
    }
    if (!request.after_file_id.empty() && !IsValidFileId(request.after_file_id)) {
      return Status::InvalidArgument("invalid after_file_id");
    }
    return Read<SongPage>("list songs", [&](pqxx::connection& c) -> Result<SongPage> {
      pqxx::nontransaction tx(c);
      const pqxx::result r = tx.exec_prepared("list_songs", Bytes(request.after_file_id),
                                              static_cast<int64_t>(request.limit) + 1);
      SongPage page;
      for (const auto& row : r) {
        if (page.items.size() == request.limit) {
          page.next_after = page.items.back().file_id;
          break;
        }
        page.items.push_back(SongFromRow(row));
      }
      return page;
    });
  }

  Result<SearchPage> Search(const SearchRequest& request) override;

  Result<ArtistPage> ListArtists(const ArtistListRequest& request) override {
    return Read<ArtistPage>("list artists", [&](pqxx::connection& c) -> Result<ArtistPage> {
      pqxx::nontransaction tx(c);
      return pg::ListArtists(tx, request);
    });
  }

  Result<AlbumPage> ListAlbums(const AlbumListRequest& request) override {
    return Read<AlbumPage>("list albums", [&](pqxx::connection& c) -> Result<AlbumPage> {
      pqxx::nontransaction tx(c);
      return pg::ListAlbums(tx, request);
    });
  }

  Result<std::optional<AlbumDetail>> GetAlbum(std::string_view album_id) override {
    return Read<std::optional<AlbumDetail>>("get album",
                                            [&](pqxx::connection& c) -> Result<std::optional<AlbumDetail>> {
                                              // The summary and the songs of one snapshot.
                                              pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c);
                                              return pg::GetAlbum(tx, album_id);
                                            });
  }

  Result<std::optional<Song>> SongWithCover(std::string_view cover) override {
    return Read<std::optional<Song>>("song with cover",
                                     [&](pqxx::connection& c) -> Result<std::optional<Song>> {
                                       pqxx::nontransaction tx(c);
                                       return pg::SongWithCover(tx, cover);
                                     });
  }

  Result<std::vector<Replica>> GetReplicas(std::string_view file_id) override {
    if (!IsValidFileId(file_id)) return Status::InvalidArgument("invalid file_id");
    return Read<std::vector<Replica>>(
        "get replicas", [&](pqxx::connection& c) -> Result<std::vector<Replica>> {
          pqxx::nontransaction tx(c);
          std::vector<Replica> out;
          for (const auto& row : tx.exec_prepared("get_replicas", Bytes(file_id))) {
            out.push_back(ReplicaFromRow(row));
          }
          return out;
        });
  }

  Result<std::vector<Replica>> ReplicasOnNode(NodeId node, std::string_view after_file_id,
                                              uint32_t limit) override {
    if (limit < 1 || limit > kMaxReplicaPage) return Status::InvalidArgument("limit must be 1..10000");
    if (!after_file_id.empty() && !IsValidFileId(after_file_id)) {
      return Status::InvalidArgument("invalid after_file_id");
    }
    return Read<std::vector<Replica>>(
        "replicas on node", [&](pqxx::connection& c) -> Result<std::vector<Replica>> {
          pqxx::nontransaction tx(c);
          std::vector<Replica> out;
          for (const auto& row : tx.exec_prepared("replicas_on_node", I64(node.value()), Bytes(after_file_id),
                                                  static_cast<int64_t>(limit))) {
            out.push_back(ReplicaFromRow(row));
          }
          return out;
        });
  }

  Result<std::optional<Lock>> GetLock(std::string_view name) override {
    return Read<std::optional<Lock>>("get lock", [&](pqxx::connection& c) -> Result<std::optional<Lock>> {
      pqxx::nontransaction tx(c);
      const pqxx::result r = tx.exec_prepared("get_lock", Bytes(name));
      if (r.empty()) return std::optional<Lock>();
      return std::optional<Lock>(LockFromRow(r[0]));
    });
  }

  Result<std::optional<std::string>> GetSetting(std::string_view key) override {
    return Read<std::optional<std::string>>(
        "get setting", [&](pqxx::connection& c) -> Result<std::optional<std::string>> {
          pqxx::nontransaction tx(c);
          const pqxx::result r = tx.exec_prepared("get_setting", Bytes(key));
          if (r.empty()) return std::optional<std::string>();
          return std::optional<std::string>(Bytes(r[0][0]));
        });
  }

  Result<std::vector<std::pair<std::string, std::string>>> ListSettings(std::string_view prefix,
                                                                        std::string_view after,
                                                                        uint32_t limit) override {
    using Rows = std::vector<std::pair<std::string, std::string>>;
    if (limit == 0 || limit > 1000) return Status::InvalidArgument("limit must be 1..1000");
    return Read<Rows>("list settings", [&](pqxx::connection& c) -> Result<Rows> {
      pqxx::nontransaction tx(c);
      Rows out;
      for (const auto& row : tx.exec_prepared("list_settings", Bytes(std::max(after, prefix)), Bytes(prefix),
                                              static_cast<int64_t>(limit))) {
        out.emplace_back(Bytes(row[0]), Bytes(row[1]));
      }
      return out;
    });
  }

  Result<CatalogStats> Stats() override {
    return Read<CatalogStats>("stats", [](pqxx::connection& c) -> Result<CatalogStats> {
      pqxx::nontransaction tx(c);
      CatalogStats st;
      for (const auto& row : tx.exec_prepared("stats")) {
        const auto key = row[0].as<std::string>();
        const uint64_t v = U64(row[1]);
        if (key == "songs") st.songs = v;
        if (key == "bytes") st.bytes = v;
        if (key == "replicas_healthy") st.replicas_healthy = v;
        if (key == "replicas_other") st.replicas_other = v;
      }
      return st;
    });
  }

  Status Dump(const std::function<Status(std::string_view)>& sink) override;
  Status Load(const std::string& path) override;

 private:
  // Runs fn(connection) on a pooled reader connection; libpqxx exceptions become a Status. A
  // pooled connection found broken (the server restarted since it was last used) is dropped and
  // the call made once more on a new connection: reads are idempotent.
  template <typename T, typename Fn>
  Result<T> Read(std::string_view what, Fn&& fn) {
    for (int attempt = 0;; ++attempt) {
      bool fresh = true;
      std::unique_ptr<pqxx::connection> conn;
      try {
        conn = readers_.Acquire(&fresh);
        Result<T> r = fn(*conn);
        readers_.Release(std::move(conn));
        return r;
      } catch (...) {
        Status st = TranslateException(what);
        if (st.code() != StatusCode::kUnavailable) {
          readers_.Release(std::move(conn));
        } else if (!fresh && attempt == 0) {
          readers_.Clear();
          continue;
        }
        return st;
      }
    }
  }

  // --- must hold write_mu_; throw libpqxx exceptions ---
  // Applies in one transaction; *sent is set once a statement of it reached the server.
  Status ApplyLocked(LogIndex index, const std::vector<Mutation>& mutations, bool* sent);
  static void ApplyMutation(pqxx::work& tx, const Mutation& m, Deltas* d);
  static void PutSong(pqxx::work& tx, const Song& s, Deltas* d);
  static void DeleteSong(pqxx::work& tx, const std::string& file_id, Deltas* d);
  static void ChangeVocab(pqxx::work& tx, const std::set<std::string>& words, int delta);
  Status LoadLocked(pqxx::connection& conn, DumpReader& reader, const std::string& path);
  static Status DumpFrom(pqxx::connection& c, const std::function<Status(std::string_view)>& sink);
  void EnsureWriter() {
    if (writer_ == nullptr || !writer_->is_open()) {
      writer_.reset();
      writer_ = Connect(conninfo_, "writer");
    }
  }

  // --- search, inside the caller's read transaction ---
  static std::vector<std::string> FuzzyAlternatives(pqxx::transaction_base& tx, const std::string& word);
  // The matches of cond (up to kSearchTotalCap); *songs = the number of songs.
  static uint64_t Count(pqxx::transaction_base& tx, const CondFn& cond, uint64_t* songs);
  static void FetchBucket(pqxx::transaction_base& tx, const CondFn& cond, std::string after, size_t want,
                          bool probe, std::vector<Song>* out);

  const std::string conninfo_;
  ConnectionPool readers_;
  std::mutex write_mu_;                       // Apply and Load, one at a time
  std::unique_ptr<pqxx::connection> writer_;  // guarded by write_mu_
};

// ---------------------------------------------------------------------------------------------
// Apply
// ---------------------------------------------------------------------------------------------

Status PostgresStore::Apply(LogIndex index, const std::vector<Mutation>& mutations) {
  std::lock_guard lock(write_mu_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool fresh = writer_ == nullptr || !writer_->is_open();
    bool sent = false;
    try {
      EnsureWriter();
      return ApplyLocked(index, mutations, &sent);
    } catch (const pqxx::in_doubt_error&) {
      // The COMMIT was sent but its answer lost. The applied index, read on a new connection,
      // tells whether it took effect; if it did not, applying again is safe.
      writer_.reset();
      auto now = AppliedIndex();
      if (!now.ok()) {
        return Status::Unavailable("postgres apply: commit outcome unknown; " + now.status().ToString());
      }
      if (*now >= index) return Status::Ok();
    } catch (...) {
      Status st = TranslateException("apply");
      if (st.code() != StatusCode::kUnavailable) return st;
      writer_.reset();
      // A connection that died while idle (server restarted): nothing of this entry reached the
      // server, so try once more on a new one. A failure after that is reported: the store holds
      // entries 1..AppliedIndex() exactly, and the caller retries.
      if (fresh || sent) return st;
    }
  }
  return Status::Unavailable("postgres apply: connection lost again");
}

Status PostgresStore::ApplyLocked(LogIndex index, const std::vector<Mutation>& mutations, bool* sent) {
  pqxx::work tx(*writer_);
  // FOR UPDATE: another store object on the same database (there should be none) waits here.
  const uint64_t applied = U64(tx.exec_prepared1("applied_for_update")[0]);
  *sent = true;
  if (index.value() <= applied) return Status::Ok();  // replay of an applied entry
  if (index.value() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("index out of range");
  }
  for (const Mutation& m : mutations) DISPOTIFY_RETURN_IF_ERROR(ValidateMutation(m));
  Deltas d;
  for (const Mutation& m : mutations) ApplyMutation(tx, m, &d);
  tx.exec_prepared0("finish_apply", I64(index.value()), d.songs, d.bytes, d.healthy, d.other);
  tx.commit();
  return Status::Ok();
}

void PostgresStore::ApplyMutation(pqxx::work& tx, const Mutation& m, Deltas* d) {
  switch (m.kind) {
    case Mutation::Kind::kPutSong: PutSong(tx, m.song, d); return;
    case Mutation::Kind::kDeleteSong: DeleteSong(tx, m.key, d); return;
    case Mutation::Kind::kPutReplica: {
      const Replica& r = m.replica;
      const pqxx::result old = tx.exec_prepared("put_replica", Bytes(r.file_id), I64(r.node.value()),
                                                static_cast<int>(r.state), r.updated_at_ms);
      if (!old.empty()) d->Replica(old[0][0].as<int>(), -1);
      d->Replica(static_cast<int>(r.state), +1);
      return;
    }
    case Mutation::Kind::kDeleteReplica: {
      const pqxx::result old =
          tx.exec_prepared("delete_replica", Bytes(m.replica.file_id), I64(m.replica.node.value()));
      if (!old.empty()) d->Replica(old[0][0].as<int>(), -1);
      return;
    }
    case Mutation::Kind::kPutLock: {
      const Lock& l = m.lock;
      tx.exec_prepared0("put_lock", Bytes(l.name), Bytes(l.owner), l.expires_at_ms, I64(l.token));
      return;
    }
    case Mutation::Kind::kDeleteLock: tx.exec_prepared0("delete_lock", Bytes(m.key)); return;
    case Mutation::Kind::kPutSetting: tx.exec_prepared0("put_setting", Bytes(m.key), Bytes(m.value)); return;
    case Mutation::Kind::kDeleteSetting: tx.exec_prepared0("delete_setting", Bytes(m.key)); return;
  }
}

void PostgresStore::PutSong(pqxx::work& tx, const Song& song, Deltas* d) {
  Song s = song;
  CompleteSong(&s);
  const Folded folded = Fold(s);
  const std::string& text = folded.text;
  const pqxx::result old = tx.exec_prepared("song_for_write", Bytes(s.file_id));
  if (old.empty()) {
    ++d->songs;
    ChangeVocab(tx, VocabWords(text), +1);
  } else {
    d->bytes -= old[0][0].as<int64_t>();
    const auto before = OptionalText(old[0][1]);
    if (before != text) {
      const std::set<std::string> a = VocabWords(before), b = VocabWords(text);
      std::set<std::string> gone, added;
      std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(gone, gone.end()));
      std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::inserter(added, added.end()));
      ChangeVocab(tx, gone, -1);
      ChangeVocab(tx, added, +1);
    }
  }
  d->bytes += I64(s.size_bytes);
  tx.exec_prepared0("put_song", Bytes(s.file_id), Bytes(s.title), Bytes(s.artist), Bytes(s.album),
                    Bytes(s.file_name), Bytes(s.content_type), static_cast<int64_t>(s.track),
                    static_cast<int64_t>(s.year), I64(s.duration_ms), I64(s.size_bytes), Bytes(s.sha256),
                    s.created_at_ms, text, folded.fields, Bytes(s.album_artist), static_cast<int64_t>(s.disc),
                    Bytes(s.genre), s.compilation, Bytes(s.album_id), Bytes(s.cover));
  if (!old.empty()) {
    const std::string old_album = Bytes(old[0][2]);
    if (old_album != s.album_id) pg::RefreshAlbum(tx, old_album);
  }
  pg::RefreshAlbum(tx, s.album_id);
}

void PostgresStore::DeleteSong(pqxx::work& tx, const std::string& file_id, Deltas* d) {
  const pqxx::result old = tx.exec_prepared("song_for_write", Bytes(file_id));
  if (old.empty()) return;  // as the embedded store: no song, nothing to do (its replicas stay)
  --d->songs;
  d->bytes -= old[0][0].as<int64_t>();
  ChangeVocab(tx, VocabWords(OptionalText(old[0][1])), -1);
  const std::string album = Bytes(old[0][2]);
  const pqxx::row gone = tx.exec_prepared1("delete_song", Bytes(file_id));
  d->healthy -= gone[0].as<int64_t>();
  d->other -= gone[1].as<int64_t>();
  pg::RefreshAlbum(tx, album);
}

void PostgresStore::ChangeVocab(pqxx::work& tx, const std::set<std::string>& words, int delta) {
  if (words.empty()) return;
  const std::string joined = JoinWords(words);
  if (delta > 0) {
    tx.exec_prepared0("vocab_inc", joined);
  } else {
    tx.exec_prepared0("vocab_dec", joined);
    tx.exec_prepared0("vocab_gc", joined);
  }
}

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------

uint64_t PostgresStore::Count(pqxx::transaction_base& tx, const CondFn& cond, uint64_t* songs) {
  Params p;
  const std::string sql =
      Cat({"SELECT (SELECT count(*) FROM (SELECT 1 FROM song_search WHERE ", cond(&p), " LIMIT ",
           std::to_string(kSearchTotalCap), ") t), (SELECT value FROM meta WHERE key = 'songs')"});
  const pqxx::row r = tx.exec_params1(sql, pqxx::prepare::make_dynamic_params(p.values()));
  *songs = U64(r[1]);
  return r[0].as<uint64_t>();
}

// Sparse conditions: the trigram index finds the matches, which are sorted (index and sequential
// scans are off for that query, or the planner may walk the primary key in order and filter,
// which reads the whole table when the matches are fewer than it estimated). Dense ones: first a window of
// kProbeRows songs in file_id order, filtered — a page of a common word is found there without
// collecting all its matches — then, if the window did not fill the page, the index after it.
void PostgresStore::FetchBucket(pqxx::transaction_base& tx, const CondFn& cond, std::string after,
                                size_t want, bool probe, std::vector<Song>* out) {
  // The matching file_ids come from song_search; the songs themselves are joined at the end.
  const std::string select = Cat({"SELECT ", kSongColumns, " FROM songs JOIN ("});
  const std::string joined = ") m USING (file_id) ORDER BY file_id";
  if (probe) {
    Params p;
    const std::string from = p.Add(Hex(after));
    const std::string sql =
        Cat({select, "SELECT file_id FROM (SELECT file_id, search_text, fields FROM song_search ",
             "WHERE file_id > decode(", from, ", 'hex') ORDER BY file_id LIMIT ", std::to_string(kProbeRows),
             ") w WHERE ", cond(&p), " ORDER BY file_id LIMIT ", std::to_string(want), joined});
    for (const auto& row : tx.exec_params(sql, pqxx::prepare::make_dynamic_params(p.values()))) {
      out->push_back(SongFromRow(row));
      --want;
    }
    if (want == 0) return;
    const pqxx::result last = tx.exec_params(
        "SELECT file_id FROM song_search WHERE file_id > $1 ORDER BY file_id OFFSET $2 LIMIT 1", Bytes(after),
        static_cast<int64_t>(kProbeRows - 1));
    if (last.empty()) return;  // the window reached the end of the table
    after = Bytes(last[0][0]);
  }
  Params p;
  const std::string from = p.Add(Hex(after));
  const std::string sql =
      Cat({select, "SELECT file_id FROM song_search WHERE ", cond(&p), " AND file_id > decode(", from,
           ", 'hex') ORDER BY file_id LIMIT ", std::to_string(want), joined});
  // Only the trigram index: the planner cannot know how the LIKE patterns of a bucket correlate,
  // and a walk of the primary key or a sequential scan reads the whole table when it guesses
  // wrong.
  tx.exec("SET LOCAL enable_indexscan = off; SET LOCAL enable_seqscan = off");
  for (const auto& row : tx.exec_params(sql, pqxx::prepare::make_dynamic_params(p.values()))) {
    out->push_back(SongFromRow(row));
  }
  tx.exec("SET LOCAL enable_indexscan = on; SET LOCAL enable_seqscan = on");
}

std::vector<std::string> PostgresStore::FuzzyAlternatives(pqxx::transaction_base& tx,
                                                          const std::string& word) {
  const std::u32string w = search::DecodeUtf8(word);
  const auto n = static_cast<int64_t>(w.size());
  if (n < 4) return {};
  if (!tx.exec_prepared("vocab_has", word).empty()) return {};  // a real word, not a typo
  const int bound = n >= 7 ? 2 : 1;
  std::vector<std::tuple<int, int64_t, std::string>> found;  // (distance, -songs, word)
  for (const auto& row : tx.exec_prepared("vocab_near", static_cast<int64_t>(w.front()), n - bound, n + bound,
                                          static_cast<int64_t>(w.back()))) {
    auto candidate = row[0].as<std::string>();
    const int dist = search::BoundedEditDistance(w, search::DecodeUtf8(candidate), bound);
    if (dist == 0 || dist > bound) continue;
    found.emplace_back(dist, -row[1].as<int64_t>(), std::move(candidate));
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;  // the closest only, most songs first
  for (const auto& [dist, neg_songs, candidate] : found) {
    if (out.size() == kMaxFuzzyAlternatives || dist > std::get<0>(found.front())) break;
    out.push_back(candidate);
  }
  return out;
}

Result<SearchPage> PostgresStore::Search(const SearchRequest& request) {
  if (request.limit < 1 || request.limit > kMaxSearchLimit) {
    return Status::InvalidArgument("limit must be 1..100");
  }
  if (request.offset > kSearchMaxOffset) {
    return Status::InvalidArgument("offset above 1000: use the cursor for deep pages");
  }
  if (request.query.size() > kSearchMaxQueryBytes) {
    return Status::InvalidArgument("query longer than 256 bytes");
  }
  if (!search::IsValidUtf8(request.query)) return Status::InvalidArgument("query is not valid UTF-8");
  if (request.query.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::InvalidArgument("empty query");
  }
  int cursor_bucket = 0;
  std::string cursor_file_id;
  if (!request.cursor.empty()) {
    if (request.offset != 0) return Status::InvalidArgument("offset and cursor are exclusive");
    if (!DecodeCursor(request.cursor, &cursor_bucket, &cursor_file_id)) {
      return Status::InvalidArgument("malformed cursor");
    }
  }
  const std::vector<std::string> words = search::FoldWords(request.query);
  if (words.size() > kSearchMaxWords) return Status::InvalidArgument("query has more than 16 words");
  if (words.empty()) return SearchPage{};  // nothing searchable, e.g. punctuation only

  std::string exact = "\x02";
  for (const auto& w : words) exact.append(" ").append(w);
  exact += " \x03";

  const bool all_short =
      std::all_of(words.begin(), words.end(), [](const std::string& w) { return CodePointCount(w) < 3; });

  return Read<SearchPage>("search", [&](pqxx::connection& c) -> Result<SearchPage> {
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c);
    SearchPage page;

    // The trigram index is asked about the rarest two words only (songs per vocabulary word;
    // words of 1-2 characters last), in the bucket's form for them; the rest of a condition
    // filters what the index yields. Common trigrams cost the index little next to rechecking
    // the rows of a common word.
    std::vector<bool> indexed(words.size(), words.size() <= 2);
    if (words.size() > 2) {
      std::set<std::string> distinct(words.begin(), words.end());
      std::set<std::string> vocab_words;
      for (const auto& w : distinct) {
        if (CodePointCount(w) >= 3) vocab_words.insert(w);
      }
      std::map<std::string, int64_t> n;
      for (const auto& row : tx.exec_prepared("vocab_counts", JoinWords(vocab_words))) {
        n[row[0].as<std::string>()] = row[1].as<int64_t>();
      }
      std::vector<std::pair<int64_t, size_t>> order;  // (songs, word index); absent words: 0
      for (size_t i = 0; i < words.size(); ++i) {
        const int64_t songs_with = CodePointCount(words[i]) < 3 ? std::numeric_limits<int64_t>::max()
                                   : n.count(words[i]) > 0      ? n[words[i]]
                                                                : 0;
        order.emplace_back(songs_with, i);
      }
      std::sort(order.begin(), order.end());
      indexed[order[0].second] = indexed[order[1].second] = true;
    }
    std::vector<bool> others(words.size());
    for (size_t i = 0; i < words.size(); ++i) others[i] = !indexed[i];
    std::vector<std::vector<std::string>> alternatives(words.size());
    // The words of a condition in `form`: the indexed ones for the index, then the others.
    auto split = [&](Params* p, auto form, const std::vector<std::vector<std::string>>* alts) {
      std::string index_part =
          p->Indexed([&](Params* q) { return AllWords(q, words, form, alts, &indexed); });
      return Cat({index_part, " AND ", AllWords(p, words, form, alts, &others)});
    };

    uint64_t songs = 0;
    page.total = Count(
        tx, [&](Params* p) { return split(p, SubstringCond, nullptr); }, &songs);
    bool fuzzy = false;
    if (page.total < request.limit) {
      for (size_t i = 0; i < words.size(); ++i) {
        alternatives[i] = FuzzyAlternatives(tx, words[i]);
        fuzzy = fuzzy || !alternatives[i].empty();
      }
      if (fuzzy) {
        page.total = Count(
            tx, [&](Params* p) { return split(p, SubstringCond, &alternatives); }, &songs);
      }
    }

    // The buckets' conditions; each is read in file_id order (see FetchBucket). Bucket 0 is an
    // exact lookup in the index of whole folded fields.
    auto exact_match = [&](Params* p) { return Cat({"fields @> ARRAY[", p->Add(exact), "]::text[]"}); };
    std::vector<CondFn> buckets(4);
    buckets[0] = exact_match;
    buckets[1] = [&](Params* p) { return Cat({split(p, PrefixCond, nullptr), " AND NOT ", exact_match(p)}); };
    if (!all_short) {  // otherwise the substring condition is the prefix condition
      buckets[2] = [&](Params* p) {
        return Cat({split(p, SubstringCond, nullptr), " AND NOT ", AllWords(p, words, PrefixCond)});
      };
    }
    if (fuzzy) {
      buckets[3] = [&](Params* p) {
        return Cat({split(p, SubstringCond, &alternatives), " AND NOT ", AllWords(p, words, SubstringCond)});
      };
    }
    const size_t need = static_cast<size_t>(request.offset) + request.limit + 1;
    // Dense when a window of kProbeRows songs in file_id order likely holds the page already (a
    // count that reached the cap says nothing more precise: try the window, it is cheap).
    const bool dense = page.total >= kSearchTotalCap || page.total * kProbeRows >= songs * need;
    std::vector<std::pair<int, Song>> hits;
    for (int b = cursor_bucket; b < 4 && hits.size() < need; ++b) {
      if (!buckets[static_cast<size_t>(b)]) continue;
      std::vector<Song> got;
      FetchBucket(tx, buckets[static_cast<size_t>(b)], b == cursor_bucket ? cursor_file_id : "",
                  need - hits.size(), dense && b > 0, &got);
      for (auto& s : got) hits.emplace_back(b, std::move(s));
    }
    const size_t end = std::min(hits.size(), static_cast<size_t>(request.offset) + request.limit);
    for (size_t i = request.offset; i < end; ++i) page.items.push_back(std::move(hits[i].second));
    if (hits.size() > end && !page.items.empty()) {
      page.next_cursor = EncodeCursor(hits[end - 1].first, page.items.back().file_id);
    }
    return page;
  });
}

// ---------------------------------------------------------------------------------------------
// Dump and Load
// ---------------------------------------------------------------------------------------------

Status PostgresStore::Dump(const std::function<Status(std::string_view)>& sink) {
  return Read<bool>("dump",
                    [&](pqxx::connection& c) -> Result<bool> {
                      DISPOTIFY_RETURN_IF_ERROR(DumpFrom(c, sink));
                      return true;
                    })
      .status();
}

Status PostgresStore::DumpFrom(pqxx::connection& c, const std::function<Status(std::string_view)>& sink) {
  // One snapshot: the state as of the applied index read first.
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c);
  DumpWriter writer(sink);
  DISPOTIFY_RETURN_IF_ERROR(writer.Begin(LogIndex(U64(tx.exec_prepared1("applied")[0]))));
  const auto batch = static_cast<int64_t>(kBatch);
  std::string after;
  while (true) {
    const pqxx::result r = tx.exec_prepared("dump_songs", Bytes(after), batch);
    for (const auto& row : r) DISPOTIFY_RETURN_IF_ERROR(writer.Add(SongFromRow(row)));
    if (r.size() < kBatch) break;
    after = Bytes(r[r.size() - 1][0]);
  }
  pqxx::result r = tx.exec_prepared("dump_replicas_first", batch);
  while (true) {
    for (const auto& row : r) DISPOTIFY_RETURN_IF_ERROR(writer.Add(ReplicaFromRow(row)));
    if (r.size() < kBatch) break;
    const pqxx::row last = r[r.size() - 1];
    r = tx.exec_prepared("dump_replicas", binarystring(last[0]), last[1].as<int64_t>(), batch);
  }
  for (const auto& row : tx.exec("SELECT name, owner, expires_at_ms, token FROM locks ORDER BY name")) {
    DISPOTIFY_RETURN_IF_ERROR(writer.Add(LockFromRow(row)));
  }
  for (const auto& row : tx.exec("SELECT key, value FROM settings ORDER BY key")) {
    DISPOTIFY_RETURN_IF_ERROR(writer.AddSetting(Bytes(row[0]), Bytes(row[1])));
  }
  return writer.Finish();
}

Status PostgresStore::Load(const std::string& path) {
  auto reader = DumpReader::Open(path);
  if (!reader.ok()) return reader.status();
  if ((*reader)->applied_index().value() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::Corruption("dump " + path + ": applied index out of range");
  }
  std::lock_guard lock(write_mu_);
  try {
    EnsureWriter();
    DISPOTIFY_RETURN_IF_ERROR(LoadLocked(*writer_, **reader, path));
  } catch (const pqxx::unique_violation& e) {
    return Status::Corruption("dump " + path + " holds a record twice: " + e.what());
  } catch (...) {
    Status st = TranslateException("load");
    if (st.code() == StatusCode::kUnavailable) writer_.reset();
    return st;
  }
  DLOG_INFO << "postgres catalog: loaded " << path << " at applied index " << (*reader)->applied_index();
  // Fresh planner statistics after replacing everything; a failure only costs speed.
  try {
    pqxx::nontransaction tx(*writer_);
    tx.exec("ANALYZE songs; ANALYZE song_search; ANALYZE replicas; ANALYZE vocab; ANALYZE albums");
  } catch (...) {
    DLOG_WARN << TranslateException("analyze after load").ToString();
  }
  return Status::Ok();
}

// Replaces everything in one transaction: readers see the old state until the commit, and a dump
// found corrupt at its end (the CRC is checked last) leaves the store as it was. The search
// table is filled once the songs are in, and its trigram index built once at the end.
Status PostgresStore::LoadLocked(pqxx::connection& conn, DumpReader& reader, const std::string& path) {
  pqxx::work tx(conn);
  tx.exec(
      "SET LOCAL maintenance_work_mem = '256MB';"
      "TRUNCATE songs, song_search, replicas, locks, settings, vocab, albums;"
      "DROP INDEX IF EXISTS song_search_trgm; DROP INDEX IF EXISTS song_search_fields;");

  static const std::vector<std::string> kSongCols = {
      "file_id",      "title", "artist",      "album",       "file_name", "content_type",
      "track",        "year",  "duration_ms", "size_bytes",  "sha256",    "created_at_ms",
      "album_artist", "disc",  "genre",       "compilation", "album_id",  "cover"};
  static const std::vector<std::string> kReplicaCols = {"file_id", "node", "state", "updated_at_ms"};
  static const std::vector<std::string> kLockCols = {"name", "owner", "expires_at_ms", "token"};
  static const std::vector<std::string> kSettingCols = {"key", "value"};
  static const char* const kTables[] = {"songs", "replicas", "locks", "settings"};
  const std::vector<std::string>* const columns[] = {&kSongCols, &kReplicaCols, &kLockCols, &kSettingCols};

  // One COPY at a time per connection: a change of record kind closes the current one.
  std::unique_ptr<pqxx::stream_to> stream;
  size_t current = 0;
  auto stream_for = [&](size_t kind) -> pqxx::stream_to& {
    if (stream == nullptr || current != kind) {
      if (stream != nullptr) stream->complete();
      stream.reset();
      stream = std::make_unique<pqxx::stream_to>(tx, kTables[kind], *columns[kind]);
      current = kind;
    }
    return *stream;
  };
  Status failed;
  while (failed.ok()) {
    auto next = reader.Next();
    if (!next.ok()) {
      failed = next.status();
      break;
    }
    if (!next->has_value()) break;
    const DumpRecord& rec = **next;
    Mutation m;  // validated as the corresponding mutation would be
    if (const auto* s = std::get_if<Song>(&rec)) {
      m.kind = Mutation::Kind::kPutSong;
      m.song = *s;
    } else if (const auto* r = std::get_if<Replica>(&rec)) {
      m.kind = Mutation::Kind::kPutReplica;
      m.replica = *r;
    } else if (const auto* l = std::get_if<Lock>(&rec)) {
      m.kind = Mutation::Kind::kPutLock;
      m.lock = *l;
    } else {
      const auto& kv = std::get<DumpSetting>(rec);
      m.kind = Mutation::Kind::kPutSetting;
      m.key = kv.key;
      m.value = kv.value;
    }
    if (Status valid = ValidateMutation(m); !valid.ok()) {
      failed = Status::Corruption("dump " + path + " holds an invalid record: " + valid.message());
      break;
    }
    switch (m.kind) {
      case Mutation::Kind::kPutSong: {
        Song s = m.song;
        CompleteSong(&s);
        stream_for(0) << std::make_tuple(
            CopyBytea(s.file_id), CopyBytea(s.title), CopyBytea(s.artist), CopyBytea(s.album),
            CopyBytea(s.file_name), CopyBytea(s.content_type), static_cast<int64_t>(s.track),
            static_cast<int64_t>(s.year), I64(s.duration_ms), I64(s.size_bytes), CopyBytea(s.sha256),
            s.created_at_ms, CopyBytea(s.album_artist), static_cast<int64_t>(s.disc), CopyBytea(s.genre),
            std::string(s.compilation ? "t" : "f"), CopyBytea(s.album_id), CopyBytea(s.cover));
        break;
      }
      case Mutation::Kind::kPutReplica: {
        const Replica& r = m.replica;
        stream_for(1) << std::make_tuple(CopyBytea(r.file_id), I64(r.node.value()), static_cast<int>(r.state),
                                         r.updated_at_ms);
        break;
      }
      case Mutation::Kind::kPutLock: {
        const Lock& l = m.lock;
        stream_for(2) << std::make_tuple(CopyBytea(l.name), CopyBytea(l.owner), l.expires_at_ms,
                                         I64(l.token));
        break;
      }
      default: stream_for(3) << std::make_tuple(CopyBytea(m.key), CopyBytea(m.value)); break;
    }
  }
  if (stream != nullptr) stream->complete();  // also after a failure: the protocol needs it
  stream.reset();
  if (!failed.ok()) return failed;  // the transaction rolls back

  BuildSearch(tx);
  pg::RebuildAlbums(tx);
  tx.exec(kRecount);
  tx.exec(kCreateSearchIndex);
  tx.exec(kCreateFieldsIndex);
  tx.exec_prepared0("finish_apply", I64(reader.applied_index().value()), 0, 0, 0, 0);
  tx.commit();
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<MetadataStore>> OpenPostgresStore(const std::string& conninfo,
                                                         const PostgresStoreOptions& options) {
  std::unique_ptr<pqxx::connection> writer;
  try {
    writer = std::make_unique<pqxx::connection>(conninfo);
  } catch (...) {
    return TranslateException("connect");
  }
  DISPOTIFY_RETURN_IF_ERROR(Migrate(*writer));
  try {
    writer.reset();  // the statements are prepared against the migrated schema
    writer = Connect(conninfo, "writer");
  } catch (...) {
    return TranslateException("connect");
  }
  return std::unique_ptr<MetadataStore>(new PostgresStore(conninfo, options, std::move(writer)));
}

Result<std::unique_ptr<MetadataStore>> OpenPostgresStore(const std::string& conninfo) {
  return OpenPostgresStore(conninfo, PostgresStoreOptions{});
}

}  // namespace dispotify::catalog
