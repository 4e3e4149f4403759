// The PostgreSQL store against a real PostgreSQL server (tests/support/postgres_server.h: one
// throwaway server per test binary, a database per test): the conformance suite, plus what only
// a server-backed store has to get right — schema migration, the server restarting or stopping,
// a connection killed in the middle of Apply, reads that never wait for Apply, and snapshots
// that cross between the two stores with identical search results.

#include "node/catalog/postgres_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "node/catalog/sqlite_store.h"
#include "tests/mocks/temp_dir.h"
#include "tests/node/catalog/metadata_store_conformance.h"
#include "tests/support/postgres_server.h"

namespace dispotify::catalog {
namespace {

using testsupport::PostgresServer;
using testsupport::PostgresSession;
using testsupport::SharedPostgresServer;

const ::testing::Environment* const kPostgresEnv = testsupport::RegisterPostgresEnvironment();

// ---------------------------------------------------------------------------------------------
// Conformance: one database per scratch dir.
// ---------------------------------------------------------------------------------------------

std::mutex g_databases_mu;
std::map<std::string, std::string> g_databases;  // scratch dir -> database name

Result<std::unique_ptr<MetadataStore>> OpenForScratchDir(const std::string& dir, bool create) {
  PostgresServer* server = SharedPostgresServer();
  if (server == nullptr) return Status::Unavailable(testsupport::SharedPostgresServerError());
  std::string name;
  {
    std::lock_guard lock(g_databases_mu);
    if (create) {
      name = server->UniqueDatabaseName(testsupport::CurrentTestDatabaseHint());
      g_databases[dir] = name;
    } else {
      auto it = g_databases.find(dir);
      if (it == g_databases.end()) return Status::NotFound("no database for " + dir);
      name = it->second;
    }
  }
  if (create) {
    auto created = server->CreateDatabase(name);
    if (!created.ok()) return created.status();
  }
  return OpenPostgresStore(server->ConnInfo(name));
}

MetadataStoreTarget PostgresTarget() {
  return MetadataStoreTarget{"postgres", [](const std::string& dir) { return OpenForScratchDir(dir, true); },
                             [](const std::string& dir) { return OpenForScratchDir(dir, false); },
                             [](const std::string& dir) {
                               std::string name;
                               {
                                 std::lock_guard lock(g_databases_mu);
                                 auto it = g_databases.find(dir);
                                 if (it == g_databases.end()) return;
                                 name = it->second;
                                 g_databases.erase(it);
                               }
                               if (PostgresServer* server = SharedPostgresServer(); server != nullptr) {
                                 EXPECT_TRUE(server->DropDatabase(name).ok());
                               }
                             }};
}

INSTANTIATE_TEST_SUITE_P(Postgres, MetadataStoreConformance, ::testing::Values(PostgresTarget()),
                         MetadataStoreTargetName);

// ---------------------------------------------------------------------------------------------
// PostgreSQL-specific behaviour
// ---------------------------------------------------------------------------------------------

Song MakeSong(const std::string& file_id, const std::string& title, const std::string& artist = "Artist",
              const std::string& album = "") {
  Song s;
  s.file_id = file_id;
  s.title = title;
  s.artist = artist;
  s.album = album;
  s.file_name = file_id + ".mp3";
  s.content_type = "audio/mpeg";
  s.size_bytes = 1000;
  s.sha256 = std::string(64, 'a');
  CompleteSong(&s);  // as the store gives it back (album_artist = artist, album_id)
  return s;
}

Mutation Put(Song s) {
  Mutation m;
  m.kind = Mutation::Kind::kPutSong;
  m.song = std::move(s);
  return m;
}

Mutation PutReplica(const std::string& file_id, uint64_t node, ReplicaState state) {
  Mutation m;
  m.kind = Mutation::Kind::kPutReplica;
  m.replica = Replica{file_id, NodeId(node), state, 7};
  return m;
}

Mutation Setting(const std::string& key, const std::string& value) {
  Mutation m;
  m.kind = Mutation::Kind::kPutSetting;
  m.key = key;
  m.value = value;
  return m;
}

Mutation PutLock(const std::string& name, const std::string& owner) {
  Mutation m;
  m.kind = Mutation::Kind::kPutLock;
  m.lock = Lock{name, owner, 99, 3};
  return m;
}

std::vector<std::string> Ids(const SearchPage& page) {
  std::vector<std::string> out;
  for (const auto& s : page.items) out.push_back(s.file_id);
  return out;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = SharedPostgresServer();
    ASSERT_NE(server_, nullptr) << testsupport::SharedPostgresServerError();
    db_ = server_->UniqueDatabaseName(testsupport::CurrentTestDatabaseHint());
    auto conninfo = server_->CreateDatabase(db_);
    ASSERT_TRUE(conninfo.ok()) << conninfo.status().ToString();
    conninfo_ = *conninfo;
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    if (!server_->running()) {  // a test failed while the server was down
      EXPECT_TRUE(server_->StartServer().ok());
    }
    EXPECT_TRUE(server_->DropDatabase(db_).ok());
  }

  std::unique_ptr<MetadataStore> Open() {
    auto store = OpenPostgresStore(conninfo_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  std::string Query(const std::string& sql) {
    auto v = server_->QueryValue(db_, sql);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : "";
  }

  // Waits until the store's writer connection waits for a lock, and returns its backend pid.
  std::string WaitForBlockedWriter() {
    for (int i = 0; i < 500; ++i) {
      const std::string pid =
          Query("SELECT pid FROM pg_stat_activity WHERE datname = '" + db_ +
                "' AND application_name = 'dispotify-catalog-writer' AND wait_event_type = 'Lock'");
      if (!pid.empty()) return pid;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the writer never blocked";
    return "";
  }

  PostgresServer* server_ = nullptr;
  std::string db_;
  std::string conninfo_;
};

// The schema as version 1 of this store created it (no search column, no vocabulary, no counters).
constexpr const char* kSchemaV1 =
    "CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);"
    "INSERT INTO meta (key, value) VALUES ('applied_index', 0), ('schema_version', 1);"
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
    "CREATE TABLE settings (key bytea PRIMARY KEY, value bytea NOT NULL);";

TEST_F(PostgresStoreTest, MigratesAVersion1Database) {
  ASSERT_TRUE(server_->Execute(db_, kSchemaV1).ok());
  ASSERT_TRUE(
      server_
          ->Execute(db_,
                    "INSERT INTO songs VALUES "
                    "('s1', 'Yesterday', 'The Beatles', 'Help!', 'yesterday.mp3', 'audio/mpeg', 13, 1965,"
                    " 125000, 4000000, 'ab', 1000),"
                    "('s2', convert_to('Café del Mar', 'UTF8'), 'Energy 52', '', 'cafe.mp3', 'audio/mpeg',"
                    " 1, 1993, 1, 6000000, 'cd', 2000);"
                    "INSERT INTO replicas VALUES ('s1', 1, 1, 5), ('s1', 2, 0, 5);"
                    "UPDATE meta SET value = 7 WHERE key = 'applied_index';")
          .ok());

  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Query("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kPostgresSchemaVersion));
  EXPECT_EQ(store->AppliedIndex().value(), LogIndex(7));
  auto s1 = store->GetSong("s1");
  ASSERT_TRUE(s1.ok() && s1->has_value());
  EXPECT_EQ((*s1)->title, "Yesterday");
  EXPECT_EQ((*s1)->year, 1965u);

  // Existing rows became searchable: folded text, vocabulary (for typos) and counters.
  auto typo = store->Search(SearchRequest{"beatels", 10});
  ASSERT_TRUE(typo.ok()) << typo.status().ToString();
  EXPECT_EQ(Ids(*typo), std::vector<std::string>{"s1"});
  auto accent = store->Search(SearchRequest{"CAFE", 10});
  ASSERT_TRUE(accent.ok());
  EXPECT_EQ(Ids(*accent), std::vector<std::string>{"s2"});
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->songs, 2u);
  EXPECT_EQ(stats->bytes, 10000000u);
  EXPECT_EQ(stats->replicas_healthy, 1u);
  EXPECT_EQ(stats->replicas_other, 1u);

  // Writing continues from the migrated state; opening again migrates nothing.
  ASSERT_TRUE(store->Apply(LogIndex(8), {Put(MakeSong("s3", "Something"))}).ok());
  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->AppliedIndex().value(), LogIndex(8));
  EXPECT_EQ(store->Stats()->songs, 3u);
}

// What version 2 added to version 1's schema (search text, vocabulary, counters; no library).
constexpr const char* kSchemaV2Additions =
    "CREATE EXTENSION IF NOT EXISTS pg_trgm;"
    "CREATE TABLE song_search (file_id bytea PRIMARY KEY, search_text text NOT NULL, fields text[] NOT NULL);"
    "CREATE TABLE vocab (word text PRIMARY KEY, n bigint NOT NULL, len int NOT NULL, c0 bigint NOT NULL,"
    "  cl bigint NOT NULL);"
    "CREATE INDEX vocab_c0 ON vocab (c0, len);"
    "CREATE INDEX vocab_cl ON vocab (cl, len);"
    "INSERT INTO meta (key, value) VALUES ('songs', 0), ('bytes', 0), ('replicas_healthy', 0),"
    "  ('replicas_other', 0);"
    "UPDATE meta SET value = 2 WHERE key = 'schema_version';"
    "CREATE INDEX song_search_trgm ON song_search USING gin (search_text gin_trgm_ops);"
    "CREATE INDEX song_search_fields ON song_search USING gin (fields);";

// A database written by version 2 opens: every song is kept, with album_artist = artist and its
// album id, and albums and artists are listed; the embedded store lists them identically.
TEST_F(PostgresStoreTest, MigratesAVersion2DatabaseKeepingEverySongAndListingAlbums) {
  ASSERT_TRUE(server_->Execute(db_, kSchemaV1).ok());
  ASSERT_TRUE(server_->Execute(db_, kSchemaV2Additions).ok());
  struct Row {
    const char* id;
    const char* title;
    const char* artist;
    const char* album;
  };
  const Row rows[] = {{"a1", "Come Together", "The Beatles", "Abbey Road"},
                      {"a2", "Something", "THE BEATLES", "ABBEY ROAD"},
                      {"h1", "Help", "The Beatles", "Help!"},
                      {"u1", "Loose", "Nobody", ""}};
  std::string sql;
  for (const Row& r : rows) {
    Song s;
    s.title = r.title;
    s.artist = r.artist;
    s.album = r.album;
    s.file_name = std::string(r.id) + ".mp3";
    std::string text;
    std::string fields = "{";
    for (const std::string* f : {&s.title, &s.artist, &s.album, &s.file_name}) {
      const std::string folded = search::FoldField(*f);
      if (folded.empty()) continue;
      text += folded;
      fields += (fields.size() > 1 ? ",\"" : "\"") + folded + "\"";
    }
    fields += "}";
    // A standard SQL literal: the folded text holds control characters but never a quote.
    auto quote = [](const std::string& v) { return "'" + v + "'"; };
    sql += "INSERT INTO songs VALUES (convert_to('" + std::string(r.id) + "', 'UTF8'), convert_to('" +
           r.title + "', 'UTF8'), convert_to('" + r.artist + "', 'UTF8'), convert_to('" + r.album +
           "', 'UTF8'), convert_to('" + s.file_name +
           "', 'UTF8'), 'audio/mpeg', 1, 1969, 1000, 10, 'ab', 5);";
    sql += "INSERT INTO song_search VALUES (convert_to('" + std::string(r.id) + "', 'UTF8'), " + quote(text) +
           ", " + quote(fields) + ");";
  }
  sql +=
      "UPDATE meta SET value = CASE key WHEN 'applied_index' THEN 9 WHEN 'songs' THEN 4 WHEN 'bytes' THEN 40 "
      "ELSE value END;";
  ASSERT_TRUE(server_->Execute(db_, sql).ok());

  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Query("SELECT value FROM meta WHERE key = 'schema_version'"), "4");  // through 3
  EXPECT_EQ(store->AppliedIndex().value(), LogIndex(9));
  EXPECT_EQ(store->Stats()->songs, 4u);
  for (const Row& r : rows) {
    auto got = store->GetSong(r.id);
    ASSERT_TRUE(got.ok() && got->has_value()) << r.id;
    EXPECT_EQ((*got)->title, r.title);
    EXPECT_EQ((*got)->album_artist, r.artist);
    EXPECT_EQ((*got)->album_id, AlbumIdOf(r.artist, r.album));
    EXPECT_EQ((*got)->disc, 0u);
    EXPECT_FALSE((*got)->compilation);
    EXPECT_EQ((*got)->cover, "");
  }
  auto albums = store->ListAlbums(AlbumListRequest{});
  ASSERT_TRUE(albums.ok()) << albums.status().ToString();
  ASSERT_EQ(albums->items.size(), 3u);
  EXPECT_EQ(albums->items[0].title, "");
  EXPECT_EQ(albums->items[1].title, "ABBEY ROAD");
  EXPECT_EQ(albums->items[1].album_artist, "THE BEATLES");
  EXPECT_EQ(albums->items[1].song_count, 2u);
  EXPECT_EQ(albums->items[2].title, "Help!");
  auto artists = store->ListArtists(ArtistListRequest{});
  ASSERT_TRUE(artists.ok()) << artists.status().ToString();
  ASSERT_EQ(artists->items.size(), 3u);
  EXPECT_EQ(artists->items[0].name, "Nobody");
  EXPECT_EQ(artists->items[1].name, "THE BEATLES");
  EXPECT_EQ(artists->items[2].name, "The Beatles");
  auto accent = store->Search(SearchRequest{"together", 10});
  ASSERT_TRUE(accent.ok());
  EXPECT_EQ(Ids(*accent), std::vector<std::string>{"a1"});
  Song covered = MakeSong("a3", "Octopus");
  covered.cover = std::string(64, '3');
  ASSERT_TRUE(store->Apply(LogIndex(10), {Put(covered)}).ok());
  EXPECT_EQ((*store->SongWithCover(covered.cover))->file_id, "a3");
  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Stats()->songs, 5u);
}

TEST_F(PostgresStoreTest, RefusesANewerSchema) {
  ASSERT_NE(Open(), nullptr);
  ASSERT_TRUE(server_->Execute(db_, "UPDATE meta SET value = 99 WHERE key = 'schema_version'").ok());
  auto store = OpenPostgresStore(conninfo_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status().ToString();
}

TEST_F(PostgresStoreTest, ConcurrentOpensMigrateOnce) {
  std::vector<std::future<Result<std::unique_ptr<MetadataStore>>>> opens;
  for (int i = 0; i < 3; ++i) {
    opens.push_back(std::async(std::launch::async, [&] { return OpenPostgresStore(conninfo_); }));
  }
  for (auto& f : opens) {
    auto store = f.get();
    ASSERT_TRUE(store.ok()) << store.status().ToString();
  }
  EXPECT_EQ(Query("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kPostgresSchemaVersion));
}

TEST_F(PostgresStoreTest, UnreachableServerIsUnavailable) {
  auto store = OpenPostgresStore("host=127.0.0.1 port=1 user=postgres dbname=x connect_timeout=2");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable) << store.status().ToString();
}

TEST_F(PostgresStoreTest, AppliedIndexSurvivesReopen) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  for (uint64_t i = 1; i <= 5; ++i) {
    ASSERT_TRUE(store->Apply(LogIndex(i), {Setting("k", std::to_string(i))}).ok());
  }
  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->AppliedIndex().value(), LogIndex(5));
  ASSERT_TRUE(store->Apply(LogIndex(3), {Setting("k", "replayed")}).ok());  // replay: no-op
  EXPECT_EQ(store->GetSetting("k").value(), std::optional<std::string>("5"));
}

// Strings are bytes: NUL, invalid UTF-8 and 0xFF survive Apply, reads, Dump and Load.
TEST_F(PostgresStoreTest, StringsAreBytes) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const std::string odd("a\0b\xff\xfe'\\\"\t\n", 10);
  Song s = MakeSong("odd", "Title " + odd, odd);
  ASSERT_TRUE(store->Apply(LogIndex(1), {Put(s), Setting(odd, odd), PutLock(odd, odd)}).ok());
  EXPECT_EQ(store->GetSong("odd")->value(), s);
  EXPECT_EQ(store->GetSetting(odd)->value(), odd);
  EXPECT_EQ(store->GetLock(odd)->value().owner, odd);

  mocks::TempDir tmp;
  const std::string path = tmp.Sub("dump");
  {
    std::ofstream out(path, std::ios::binary);
    ASSERT_TRUE(store
                    ->Dump([&](std::string_view chunk) {
                      out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
                      return out ? Status::Ok() : Status::IoError("write");
                    })
                    .ok());
  }
  ASSERT_TRUE(store->Apply(LogIndex(2), {Setting(odd, "changed")}).ok());
  ASSERT_TRUE(store->Load(path).ok());
  EXPECT_EQ(store->AppliedIndex().value(), LogIndex(1));
  EXPECT_EQ(store->GetSong("odd")->value(), s);
  EXPECT_EQ(store->GetSetting(odd)->value(), odd);
  EXPECT_EQ(Ids(*store->Search(SearchRequest{"title", 10})), std::vector<std::string>{"odd"});
}

// Reads run on their own connections: an Apply stuck on a lock does not hold them up.
TEST_F(PostgresStoreTest, ReadsDoNotWaitForApply) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Apply(LogIndex(1), {Put(MakeSong("a", "Alpha"))}).ok());

  // Declared before the blocker: if an assertion returns early, the blocker goes first (its
  // connection closes, its lock with it) and the Apply the future waits for can finish.
  std::future<Status> apply;
  PostgresSession blocker(conninfo_);
  ASSERT_TRUE(blocker.Exec("BEGIN; SELECT value FROM meta WHERE key = 'applied_index' FOR UPDATE").ok());
  apply =
      std::async(std::launch::async, [&] { return store->Apply(LogIndex(2), {Put(MakeSong("b", "Beta"))}); });
  WaitForBlockedWriter();
  auto applied = store->AppliedIndex();
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, LogIndex(1));
  auto a = store->GetSong("a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(a->has_value());
  auto search = store->Search(SearchRequest{"alpha", 10});
  ASSERT_TRUE(search.ok()) << search.status().ToString();
  EXPECT_EQ(Ids(*search), std::vector<std::string>{"a"});
  EXPECT_EQ(apply.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);

  ASSERT_TRUE(blocker.Exec("ROLLBACK").ok());
  EXPECT_TRUE(apply.get().ok());
  EXPECT_EQ(store->AppliedIndex().value(), LogIndex(2));
  EXPECT_TRUE(store->GetSong("b")->has_value());
}

// The writer's connection is killed while Apply waits halfway through its mutations: nothing of
// the entry is visible, the applied index is unchanged, and applying it again works.
TEST_F(PostgresStoreTest, ConnectionKilledMidApplyAppliesNothing) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Apply(LogIndex(1), {Put(MakeSong("a", "Alpha"))}).ok());
  const CatalogStats before = store->Stats().value();

  // The entry's song and replica go in first; its setting waits for the table lock held here.
  const std::vector<Mutation> entry = {Put(MakeSong("b", "Bravo")),
                                       PutReplica("b", 1, ReplicaState::kHealthy), Setting("k", "v")};
  std::future<Status> apply;  // before the blocker: see ReadsDoNotWaitForApply
  PostgresSession blocker(conninfo_);
  ASSERT_TRUE(blocker.Exec("BEGIN; LOCK TABLE settings IN ACCESS EXCLUSIVE MODE").ok());
  apply = std::async(std::launch::async, [&] { return store->Apply(LogIndex(2), entry); });
  const std::string pid = WaitForBlockedWriter();
  ASSERT_FALSE(pid.empty());
  ASSERT_TRUE(server_->Execute("postgres", "SELECT pg_terminate_backend(" + pid + ")").ok());
  const Status killed = apply.get();
  EXPECT_EQ(killed.code(), StatusCode::kUnavailable) << killed.ToString();
  ASSERT_TRUE(blocker.Exec("ROLLBACK").ok());

  EXPECT_EQ(store->AppliedIndex().value(), LogIndex(1));
  EXPECT_FALSE(store->GetSong("b")->has_value());
  EXPECT_TRUE(store->GetReplicas("b")->empty());
  EXPECT_FALSE(store->GetSetting("k")->has_value());
  EXPECT_TRUE(store->Search(SearchRequest{"bravo", 10})->items.empty());
  const CatalogStats still = store->Stats().value();
  EXPECT_EQ(still.songs, before.songs);
  EXPECT_EQ(still.replicas_healthy, before.replicas_healthy);
  EXPECT_EQ(Query("SELECT count(*) FROM vocab WHERE word = 'bravo'"), "0");

  // The driver applies the entry again: on a new connection, once.
  ASSERT_TRUE(store->Apply(LogIndex(2), entry).ok());
  ASSERT_TRUE(store->Apply(LogIndex(2), entry).ok());
  EXPECT_EQ(store->AppliedIndex().value(), LogIndex(2));
  EXPECT_TRUE(store->GetSong("b")->has_value());
  EXPECT_EQ(store->GetReplicas("b")->size(), 1u);
  EXPECT_EQ(store->GetSetting("k")->value(), "v");
  EXPECT_EQ(store->Stats()->songs, before.songs + 1);
  EXPECT_EQ(Query("SELECT n FROM vocab WHERE word = 'bravo'"), "1");
}

// pg_ctl restart: every pooled connection dies; the store replaces them without an error.
TEST_F(PostgresStoreTest, SurvivesAServerRestart) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Apply(LogIndex(1), {Put(MakeSong("a", "Alpha"))}).ok());
  ASSERT_TRUE(store->GetSong("a")->has_value());  // a reader connection is pooled now

  ASSERT_TRUE(server_->RestartServer().ok());
  auto song = store->GetSong("a");
  ASSERT_TRUE(song.ok()) << song.status().ToString();
  EXPECT_TRUE(song->has_value());
  Status st = store->Apply(LogIndex(2), {Put(MakeSong("b", "Bravo"))});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Ids(*store->Search(SearchRequest{"bravo", 10})), std::vector<std::string>{"b"});
}

// While the server is down every call is kUnavailable and changes nothing; it recovers by itself.
TEST_F(PostgresStoreTest, UnavailableWhileDownThenRecovers) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Apply(LogIndex(1), {Put(MakeSong("a", "Alpha"))}).ok());

  ASSERT_TRUE(server_->StopServer().ok());
  EXPECT_EQ(store->AppliedIndex().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->GetSong("a").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->Search(SearchRequest{"alpha", 10}).status().code(), StatusCode::kUnavailable);
  const Status down = store->Apply(LogIndex(2), {Put(MakeSong("b", "Bravo"))});
  EXPECT_EQ(down.code(), StatusCode::kUnavailable) << down.ToString();

  ASSERT_TRUE(server_->StartServer().ok());
  EXPECT_EQ(store->AppliedIndex().value(), LogIndex(1));
  Status st = store->Apply(LogIndex(2), {Put(MakeSong("b", "Bravo"))});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(store->AppliedIndex().value(), LogIndex(2));
  EXPECT_TRUE(store->GetSong("b")->has_value());
}

// ---------------------------------------------------------------------------------------------
// Across the two stores: a dump of either loads into the other, and both answer every search
// with the same page (items, order, total, cursor).
// ---------------------------------------------------------------------------------------------

std::vector<Mutation> Library() {
  const char* const rows[][4] = {
      {"b01", "Yesterday", "The Beatles", "Help!"},
      {"b02", "Help!", "The Beatles", "Help!"},
      {"b03", "Beat It", "Michael Jackson", "Thriller"},
      {"b04", "Uncertain Smile", "The The", "Soul Mining"},
      {"b05", "One", "U2", "Achtung Baby"},
      {"b06", "Don't Stop Me Now", "Queen", "Jazz"},
      {"b07", "Café del Mar", "Energy 52", ""},
      {"b08", "Ölmez Ağacı", "Sezen Aksu", ""},
      {"b09", "Кино", "Группа крови", ""},
      {"b10", "東京事変", "椎名林檎", "教育"},
      {"b11", "Beautiful Day", "U2", "All That You Can't Leave Behind"},
      {"b12", "Beatles Medley", "Various", ""},
      {"b13", "Don Quixote", "Nik Kershaw", "The Riddle"},
      {"b14", "Strawberry Fields Forever", "The Beatles", "Magical Mystery Tour"},
      {"b15", "Beatless", "Unknown", ""},
      {"b16", "100% Pure Love", "Crystal Waters", ""},
      {"b17", "a", "A", "A"},
      {"b18", "Ab", "Abba", "Arrival"},
  };
  std::vector<Mutation> out;
  for (const auto& r : rows) out.push_back(Put(MakeSong(r[0], r[1], r[2], r[3])));
  for (int i = 0; i < 40; ++i) {
    out.push_back(
        Put(MakeSong("g" + std::to_string(100 + i), "Love Song " + std::to_string(i), "Generic Band")));
  }
  out.push_back(PutReplica("b01", 1, ReplicaState::kHealthy));
  out.push_back(PutReplica("b01", 2, ReplicaState::kPending));
  out.push_back(PutLock("upload/b01", "node-1"));
  out.push_back(Setting("replication_factor", "3"));
  return out;
}

Status DumpTo(MetadataStore& store, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  return store.Dump([&](std::string_view chunk) {
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    return out ? Status::Ok() : Status::IoError("write " + path);
  });
}

// Every page of `query` (through cursors, then through offsets) on both stores.
void ExpectSameSearch(MetadataStore& pg, MetadataStore& lite, const std::string& query, uint32_t limit) {
  SCOPED_TRACE("query \"" + query + "\" limit " + std::to_string(limit));
  SearchRequest req{query, limit};
  for (int page = 0; page < 20; ++page) {
    auto a = pg.Search(req);
    auto b = lite.Search(req);
    ASSERT_EQ(a.ok(), b.ok()) << a.status().ToString() << " vs " << b.status().ToString();
    if (!a.ok()) {
      EXPECT_EQ(a.status().code(), b.status().code());
      return;
    }
    EXPECT_EQ(Ids(*a), Ids(*b)) << "page " << page;
    EXPECT_EQ(a->total, b->total) << "page " << page;
    EXPECT_EQ(a->next_cursor, b->next_cursor) << "page " << page;
    if (a->next_cursor.empty() || a->next_cursor != b->next_cursor) break;
    req.cursor = a->next_cursor;
  }
  SearchRequest off{query, limit};
  off.offset = limit;
  auto a = pg.Search(off);
  auto b = lite.Search(off);
  ASSERT_EQ(a.ok(), b.ok());
  if (a.ok()) {
    EXPECT_EQ(Ids(*a), Ids(*b)) << "offset page";
  }
}

TEST_F(PostgresStoreTest, SnapshotsCrossStoresAndSearchAgrees) {
  mocks::TempDir tmp;
  auto lite = OpenSqliteStore(tmp.Sub("catalog.db"));
  ASSERT_TRUE(lite.ok()) << lite.status().ToString();
  ASSERT_TRUE((*lite)->Apply(LogIndex(42), Library()).ok());

  // SQLite -> PostgreSQL.
  const std::string from_lite = tmp.Sub("from-sqlite.dump");
  ASSERT_TRUE(DumpTo(**lite, from_lite).ok());
  auto pg = Open();
  ASSERT_NE(pg, nullptr);
  ASSERT_TRUE(pg->Apply(LogIndex(1), {Put(MakeSong("stale", "Gone after the load"))}).ok());
  Status loaded = pg->Load(from_lite);
  ASSERT_TRUE(loaded.ok()) << loaded.ToString();
  EXPECT_EQ(pg->AppliedIndex().value(), LogIndex(42));
  EXPECT_FALSE(pg->GetSong("stale")->has_value());

  auto stats_pg = pg->Stats();
  auto stats_lite = (*lite)->Stats();
  ASSERT_TRUE(stats_pg.ok() && stats_lite.ok());
  EXPECT_EQ(stats_pg->songs, stats_lite->songs);
  EXPECT_EQ(stats_pg->bytes, stats_lite->bytes);
  EXPECT_EQ(stats_pg->replicas_healthy, stats_lite->replicas_healthy);
  EXPECT_EQ(stats_pg->replicas_other, stats_lite->replicas_other);
  EXPECT_EQ(pg->GetReplicas("b01").value(), (*lite)->GetReplicas("b01").value());
  EXPECT_EQ(pg->GetLock("upload/b01").value(), (*lite)->GetLock("upload/b01").value());
  ListRequest all;
  all.limit = 1000;
  EXPECT_EQ(pg->ListSongs(all)->items, (*lite)->ListSongs(all)->items);

  const char* const queries[] = {"beatles", "beatels",   "BEAT",           "beat it", "the the", "the",
                                 "u2",      "cafe",      "olmez",          "agaci",   "кино",    "группа",
                                 "東京",    "事変",      "dont",           "don't",   "don",     "quixote",
                                 "quixtoe", "love",      "love song 1",    "lvoe",    "100",     "pure",
                                 "a",       "ab",        "abba",           "abbba",   "!!!",     "  ",
                                 "help",    "strawbery", "fields forever", "xyz",     "ea"};
  for (const char* q : queries) {
    for (uint32_t limit : {1u, 3u, 20u}) ExpectSameSearch(*pg, **lite, q, limit);
  }

  // PostgreSQL -> SQLite: the same state comes back.
  ASSERT_TRUE(pg->Apply(LogIndex(43), {Put(MakeSong("new", "Fresh Song"))}).ok());
  const std::string from_pg = tmp.Sub("from-postgres.dump");
  ASSERT_TRUE(DumpTo(*pg, from_pg).ok());
  auto lite2 = OpenSqliteStore(tmp.Sub("catalog2.db"));
  ASSERT_TRUE(lite2.ok());
  ASSERT_TRUE((*lite2)->Load(from_pg).ok());
  EXPECT_EQ((*lite2)->AppliedIndex().value(), LogIndex(43));
  EXPECT_EQ((*lite2)->ListSongs(all)->items, pg->ListSongs(all)->items);
  for (const char* q : {"fresh", "beatels", "love"}) ExpectSameSearch(*pg, **lite2, q, 5);
}

// The two stores stay in step through updates and deletes too (the vocabulary's counts decide
// which typo candidates exist).
TEST_F(PostgresStoreTest, SearchAgreesAfterUpdatesAndDeletes) {
  mocks::TempDir tmp;
  auto lite = OpenSqliteStore(tmp.Sub("catalog.db"));
  ASSERT_TRUE(lite.ok());
  auto pg = Open();
  ASSERT_NE(pg, nullptr);
  std::vector<std::vector<Mutation>> entries = {Library()};
  Mutation del;
  del.kind = Mutation::Kind::kDeleteSong;
  del.key = "b12";
  entries.push_back({del, Put(MakeSong("b01", "Yesterday Once More", "Carpenters"))});
  del.key = "b14";
  entries.push_back({del, Put(MakeSong("b15", "Beetles", "Nature Sounds"))});
  for (size_t i = 0; i < entries.size(); ++i) {
    ASSERT_TRUE(pg->Apply(LogIndex(i + 1), entries[i]).ok());
    ASSERT_TRUE((*lite)->Apply(LogIndex(i + 1), entries[i]).ok());
  }
  for (const char* q : {"beatles", "beatels", "yesterday", "carpenters", "strawberry", "beetles", "love"}) {
    for (uint32_t limit : {2u, 10u}) ExpectSameSearch(*pg, **lite, q, limit);
  }
  EXPECT_EQ(pg->Stats()->songs, (*lite)->Stats()->songs);
  EXPECT_EQ(pg->Stats()->bytes, (*lite)->Stats()->bytes);
}

}  // namespace
}  // namespace dispotify::catalog
