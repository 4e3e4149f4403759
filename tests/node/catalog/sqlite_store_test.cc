#include "node/catalog/sqlite_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tests/mocks/temp_dir.h"
#include "tests/node/catalog/metadata_store_conformance.h"

namespace dispotify::catalog {
namespace {

std::string DbPath(const std::string& scratch_dir) {
  return scratch_dir + "/catalog.db";
}

MetadataStoreTarget SqliteTarget() {
  auto open = [](const std::string& dir) { return OpenSqliteStore(DbPath(dir)); };
  return MetadataStoreTarget{"sqlite", open, open, {}};
}

INSTANTIATE_TEST_SUITE_P(Sqlite, MetadataStoreConformance, ::testing::Values(SqliteTarget()),
                         MetadataStoreTargetName);

Song MakeSong(const std::string& file_id, const std::string& title) {
  Song s;
  s.file_id = file_id;
  s.title = title;
  s.artist = "Artist";
  s.file_name = "x.mp3";
  s.size_bytes = 10;
  return s;
}

Mutation Put(Song s) {
  Mutation m;
  m.kind = Mutation::Kind::kPutSong;
  m.song = std::move(s);
  return m;
}

Mutation Delete(const std::string& file_id) {
  Mutation m;
  m.kind = Mutation::Kind::kDeleteSong;
  m.key = file_id;
  return m;
}

Mutation Setting(const std::string& key, const std::string& value) {
  Mutation m;
  m.kind = Mutation::Kind::kPutSetting;
  m.key = key;
  m.value = value;
  return m;
}

std::vector<std::string> SearchIds(MetadataStore& store, const std::string& query, uint32_t limit = 100) {
  SearchRequest req;
  req.query = query;
  req.limit = limit;
  std::vector<std::string> ids;
  while (true) {
    auto page = store.Search(req);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    for (const auto& s : page->items) ids.push_back(s.file_id);
    if (page->next_cursor.empty()) break;
    req.cursor = page->next_cursor;
  }
  return ids;
}

// --- Folding --------------------------------------------------------------------------------------

TEST(SearchFoldingTest, FoldsCaseAndLatinDiacritics) {
  using search::FoldWords;
  EXPECT_EQ(FoldWords("Beyoncé"), (std::vector<std::string>{"beyonce"}));
  EXPECT_EQ(FoldWords("MOTÖRHEAD"), (std::vector<std::string>{"motorhead"}));
  EXPECT_EQ(FoldWords("Straße Ærø Œuvre Łódź"),
            (std::vector<std::string>{"strasse", "aero", "oeuvre", "lodz"}));
  EXPECT_EQ(FoldWords("Sigur Rós – Ágætis byrjun"),
            (std::vector<std::string>{"sigur", "ros", "agaetis", "byrjun"}));
  EXPECT_EQ(FoldWords("e\xCC\x81t\xC3\xA9"), (std::vector<std::string>{"ete"}));  // combining accent
  EXPECT_EQ(FoldWords("Don't Stop Me Now"), (std::vector<std::string>{"dont", "stop", "me", "now"}));
  EXPECT_EQ(FoldWords("AC/DC, R.E.M."), (std::vector<std::string>{"ac", "dc", "r", "e", "m"}));
  EXPECT_EQ(FoldWords("ＡＢＣ１２３"), (std::vector<std::string>{"abc123"}));
  EXPECT_TRUE(FoldWords("!!! ... \x02\x03 ---").empty());
}

TEST(SearchFoldingTest, KeepsOtherScripts) {
  using search::FoldWords;
  EXPECT_EQ(FoldWords("Кино ГРУППА"), (std::vector<std::string>{"кино", "группа"}));
  EXPECT_EQ(FoldWords("東京事変「群青日和」"), (std::vector<std::string>{"東京事変", "群青日和"}));
  EXPECT_EQ(FoldWords("ΑΒΓ"), (std::vector<std::string>{"αβγ"}));
  EXPECT_EQ(FoldWords("방탄소년단"), (std::vector<std::string>{"방탄소년단"}));
  EXPECT_EQ(FoldWords("\xFF\xFEok"), (std::vector<std::string>{"ok"}));  // invalid bytes separate
}

TEST(SearchFoldingTest, FieldFormHasMarkers) {
  EXPECT_EQ(search::FoldField("The The"), "\x02 the the \x03");
  EXPECT_EQ(search::FoldField("  "), "");
}

TEST(SearchFoldingTest, BoundedEditDistance) {
  auto d = [](const char* a, const char* b, int bound) {
    return search::BoundedEditDistance(search::DecodeUtf8(a), search::DecodeUtf8(b), bound);
  };
  EXPECT_EQ(d("beatles", "beatles", 2), 0);
  EXPECT_EQ(d("beatels", "beatles", 2), 1);  // transposition
  EXPECT_EQ(d("metalica", "metallica", 2), 1);
  EXPECT_EQ(d("kitten", "sitting", 3), 3);
  EXPECT_EQ(d("kitten", "sitting", 1), 2);  // bound + 1
  EXPECT_EQ(d("a", "abcdef", 2), 3);
  EXPECT_EQ(d("кино", "кена", 2), 2);
}

// --- Order keys -----------------------------------------------------------------------------------

// Inserting always between the same two neighbours exhausts the gap between their order keys
// and forces renumbering; search and listing must still be in file_id order.
TEST(SqliteStoreTest, RenumberingKeepsFileIdOrder) {
  mocks::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir.path()));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  uint64_t index = 0;
  std::vector<std::string> ids = {"a", "b"};
  ASSERT_TRUE(
      (*store)
          ->Apply(LogIndex(++index), {Put(MakeSong("a", "Same Title")), Put(MakeSong("b", "Same Title"))})
          .ok());
  std::string id = "a";
  for (int i = 0; i < 120; ++i) {  // "a01" > "a001" > "a0001" > ... > "a"
    id = "a" + std::string(static_cast<size_t>(i + 1), '0') + "1";
    ids.push_back(id);
    ASSERT_TRUE((*store)->Apply(LogIndex(++index), {Put(MakeSong(id, "Same Title"))}).ok());
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {  // and random ones, with deletes
    std::string r = "r" + std::to_string(rng() % 1000);
    if (std::find(ids.begin(), ids.end(), r) == ids.end()) {
      ids.push_back(r);
      ASSERT_TRUE((*store)->Apply(LogIndex(++index), {Put(MakeSong(r, "Same Title"))}).ok());
    } else if (rng() % 3 == 0) {
      ids.erase(std::find(ids.begin(), ids.end(), r));
      ASSERT_TRUE((*store)->Apply(LogIndex(++index), {Delete(r)}).ok());
    }
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(SearchIds(**store, "same title"), ids);  // exact bucket (B-tree)
  EXPECT_EQ(SearchIds(**store, "titl", 7), ids);     // prefix bucket (FTS rowid order)
  EXPECT_EQ(SearchIds(**store, "itle"), ids);        // substring bucket
  ListRequest list;
  list.limit = 1000;
  auto all = (*store)->ListSongs(list);
  ASSERT_TRUE(all.ok());
  std::vector<std::string> listed;
  for (const auto& s : all->items) listed.push_back(s.file_id);
  EXPECT_EQ(listed, ids);
}

// --- Crash safety ---------------------------------------------------------------------------------

// Entry i puts song "k<i>", deletes "k<i-3>" and sets "last" = i: the state after entries 1..k is
// a known function of k.
std::vector<Mutation> Entry(uint64_t i) {
  std::vector<Mutation> muts = {Put(MakeSong("k" + std::to_string(i), "Crash Song " + std::to_string(i))),
                                Setting("last", std::to_string(i))};
  if (i > 3) muts.push_back(Delete("k" + std::to_string(i - 3)));
  return muts;
}

TEST(SqliteStoreTest, SurvivesKillNineAtAnyMoment) {
  mocks::TempDir dir;
  const std::string path = DbPath(dir.path());
  std::mt19937 rng(static_cast<uint32_t>(::getpid()));
  uint64_t previous = 0;
  for (int round = 0; round < 5; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto store = OpenSqliteStore(path);
      if (!store.ok()) ::_exit(2);
      uint64_t i = (*store)->AppliedIndex()->value();
      while (true) {
        ++i;
        if (!(*store)->Apply(LogIndex(i), Entry(i)).ok()) ::_exit(3);
      }
    }
    ::usleep(50000 + static_cast<useconds_t>(rng() % 250000));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);

    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    const uint64_t k = (*store)->AppliedIndex()->value();
    std::printf("round %d: killed at applied index %llu\n", round, static_cast<unsigned long long>(k));
    ASSERT_GT(k, previous) << "no progress: the child applied nothing";
    previous = k;
    EXPECT_EQ((*store)->GetSetting("last")->value_or(""), std::to_string(k));
    EXPECT_TRUE((*(*store)->GetSong("k" + std::to_string(k))).has_value());
    EXPECT_FALSE((*(*store)->GetSong("k" + std::to_string(k + 1))).has_value());
    if (k > 3) {
      EXPECT_FALSE((*(*store)->GetSong("k" + std::to_string(k - 3))).has_value());
    }
    EXPECT_EQ((*store)->Stats()->songs, std::min<uint64_t>(k, 3));
    const auto found = SearchIds(**store, "crash song");
    EXPECT_EQ(found.size(), std::min<uint64_t>(k, 3));
    // Replaying the last entry changes nothing; the next one applies.
    ASSERT_TRUE((*store)->Apply(LogIndex(k), Entry(k + 100)).ok());
    EXPECT_EQ((*store)->GetSetting("last")->value_or(""), std::to_string(k));
  }
}

// --- Corruption -----------------------------------------------------------------------------------

TEST(SqliteStoreTest, GarbageFileIsCorruption) {
  mocks::TempDir dir;
  {
    std::ofstream out(DbPath(dir.path()), std::ios::binary);
    out << std::string(8192, 'x');
  }
  auto store = OpenSqliteStore(DbPath(dir.path()));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption) << store.status().ToString();
}

TEST(SqliteStoreTest, DamagedPagesAreReportedAsCorruption) {
  mocks::TempDir dir;
  const std::string path = DbPath(dir.path());
  {
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok());
    std::vector<Mutation> muts;
    for (int i = 0; i < 2000; ++i) {
      muts.push_back(Put(MakeSong("d" + std::to_string(i), "Damaged Song Number " + std::to_string(i))));
    }
    ASSERT_TRUE((*store)->Apply(LogIndex(1), muts).ok());
  }  // closing the last connection checkpoints the WAL into the database file
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 64u * 1024);
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(8192));
    f << std::string(static_cast<size_t>(size / 2), '\x55');
  }
  auto store = OpenSqliteStore(path);
  if (!store.ok()) {
    EXPECT_EQ(store.status().code(), StatusCode::kCorruption) << store.status().ToString();
    return;
  }
  // Opening may succeed (the first pages are intact): reading the damaged pages must then fail
  // with a clear status, not crash.
  Status st = (*store)->Dump([](std::string_view) { return Status::Ok(); });
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
}

TEST(SqliteStoreTest, RefusesAnotherSchemaVersion) {
  mocks::TempDir dir;
  const std::string path = DbPath(dir.path());
  { ASSERT_TRUE(OpenSqliteStore(path).ok()); }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, "UPDATE meta SET value = 99 WHERE key = 'schema_version'", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status().ToString();
}

// A database written by schema version 1 (no word index, a vocabulary of 3+ character words
// keyed by word) is migrated on open: search, typos included, works on it and on what follows.
TEST(SqliteStoreTest, MigratesSchemaVersion1) {
  mocks::TempDir dir;
  const std::string path = DbPath(dir.path());
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* schema = R"sql(
      PRAGMA journal_mode=WAL;
      CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO meta VALUES ('schema_version', 1), ('applied_index', 7), ('songs', 2), ('bytes', 20),
                              ('replicas_healthy', 0), ('replicas_other', 0);
      CREATE TABLE songs(
        id INTEGER PRIMARY KEY, file_id TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL, artist TEXT NOT NULL, album TEXT NOT NULL, file_name TEXT NOT NULL,
        content_type TEXT NOT NULL, track INTEGER NOT NULL, year INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL, size_bytes INTEGER NOT NULL, sha256 TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        ftitle TEXT NOT NULL, fartist TEXT NOT NULL, falbum TEXT NOT NULL, ffile TEXT NOT NULL);
      CREATE INDEX songs_ftitle ON songs(ftitle);
      CREATE INDEX songs_fartist ON songs(fartist);
      CREATE INDEX songs_falbum ON songs(falbum);
      CREATE INDEX songs_ffile ON songs(ffile);
      CREATE TABLE replicas(file_id TEXT NOT NULL, node INTEGER NOT NULL, state INTEGER NOT NULL,
                            updated_at_ms INTEGER NOT NULL, PRIMARY KEY(file_id, node)) WITHOUT ROWID;
      CREATE INDEX replicas_node ON replicas(node, file_id);
      CREATE TABLE locks(name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at_ms INTEGER NOT NULL,
                         token INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE vocab(word TEXT PRIMARY KEY, n INTEGER NOT NULL, len INTEGER NOT NULL,
                         c0 INTEGER NOT NULL, cl INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX vocab_c0 ON vocab(c0, len);
      CREATE INDEX vocab_cl ON vocab(cl, len);
      CREATE VIRTUAL TABLE songs_fts USING fts5(ftitle, fartist, falbum, ffile, content='songs',
          content_rowid='id', tokenize='trigram case_sensitive 1', detail=none);
      CREATE TRIGGER songs_fts_ai AFTER INSERT ON songs BEGIN
        INSERT INTO songs_fts(rowid, ftitle, fartist, falbum, ffile)
          VALUES (new.id, new.ftitle, new.fartist, new.falbum, new.ffile);
      END;
      CREATE TRIGGER songs_fts_ad AFTER DELETE ON songs BEGIN
        INSERT INTO songs_fts(songs_fts, rowid, ftitle, fartist, falbum, ffile)
          VALUES ('delete', old.id, old.ftitle, old.fartist, old.falbum, old.ffile);
      END;
      CREATE TRIGGER songs_fts_au AFTER UPDATE OF id, ftitle, fartist, falbum, ffile ON songs BEGIN
        INSERT INTO songs_fts(songs_fts, rowid, ftitle, fartist, falbum, ffile)
          VALUES ('delete', old.id, old.ftitle, old.fartist, old.falbum, old.ffile);
        INSERT INTO songs_fts(rowid, ftitle, fartist, falbum, ffile)
          VALUES (new.id, new.ftitle, new.fartist, new.falbum, new.ffile);
      END;
    )sql";
    ASSERT_EQ(sqlite3_exec(db, schema, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    const std::pair<const char*, const char*> songs[] = {{"v1-a", "Yesterday"}, {"v1-b", "Hey Jude U2"}};
    int64_t id = int64_t{1} << 40;
    for (const auto& [file_id, title] : songs) {
      sqlite3_stmt* st = nullptr;
      ASSERT_EQ(
          sqlite3_prepare_v2(db,
                             "INSERT INTO songs VALUES (?1, ?2, ?3, 'The Beatles', '', 'x.mp3', '', 0, 0, "
                             "0, 10, '', 0, ?4, ?5, '', ?6)",
                             -1, &st, nullptr),
          SQLITE_OK);
      const std::string folded[] = {search::FoldField(title), search::FoldField("The Beatles"),
                                    search::FoldField("x.mp3")};
      sqlite3_bind_int64(st, 1, id);
      sqlite3_bind_text(st, 2, file_id, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 3, title, -1, SQLITE_TRANSIENT);
      for (int i = 0; i < 3; ++i) sqlite3_bind_text(st, 4 + i, folded[i].c_str(), -1, SQLITE_TRANSIENT);
      EXPECT_EQ(sqlite3_step(st), SQLITE_DONE);
      sqlite3_finalize(st);
      id += int64_t{1} << 24;
    }
    EXPECT_EQ(sqlite3_exec(db,
                           "INSERT INTO vocab VALUES ('yesterday', 1, 9, 121, 121), ('hey', 1, 3, 104, 121), "
                           "('jude', 1, 4, 106, 101), ('the', 2, 3, 116, 101), ('beatles', 2, 7, 98, 115), "
                           "('mp3', 2, 3, 109, 51)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = OpenSqliteStore(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->AppliedIndex()->value(), 7u);
  EXPECT_EQ(SearchIds(**store, "beatels"), (std::vector<std::string>{"v1-a", "v1-b"}));
  EXPECT_EQ(SearchIds(**store, "yesterdya"), (std::vector<std::string>{"v1-a"}));
  EXPECT_EQ(SearchIds(**store, "u2"), (std::vector<std::string>{"v1-b"}));
  EXPECT_EQ(SearchIds(**store, "jud"), (std::vector<std::string>{"v1-b"}));
  EXPECT_EQ(SearchIds(**store, "esterd"), (std::vector<std::string>{"v1-a"}));
  ASSERT_TRUE(
      (*store)->Apply(LogIndex(8), {Put(MakeSong("v1-c", "Yesterday Once More")), Delete("v1-b")}).ok());
  EXPECT_EQ(SearchIds(**store, "yesterday"), (std::vector<std::string>{"v1-a", "v1-c"}));
  EXPECT_TRUE(SearchIds(**store, "jude").empty());
  store->reset();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int64(st, 0), 2);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  auto reopened = OpenSqliteStore(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ(SearchIds(**reopened, "yesterdya"), (std::vector<std::string>{"v1-a", "v1-c"}));
}

}  // namespace
}  // namespace dispotify::catalog
