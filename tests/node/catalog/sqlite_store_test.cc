#include "node/catalog/sqlite_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
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
    EXPECT_EQ(sqlite3_column_int64(st, 0), 4);  // through versions 2 and 3 on to 4
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  auto reopened = OpenSqliteStore(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ(SearchIds(**reopened, "yesterdya"), (std::vector<std::string>{"v1-a", "v1-c"}));
}

// The schema as version 2 of this store created it (before the library columns and albums).
constexpr const char* kSchemaV2 = R"sql(
PRAGMA journal_mode=WAL;
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema_version', 2), ('applied_index', 0), ('songs', 0), ('bytes', 0),
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
CREATE TABLE vocab(id INTEGER PRIMARY KEY, word TEXT NOT NULL UNIQUE, n INTEGER NOT NULL,
                   len INTEGER NOT NULL, c0 INTEGER NOT NULL, cl INTEGER NOT NULL);
CREATE INDEX vocab_c0 ON vocab(c0, len, word);
CREATE INDEX vocab_cl ON vocab(cl, len, word);
CREATE VIRTUAL TABLE songs_fts USING fts5(ftitle, fartist, falbum, ffile, content='songs',
    content_rowid='id', tokenize='trigram case_sensitive 1', detail=none);
CREATE VIRTUAL TABLE songs_words USING fts5(ftitle, fartist, falbum, ffile, content='songs',
    content_rowid='id', tokenize='ascii', detail=none);
CREATE VIRTUAL TABLE vocab_fts USING fts5(word, content='vocab', content_rowid='id',
    tokenize='trigram case_sensitive 1');
CREATE TRIGGER songs_fts_ai AFTER INSERT ON songs BEGIN
  INSERT INTO songs_fts(rowid, ftitle, fartist, falbum, ffile)
    VALUES (new.id, new.ftitle, new.fartist, new.falbum, new.ffile);
  INSERT INTO songs_words(rowid, ftitle, fartist, falbum, ffile)
    VALUES (new.id, new.ftitle, new.fartist, new.falbum, new.ffile);
END;
CREATE TRIGGER songs_fts_ad AFTER DELETE ON songs BEGIN
  INSERT INTO songs_fts(songs_fts, rowid, ftitle, fartist, falbum, ffile)
    VALUES ('delete', old.id, old.ftitle, old.fartist, old.falbum, old.ffile);
  INSERT INTO songs_words(songs_words, rowid, ftitle, fartist, falbum, ffile)
    VALUES ('delete', old.id, old.ftitle, old.fartist, old.falbum, old.ffile);
END;
CREATE TRIGGER songs_fts_au AFTER UPDATE OF id, ftitle, fartist, falbum, ffile ON songs BEGIN
  INSERT INTO songs_fts(songs_fts, rowid, ftitle, fartist, falbum, ffile)
    VALUES ('delete', old.id, old.ftitle, old.fartist, old.falbum, old.ffile);
  INSERT INTO songs_fts(rowid, ftitle, fartist, falbum, ffile)
    VALUES (new.id, new.ftitle, new.fartist, new.falbum, new.ffile);
  INSERT INTO songs_words(songs_words, rowid, ftitle, fartist, falbum, ffile)
    VALUES ('delete', old.id, old.ftitle, old.fartist, old.falbum, old.ffile);
  INSERT INTO songs_words(rowid, ftitle, fartist, falbum, ffile)
    VALUES (new.id, new.ftitle, new.fartist, new.falbum, new.ffile);
END;
CREATE TRIGGER vocab_fts_ai AFTER INSERT ON vocab BEGIN
  INSERT INTO vocab_fts(rowid, word) VALUES (new.id, new.word);
END;
CREATE TRIGGER vocab_fts_ad AFTER DELETE ON vocab BEGIN
  INSERT INTO vocab_fts(vocab_fts, rowid, word) VALUES ('delete', old.id, old.word);
END;
)sql";

// Writes `songs` into a version-2 database the way version 2 did (folded fields, vocabulary,
// counters), with applied index `applied`.
void WriteV2Database(const std::string& path, const std::vector<Song>& songs, int64_t applied) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, kSchemaV2, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), SQLITE_OK);
  std::map<std::string, int64_t> vocab;
  int64_t id = int64_t{1} << 40;
  int64_t bytes = 0;
  std::vector<Song> sorted = songs;
  std::sort(sorted.begin(), sorted.end(), [](const Song& a, const Song& b) { return a.file_id < b.file_id; });
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "INSERT INTO songs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                               "?13, ?14, ?15, ?16, ?17)",
                               -1, &st, nullptr),
            SQLITE_OK);
  for (const Song& s : sorted) {
    const std::string folded[] = {search::FoldField(s.title), search::FoldField(s.artist),
                                  search::FoldField(s.album), search::FoldField(s.file_name)};
    std::set<std::string> words;
    for (const auto& f : folded) {
      for (const auto& w : search::FoldWords(f)) words.insert(w);
    }
    for (const auto& w : words) ++vocab[w];
    sqlite3_bind_int64(st, 1, id);
    int i = 2;
    for (const std::string* t : {&s.file_id, &s.title, &s.artist, &s.album, &s.file_name, &s.content_type}) {
      sqlite3_bind_text(st, i++, t->data(), static_cast<int>(t->size()), SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64(st, 8, s.track);
    sqlite3_bind_int64(st, 9, s.year);
    sqlite3_bind_int64(st, 10, static_cast<int64_t>(s.duration_ms));
    sqlite3_bind_int64(st, 11, static_cast<int64_t>(s.size_bytes));
    sqlite3_bind_text(st, 12, s.sha256.data(), static_cast<int>(s.sha256.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 13, s.created_at_ms);
    for (int f = 0; f < 4; ++f) {
      sqlite3_bind_text(st, 14 + f, folded[f].data(), static_cast<int>(folded[f].size()), SQLITE_TRANSIENT);
    }
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_reset(st);
    bytes += static_cast<int64_t>(s.size_bytes);
    id += int64_t{1} << 24;
  }
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO vocab(word, n, len, c0, cl) VALUES (?1, ?2, ?3, ?4, ?5)", -1,
                               &st, nullptr),
            SQLITE_OK);
  for (const auto& [word, n] : vocab) {
    const std::u32string cps = search::DecodeUtf8(word);
    sqlite3_bind_text(st, 1, word.data(), static_cast<int>(word.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, n);
    sqlite3_bind_int64(st, 3, static_cast<int64_t>(cps.size()));
    sqlite3_bind_int64(st, 4, cps.front());
    sqlite3_bind_int64(st, 5, cps.back());
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  const std::string meta = "UPDATE meta SET value = CASE key WHEN 'applied_index' THEN " +
                           std::to_string(applied) + " WHEN 'songs' THEN " + std::to_string(songs.size()) +
                           " WHEN 'bytes' THEN " + std::to_string(bytes) + " ELSE value END";
  ASSERT_EQ(sqlite3_exec(db, meta.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  ASSERT_EQ(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

Song V2Song(const std::string& file_id, const std::string& title, const std::string& artist,
            const std::string& album, uint32_t track) {
  Song s = MakeSong(file_id, title);
  s.artist = artist;
  s.album = album;
  s.track = track;
  s.year = 1969;
  s.duration_ms = 1000;
  s.content_type = "audio/mpeg";
  s.sha256 = std::string(64, 'a');
  s.created_at_ms = 5;
  return s;
}

// A data directory written by version 2 opens: every song is kept (album_artist = artist, an
// album id), albums and artists are listed, search still works, and writes go on.
TEST(SqliteStoreTest, MigratesSchemaVersion2KeepingEverySongAndListingAlbums) {
  mocks::TempDir dir;
  const std::string path = DbPath(dir.path());
  const std::vector<Song> songs = {V2Song("a1", "Come Together", "The Beatles", "Abbey Road", 1),
                                   V2Song("a2", "Something", "THE BEATLES", "ABBEY ROAD", 2),
                                   V2Song("h1", "Help!", "The Beatles", "Help!", 1),
                                   V2Song("u1", "Loose", "Nobody", "", 0)};
  WriteV2Database(path, songs, 9);
  auto store = OpenSqliteStore(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->AppliedIndex()->value(), 9u);
  EXPECT_EQ((*store)->Stats()->songs, 4u);
  for (Song want : songs) {
    auto got = (*store)->GetSong(want.file_id);
    ASSERT_TRUE(got.ok() && got->has_value()) << want.file_id;
    CompleteSong(&want);
    EXPECT_EQ(**got, want);
    EXPECT_EQ((*got)->album_artist, want.artist);
  }
  AlbumListRequest req;
  auto albums = (*store)->ListAlbums(req);
  ASSERT_TRUE(albums.ok()) << albums.status().ToString();
  ASSERT_EQ(albums->items.size(), 3u);
  EXPECT_EQ(albums->items[0].title, "");  // songs without an album: one album per artist
  EXPECT_EQ(albums->items[1].title, "ABBEY ROAD");
  EXPECT_EQ(albums->items[1].song_count, 2u);
  EXPECT_EQ(albums->items[2].title, "Help!");
  auto abbey = (*store)->GetAlbum(AlbumIdOf("The Beatles", "Abbey Road"));
  ASSERT_TRUE(abbey.ok() && abbey->has_value());
  EXPECT_EQ((*abbey)->songs.size(), 2u);
  auto artists = (*store)->ListArtists(ArtistListRequest{});
  ASSERT_TRUE(artists.ok());
  ASSERT_EQ(artists->items.size(), 3u);  // "Nobody", "THE BEATLES" and "The Beatles" (exact names)
  EXPECT_EQ(artists->items[0].name, "Nobody");
  EXPECT_EQ(SearchIds(**store, "beatels"), (std::vector<std::string>{"a1", "a2", "h1"}));
  ASSERT_TRUE(
      (*store)
          ->Apply(LogIndex(10), {Put(V2Song("a3", "Octopus's Garden", "The Beatles", "Abbey Road", 5))})
          .ok());
  store->reset();
  auto reopened = OpenSqliteStore(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto again = (*reopened)->GetAlbum(AlbumIdOf("The Beatles", "Abbey Road"));
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->summary.song_count, 3u);
}

// A data directory written by version 3 (before covers) opens: the songs and albums are kept
// without a cover, and songs with covers can be written. The version-3 file is this version's
// schema without what version 4 added (exactly the columns and index kAddCoverColumns makes).
TEST(SqliteStoreTest, MigratesSchemaVersion3KeepingEverySongAndAddingCovers) {
  mocks::TempDir dir;
  const std::string path = DbPath(dir.path());
  const std::vector<Song> songs = {V2Song("a1", "Come Together", "The Beatles", "Abbey Road", 1),
                                   V2Song("a2", "Something", "The Beatles", "Abbey Road", 2)};
  {
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Apply(LogIndex(5), {Put(songs[0]), Put(songs[1])}).ok());
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db,
                                "DROP INDEX songs_cover; ALTER TABLE songs DROP COLUMN cover; "
                                "ALTER TABLE albums DROP COLUMN cover; "
                                "UPDATE meta SET value = 3 WHERE key = 'schema_version';",
                                nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error != nullptr ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }
  auto store = OpenSqliteStore(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->AppliedIndex()->value(), 5u);
  for (Song want : songs) {
    auto got = (*store)->GetSong(want.file_id);
    ASSERT_TRUE(got.ok() && got->has_value()) << want.file_id;
    CompleteSong(&want);
    EXPECT_EQ(**got, want);
    EXPECT_EQ((*got)->cover, "");
  }
  const std::string album = AlbumIdOf("The Beatles", "Abbey Road");
  auto abbey = (*store)->GetAlbum(album);
  ASSERT_TRUE(abbey.ok() && abbey->has_value());
  EXPECT_EQ((*abbey)->summary.song_count, 2u);
  EXPECT_EQ((*abbey)->summary.cover, "");
  Song covered = V2Song("a3", "Octopus's Garden", "The Beatles", "Abbey Road", 5);
  covered.cover = std::string(64, '7');
  ASSERT_TRUE((*store)->Apply(LogIndex(6), {Put(covered)}).ok());
  abbey = (*store)->GetAlbum(album);
  ASSERT_TRUE(abbey.ok() && abbey->has_value());
  EXPECT_EQ((*abbey)->summary.cover, covered.cover);
  EXPECT_EQ((*(*store)->SongWithCover(covered.cover))->file_id, "a3");
}

// Sanitizer builds run each query 10-50x slower: they check the plans on a tenth of the songs.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kLibrarySongs = 10000;
#else
constexpr int kLibrarySongs = 100000;
#endif

// Keyset paging at 100,000 songs: a page deep in the listing costs what the first one does, and
// each query is a range scan of an index (EXPLAIN QUERY PLAN: no temp b-tree for ORDER BY).
TEST(SqliteStoreTest, LibraryPagesAreFastAt100kSongs) {
  mocks::TempDir dir;
  const std::string path = DbPath(dir.path());
  {
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    constexpr int kSongs = kLibrarySongs;
    constexpr int kPerEntry = 1000;
    for (int e = 0; e < kSongs / kPerEntry; ++e) {
      std::vector<Mutation> batch;
      for (int i = e * kPerEntry; i < (e + 1) * kPerEntry; ++i) {
        // 10 songs per album, 5 albums per artist: 10,000 albums, 2,000 artists.
        Song s = V2Song("s" + std::to_string(1000000 + i), "Song " + std::to_string(i),
                        "Artist " + std::to_string(i / 50), "Album " + std::to_string(i / 10),
                        static_cast<uint32_t>(i % 10 + 1));
        s.year = static_cast<uint32_t>(1950 + (i / 10) % 70);
        s.created_at_ms = i / 10;
        batch.push_back(Put(std::move(s)));
      }
      ASSERT_TRUE((*store)->Apply(LogIndex(static_cast<uint64_t>(e + 1)), batch).ok());
    }
  }
  auto store = OpenSqliteStore(path);
  ASSERT_TRUE(store.ok());
  for (AlbumSort sort : {AlbumSort::kName, AlbumSort::kYear, AlbumSort::kRecent}) {
    AlbumListRequest req;
    req.sort = sort;
    req.limit = 100;
    std::vector<double> times;
    while (true) {
      const auto start = std::chrono::steady_clock::now();
      auto page = (*store)->ListAlbums(req);
      times.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      if (page->next_after.empty()) break;
      req.after = page->next_after;
    }
    const int pages = static_cast<int>(times.size());
    const double first_ms = times.front();
    std::sort(times.begin(), times.end());
    const double median_ms = times[times.size() / 2];
    const double worst_ms = times.back();
    EXPECT_EQ(pages, kLibrarySongs / 10 / 100);
    std::printf(
        "albums sort=%d at %d songs, 100 per page: first %.2f ms, median %.2f ms, worst %.2f ms (%d "
        "pages)\n",
        static_cast<int>(sort), kLibrarySongs, first_ms, median_ms, worst_ms, pages);
    EXPECT_LT(worst_ms, 250.0);
  }
  ArtistListRequest areq;
  areq.limit = 100;
  int pages = 0;
  double worst_ms = 0;
  while (true) {
    const auto start = std::chrono::steady_clock::now();
    auto page = (*store)->ListArtists(areq);
    worst_ms =
        std::max(worst_ms,
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    ASSERT_TRUE(page.ok());
    ++pages;
    if (page->next_after.empty()) break;
    areq.after = page->next_after;
  }
  EXPECT_EQ(pages, kLibrarySongs / 50 / 100);
  std::printf("artists at %d songs: worst of %d pages %.2f ms\n", kLibrarySongs, pages, worst_ms);
  const auto start = std::chrono::steady_clock::now();
  auto album = (*store)->GetAlbum(AlbumIdOf("Artist 1", "Album 9"));
  std::printf("one album's songs at %d songs: %.2f ms\n", kLibrarySongs,
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  ASSERT_TRUE(album.ok() && album->has_value());
  EXPECT_EQ((*album)->songs.size(), 10u);

  // The plans: every listing reads an index in order (no "USE TEMP B-TREE").
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const char* queries[] = {
      "SELECT album_id FROM albums WHERE (title_key, album_id) > ('x', 'y') ORDER BY title_key, album_id "
      "LIMIT 5",
      "SELECT album_id FROM albums WHERE (neg_year, title_key, album_id) > (-1990, 'x', 'y') "
      "ORDER BY neg_year, title_key, album_id LIMIT 5",
      "SELECT album_id FROM albums WHERE (created_at_ms, album_id) < (5, 'y') "
      "ORDER BY created_at_ms DESC, album_id DESC LIMIT 5",
      "SELECT album_id FROM albums WHERE album_artist = 'a' AND (neg_year, title_key, album_id) > (-1990, "
      "'x', 'y') "
      "ORDER BY neg_year, title_key, album_id LIMIT 5",
      "SELECT artist_key, album_artist, count(*), sum(song_count) FROM albums WHERE (artist_key, "
      "album_artist) > "
      "('x', 'y') GROUP BY artist_key, album_artist ORDER BY artist_key, album_artist LIMIT 5",
      "SELECT file_id FROM songs WHERE album_id = 'x' ORDER BY disc, track, title, file_id",
  };
  for (const char* q : queries) {
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, (std::string("EXPLAIN QUERY PLAN ") + q).c_str(), -1, &st, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    std::string plan;
    while (sqlite3_step(st) == SQLITE_ROW)
      plan += std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 3))) + "; ";
    sqlite3_finalize(st);
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << q << "\n" << plan;
    EXPECT_EQ(plan.find("SCAN albums"), std::string::npos) << q << "\n" << plan;
    EXPECT_NE(plan.find("INDEX"), std::string::npos) << q << "\n" << plan;
  }
  sqlite3_close(db);
}

}  // namespace
}  // namespace dispotify::catalog
