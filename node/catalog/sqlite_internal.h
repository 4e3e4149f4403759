#pragma once
// The embedded store's SQLite plumbing (a connection with its statement cache, a statement in
// use, error mapping), shared by the files of the store: sqlite_store.cc (songs, search, dumps)
// and sqlite_library.cc (albums and artists). Internal to node/catalog.

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"
#include "node/catalog/sqlite_store.h"

namespace dispotify::catalog::sqlite {

inline Status SqlError(int rc, sqlite3* db, std::string_view what) {
  std::string msg = std::string(what) + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xFF) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Status::Corruption(msg);
    case SQLITE_FULL: return Status::NoSpace(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Status::Unavailable(msg);
    default: return Status::IoError(msg);
  }
}

// One connection and its cache of prepared statements (keyed by the address of the SQL text,
// which is always one of the named constants below). Used by one thread at a time.
class Conn {
 public:
  static Result<std::unique_ptr<Conn>> Open(const std::string& path, const SqliteStoreOptions& options,
                                            bool create) {
    sqlite3* db = nullptr;
    const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    std::unique_ptr<Conn> conn(new Conn(db));
    if (rc != SQLITE_OK) return SqlError(rc, db, "open " + path);
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, options.busy_timeout_ms);
    const std::string pragmas =
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"
        "PRAGMA cache_size=-" +
        std::to_string(options.cache_kib) + "; PRAGMA mmap_size=" + std::to_string(options.mmap_bytes) + ";";
    DISPOTIFY_RETURN_IF_ERROR(conn->Exec(pragmas.c_str()));
    return conn;
  }

  ~Conn() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  sqlite3* db() const { return db_; }

  Status Exec(const char* sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) return SqlError(rc, db_, "sqlite");
    return Status::Ok();
  }

  Result<sqlite3_stmt*> Prepare(const char* sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqlError(rc, db_, "prepare");
    cache_.emplace(sql, stmt);
    return stmt;
  }

 private:
  explicit Conn(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

// A prepared statement in use: bound, stepped, and reset when it goes out of scope.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data() != nullptr ? v.data() : "", static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // True with a row, false when done.
  Result<bool> Step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqlError(rc, sqlite3_db_handle(s_), "sqlite");
  }
  // Steps a statement that returns no rows.
  Status Run() {
    Result<bool> r = Step();
    return r.ok() ? Status::Ok() : r.status();
  }
  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  // Valid until the statement steps again or is reset.
  std::string_view View(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    const int n = sqlite3_column_bytes(s_, col);
    return p == nullptr ? std::string_view() : std::string_view(p, static_cast<size_t>(n));
  }
  std::string Text(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    const int n = sqlite3_column_bytes(s_, col);
    return p == nullptr ? std::string() : std::string(p, static_cast<size_t>(n));
  }

 private:
  sqlite3_stmt* s_;
};

#define DISPOTIFY_ASSIGN_STMT(var, conn, sql)               \
  auto var##_prepared = (conn).Prepare(sql);                \
  if (!var##_prepared.ok()) return var##_prepared.status(); \
  Stmt var(*var##_prepared)

}  // namespace dispotify::catalog::sqlite

namespace dispotify::catalog::sqlite {

// A song's columns, in the order ReadSongRow reads them (schema 4).
#define DISPOTIFY_SQLITE_SONG_COLUMNS                                                                      \
  "file_id, title, artist, album, file_name, content_type, track, year, duration_ms, size_bytes, sha256, " \
  "created_at_ms, album_artist, disc, genre, compilation, album_id, cover"

inline Song ReadSongRow(const Stmt& st) {
  Song s;
  s.file_id = st.Text(0);
  s.title = st.Text(1);
  s.artist = st.Text(2);
  s.album = st.Text(3);
  s.file_name = st.Text(4);
  s.content_type = st.Text(5);
  s.track = static_cast<uint32_t>(st.Int(6));
  s.year = static_cast<uint32_t>(st.Int(7));
  s.duration_ms = static_cast<uint64_t>(st.Int(8));
  s.size_bytes = static_cast<uint64_t>(st.Int(9));
  s.sha256 = st.Text(10);
  s.created_at_ms = st.Int(11);
  s.album_artist = st.Text(12);
  s.disc = static_cast<uint32_t>(st.Int(13));
  s.genre = st.Text(14);
  s.compilation = st.Int(15) != 0;
  s.album_id = st.Text(16);
  s.cover = st.Text(17);
  return s;
}

}  // namespace dispotify::catalog::sqlite
