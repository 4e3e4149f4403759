#include "tests/node/catalog/metadata_store_conformance.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dispotify::catalog {

std::string MetadataStoreTargetName(const ::testing::TestParamInfo<MetadataStoreTarget>& info) {
  return info.param.name;
}

void MetadataStoreConformance::SetUp() {
  store_ = OpenFresh("main");
  ASSERT_NE(store_, nullptr);
}

void MetadataStoreConformance::TearDown() {
  store_.reset();
  if (GetParam().cleanup) {
    for (const auto& d : scratch_dirs_) GetParam().cleanup(d);
  }
}

std::unique_ptr<MetadataStore> MetadataStoreConformance::OpenFresh(const std::string& name) {
  const std::string path = dir_.Sub(name);
  ::mkdir(path.c_str(), 0755);
  scratch_dirs_.push_back(path);
  auto store = GetParam().factory(path);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

std::unique_ptr<MetadataStore> MetadataStoreConformance::Reopen(const std::string& name) {
  auto store = GetParam().reopen(dir_.Sub(name));
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

namespace {

Song MakeSong(std::string file_id, std::string title, std::string artist = "", std::string album = "") {
  Song s;
  s.file_id = std::move(file_id);
  s.title = std::move(title);
  s.artist = std::move(artist);
  s.album = std::move(album);
  s.file_name = s.file_id + ".mp3";
  s.content_type = "audio/mpeg";
  s.track = 3;
  s.year = 1999;
  s.duration_ms = 215000;
  s.size_bytes = 4000000;
  s.sha256 = std::string(64, 'c');
  s.created_at_ms = 1700000000000;
  CompleteSong(&s);  // as a store gives it back
  return s;
}

Mutation PutSong(Song s) {
  Mutation m;
  m.kind = Mutation::Kind::kPutSong;
  m.song = std::move(s);
  return m;
}
Mutation DeleteSong(std::string file_id) {
  Mutation m;
  m.kind = Mutation::Kind::kDeleteSong;
  m.key = std::move(file_id);
  return m;
}
Mutation PutReplica(std::string file_id, uint64_t node, ReplicaState state, int64_t at = 5) {
  Mutation m;
  m.kind = Mutation::Kind::kPutReplica;
  m.replica = Replica{std::move(file_id), NodeId(node), state, at};
  return m;
}
Mutation DeleteReplica(std::string file_id, uint64_t node) {
  Mutation m;
  m.kind = Mutation::Kind::kDeleteReplica;
  m.replica = Replica{std::move(file_id), NodeId(node), ReplicaState::kPending, 0};
  return m;
}
Mutation PutLock(Lock l) {
  Mutation m;
  m.kind = Mutation::Kind::kPutLock;
  m.lock = std::move(l);
  return m;
}
Mutation DeleteLock(std::string name) {
  Mutation m;
  m.kind = Mutation::Kind::kDeleteLock;
  m.key = std::move(name);
  return m;
}
Mutation PutSetting(std::string key, std::string value) {
  Mutation m;
  m.kind = Mutation::Kind::kPutSetting;
  m.key = std::move(key);
  m.value = std::move(value);
  return m;
}

#define ASSERT_OK(expr)                                     \
  do {                                                      \
    const ::dispotify::Status _s = (expr);                  \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s.ToString(); \
  } while (0)

std::vector<std::string> Ids(const std::vector<Song>& songs) {
  std::vector<std::string> ids;
  for (const auto& s : songs) ids.push_back(s.file_id);
  return ids;
}

SearchPage MustSearch(MetadataStore& store, const std::string& query, uint32_t limit = 20) {
  SearchRequest req;
  req.query = query;
  req.limit = limit;
  auto page = store.Search(req);
  EXPECT_TRUE(page.ok()) << "search '" << query << "': " << page.status().ToString();
  return page.ok() ? std::move(page).value() : SearchPage{};
}

bool Contains(const SearchPage& page, const std::string& file_id) {
  return std::any_of(page.items.begin(), page.items.end(),
                     [&](const Song& s) { return s.file_id == file_id; });
}

// The catalog the search tests run on.
std::vector<Song> SearchCatalog() {
  return {
      MakeSong("s01-hey-jude", "Hey Jude", "The Beatles", "Hey Jude"),
      MakeSong("s02-yesterday", "Yesterday", "The Beatles", "Help!"),
      MakeSong("s03-crazy-in-love", "Crazy in Love", "Beyoncé", "Dangerously in Love"),
      MakeSong("s04-ace-of-spades", "Ace of Spades", "Motörhead", "Ace of Spades"),
      MakeSong("s05-enter-sandman", "Enter Sandman", "Metallica", "Metallica"),
      MakeSong("s06-this-is-the-day", "This Is the Day", "The The", "Soul Mining"),
      MakeSong("s07-don-quixote", "Don Quixote", "Nik Kershaw", "The Riddle"),
      MakeSong("s08-one", "One", "U2", "Achtung Baby"),
      MakeSong("s09-gruppa-krovi", "Группа крови", "Кино", "Группа крови"),
      MakeSong("s10-gunjou-biyori", "群青日和", "東京事変", "教育"),
      MakeSong("s11-beat-it", "Beat It", "Michael Jackson", "Thriller"),
      MakeSong("s12-one-more-time", "One More Time", "Daft Punk", "Discovery"),
      MakeSong("s13-someone-like-you", "Someone Like You", "Adele", "21"),
      MakeSong("s14-drop-table", "'; DROP TABLE songs; --", "Bobby Tables", "Little"),
  };
}

class Seeded {
 public:
  explicit Seeded(MetadataStore& store) {
    std::vector<Mutation> muts;
    for (auto& s : SearchCatalog()) muts.push_back(PutSong(std::move(s)));
    ok = store.Apply(LogIndex(1), muts).ok();
  }
  bool ok = false;
};

// --- Apply and read back ---------------------------------------------------------------------------

TEST_P(MetadataStoreConformance, NewStoreIsEmpty) {
  auto index = store().AppliedIndex();
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(*index, LogIndex(0));
  auto stats = store().Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->songs, 0u);
  auto song = store().GetSong("nope");
  ASSERT_TRUE(song.ok());
  EXPECT_FALSE(song->has_value());
}

TEST_P(MetadataStoreConformance, ApplyAndReadBackEveryKind) {
  Song song = MakeSong("a1.B_c-9", "Título “unicode” ✓", "Ärtist", "Albüm 東京");
  song.file_name = "01 - Título.flac";
  song.content_type = "audio/flac";
  song.track = 4294967295u;
  song.year = 2024;
  song.duration_ms = 1234567890123ULL;
  song.size_bytes = (1ULL << 62) + 7;
  song.created_at_ms = -42;
  const Lock lock{"upload/a1.B_c-9", "node-3", 1700000005000, 0xFFFFFFFFFFFFFFF0ULL};
  ASSERT_OK(store().Apply(
      LogIndex(7), {PutSong(song), PutReplica("a1.B_c-9", 3, ReplicaState::kHealthy, 11),
                    PutReplica("a1.B_c-9", 0x8000000000000005ULL, ReplicaState::kCorrupt, 12), PutLock(lock),
                    PutSetting("replication_factor", "3"), PutSetting("bin", std::string("a\0b", 3))}));
  EXPECT_EQ(*store().AppliedIndex(), LogIndex(7));

  auto got = store().GetSong("a1.B_c-9");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, song);

  auto replicas = store().GetReplicas("a1.B_c-9");
  ASSERT_TRUE(replicas.ok());
  ASSERT_EQ(replicas->size(), 2u);
  std::set<uint64_t> nodes;
  for (const auto& r : *replicas) {
    nodes.insert(r.node.value());
    EXPECT_EQ(r.file_id, "a1.B_c-9");
    if (r.node == NodeId(3)) {
      EXPECT_EQ(r.state, ReplicaState::kHealthy);
      EXPECT_EQ(r.updated_at_ms, 11);
    } else {
      EXPECT_EQ(r.state, ReplicaState::kCorrupt);
      EXPECT_EQ(r.updated_at_ms, 12);
    }
  }
  EXPECT_EQ(nodes, (std::set<uint64_t>{3, 0x8000000000000005ULL}));

  auto got_lock = store().GetLock(lock.name);
  ASSERT_TRUE(got_lock.ok());
  ASSERT_TRUE(got_lock->has_value());
  EXPECT_EQ(**got_lock, lock);
  auto setting = store().GetSetting("replication_factor");
  ASSERT_TRUE(setting.ok());
  EXPECT_EQ(setting->value_or(""), "3");
  auto bin = store().GetSetting("bin");
  ASSERT_TRUE(bin.ok());
  EXPECT_EQ(bin->value_or(""), std::string("a\0b", 3));

  // Overwrites and deletes.
  song.title = "Renamed";
  ASSERT_OK(store().Apply(LogIndex(8), {PutSong(song), PutSetting("replication_factor", "5"),
                                        DeleteLock(lock.name), DeleteReplica("a1.B_c-9", 3)}));
  EXPECT_EQ((*store().GetSong("a1.B_c-9"))->title, "Renamed");
  EXPECT_EQ(store().GetSetting("replication_factor")->value_or(""), "5");
  EXPECT_FALSE(store().GetLock(lock.name)->has_value());
  EXPECT_EQ(store().GetReplicas("a1.B_c-9")->size(), 1u);
  EXPECT_FALSE(store().GetSetting("missing")->has_value());
  EXPECT_FALSE(store().GetLock("missing")->has_value());
}

TEST_P(MetadataStoreConformance, EmptyApplyRecordsTheIndex) {
  ASSERT_OK(store().Apply(LogIndex(3), {}));
  EXPECT_EQ(*store().AppliedIndex(), LogIndex(3));
}

TEST_P(MetadataStoreConformance, FailedApplyLeavesNothing) {
  ASSERT_OK(store().Apply(LogIndex(1), {PutSong(MakeSong("keep", "Keep Me"))}));
  for (const std::string& bad_id : {std::string(""), std::string(".."), std::string("a/b"),
                                    std::string("x\0y", 3), std::string(129, 'a')}) {
    Status st = store().Apply(LogIndex(2), {PutSong(MakeSong("fine", "Fine")), PutSetting("k", "v"),
                                            PutSong(MakeSong(bad_id, "Bad"))});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad_id;
  }
  EXPECT_EQ(store().Apply(LogIndex(2), {PutReplica("../x", 1, ReplicaState::kHealthy)}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store().Apply(LogIndex(2), {DeleteSong("a/b")}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*store().AppliedIndex(), LogIndex(1));
  EXPECT_FALSE(store().GetSong("fine")->has_value());
  EXPECT_FALSE(store().GetSetting("k")->has_value());
  EXPECT_TRUE(store().GetSong("keep")->has_value());
  EXPECT_EQ(store().Stats()->songs, 1u);
  EXPECT_TRUE(MustSearch(store(), "fine").items.empty());
  // The same index then applies normally.
  ASSERT_OK(store().Apply(LogIndex(2), {PutSong(MakeSong("fine", "Fine"))}));
  EXPECT_EQ(*store().AppliedIndex(), LogIndex(2));
}

TEST_P(MetadataStoreConformance, SettingsListByPrefixInKeyOrderAndDelete) {
  Mutation del;
  del.kind = Mutation::Kind::kDeleteSetting;
  del.key = "user/bob";
  ASSERT_OK(store().Apply(LogIndex(1),
                          {PutSetting("user/carol", "c"), PutSetting("user/alice", std::string("a\0", 2)),
                           PutSetting("user/bob", "b"), PutSetting("user", "bare"), PutSetting("usera", "x"),
                           PutSetting("token/1", "t")}));
  auto all = store().ListSettings("user/", "", 1000);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  using Rows = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(*all, (Rows{{"user/alice", std::string("a\0", 2)}, {"user/bob", "b"}, {"user/carol", "c"}}));
  // Keyset pages.
  auto first = store().ListSettings("user/", "", 2);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 2u);
  auto rest = store().ListSettings("user/", first->back().first, 2);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, (Rows{{"user/carol", "c"}}));
  EXPECT_EQ(store().ListSettings("user/", "", 0).status().code(), StatusCode::kInvalidArgument);

  ASSERT_OK(store().Apply(LogIndex(2), {del}));
  del.key = "user/nobody";  // deleting an absent key is a no-op
  ASSERT_OK(store().Apply(LogIndex(3), {del}));
  EXPECT_FALSE(store().GetSetting("user/bob")->has_value());
  EXPECT_EQ(store().ListSettings("user/", "", 1000)->size(), 2u);
  del.key = "";
  EXPECT_EQ(store().Apply(LogIndex(4), {del}).code(), StatusCode::kInvalidArgument);
}

TEST_P(MetadataStoreConformance, ReplayIsIdempotent) {
  ASSERT_OK(store().Apply(LogIndex(5), {PutSong(MakeSong("a", "Alpha")), PutSetting("k", "first"),
                                        PutReplica("a", 1, ReplicaState::kHealthy)}));
  // The same index again, even with other content, changes nothing; so does a lower index.
  ASSERT_OK(store().Apply(LogIndex(5), {PutSetting("k", "second"), DeleteSong("a")}));
  ASSERT_OK(store().Apply(LogIndex(4), {PutSetting("k", "third"), PutSong(MakeSong("b", "Beta"))}));
  EXPECT_EQ(*store().AppliedIndex(), LogIndex(5));
  EXPECT_EQ(store().GetSetting("k")->value_or(""), "first");
  EXPECT_TRUE(store().GetSong("a")->has_value());
  EXPECT_FALSE(store().GetSong("b")->has_value());
  auto stats = store().Stats();
  EXPECT_EQ(stats->songs, 1u);
  EXPECT_EQ(stats->replicas_healthy, 1u);
  ASSERT_OK(store().Apply(LogIndex(6), {PutSetting("k", "next")}));
  EXPECT_EQ(store().GetSetting("k")->value_or(""), "next");
}

TEST_P(MetadataStoreConformance, AppliedIndexSurvivesReopen) {
  ASSERT_OK(store().Apply(LogIndex(41), {PutSong(MakeSong("a", "Alpha"))}));
  ASSERT_OK(store().Apply(LogIndex(42), {PutSetting("k", "v")}));
  store_.reset();
  store_ = Reopen("main");
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(*store().AppliedIndex(), LogIndex(42));
  EXPECT_TRUE(store().GetSong("a")->has_value());
  EXPECT_EQ(store().GetSetting("k")->value_or(""), "v");
  EXPECT_EQ(MustSearch(store(), "alpha").items.size(), 1u);
  ASSERT_OK(store().Apply(LogIndex(42), {PutSetting("k", "replayed")}));
  EXPECT_EQ(store().GetSetting("k")->value_or(""), "v");
}

TEST_P(MetadataStoreConformance, DeleteSongCascadesReplicas) {
  ASSERT_OK(store().Apply(
      LogIndex(1), {PutSong(MakeSong("a", "Alpha")), PutSong(MakeSong("b", "Beta")),
                    PutReplica("a", 1, ReplicaState::kHealthy), PutReplica("a", 2, ReplicaState::kPending),
                    PutReplica("b", 1, ReplicaState::kHealthy)}));
  ASSERT_OK(store().Apply(LogIndex(2), {DeleteSong("a"), DeleteSong("never-existed")}));
  EXPECT_FALSE(store().GetSong("a")->has_value());
  EXPECT_TRUE(store().GetReplicas("a")->empty());
  EXPECT_EQ(store().GetReplicas("b")->size(), 1u);
  auto on1 = store().ReplicasOnNode(NodeId(1), "", 100);
  ASSERT_TRUE(on1.ok());
  ASSERT_EQ(on1->size(), 1u);
  EXPECT_EQ((*on1)[0].file_id, "b");
  auto stats = store().Stats();
  EXPECT_EQ(stats->songs, 1u);
  EXPECT_EQ(stats->replicas_healthy, 1u);
  EXPECT_EQ(stats->replicas_other, 0u);
  EXPECT_TRUE(MustSearch(store(), "alpha").items.empty());
}

TEST_P(MetadataStoreConformance, ReplicasOnNodePaging) {
  std::vector<Mutation> muts;
  std::vector<std::string> expected;
  for (int i = 0; i < 25; ++i) {
    char id[16];
    std::snprintf(id, sizeof(id), "f%03d", (i * 7) % 25);  // not in order
    muts.push_back(PutReplica(id, 7, ReplicaState::kHealthy));
    muts.push_back(PutReplica(id, 8, ReplicaState::kPending));
    expected.emplace_back(id);
  }
  std::sort(expected.begin(), expected.end());
  ASSERT_OK(store().Apply(LogIndex(1), muts));
  std::vector<std::string> seen;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    auto got = store().ReplicasOnNode(NodeId(7), after, 10);
    ASSERT_TRUE(got.ok());
    if (got->empty()) break;
    EXPECT_LE(got->size(), 10u);
    for (const auto& r : *got) {
      EXPECT_EQ(r.node, NodeId(7));
      EXPECT_EQ(r.state, ReplicaState::kHealthy);
      seen.push_back(r.file_id);
    }
    after = got->back().file_id;
  }
  EXPECT_EQ(seen, expected);
  EXPECT_TRUE(store().ReplicasOnNode(NodeId(9), "", 10)->empty());
  EXPECT_EQ(store().Stats()->replicas_healthy, 25u);
  EXPECT_EQ(store().Stats()->replicas_other, 25u);
}

TEST_P(MetadataStoreConformance, ListSongsPaging) {
  std::vector<Mutation> muts;
  std::vector<std::string> expected;
  for (int i = 0; i < 23; ++i) {
    const std::string id = "song-" + std::to_string((i * 5) % 23 + 100);
    muts.push_back(PutSong(MakeSong(id, "T " + id)));
    expected.push_back(id);
  }
  std::sort(expected.begin(), expected.end());
  ASSERT_OK(store().Apply(LogIndex(1), muts));
  std::vector<std::string> seen;
  ListRequest req;
  req.limit = 10;
  for (int page = 0; page < 5; ++page) {
    auto got = store().ListSongs(req);
    ASSERT_TRUE(got.ok());
    for (const auto& s : got->items) seen.push_back(s.file_id);
    if (got->next_after.empty()) break;
    req.after_file_id = got->next_after;
  }
  EXPECT_EQ(seen, expected);
  req.limit = 0;
  EXPECT_EQ(store().ListSongs(req).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(MetadataStoreConformance, StatsCountSongsBytesAndReplicas) {
  Song a = MakeSong("a", "Alpha");
  a.size_bytes = 100;
  Song b = MakeSong("b", "Beta");
  b.size_bytes = 250;
  ASSERT_OK(store().Apply(
      LogIndex(1), {PutSong(a), PutSong(b), PutReplica("a", 1, ReplicaState::kHealthy),
                    PutReplica("a", 2, ReplicaState::kMissing), PutReplica("b", 1, ReplicaState::kPending)}));
  auto stats = store().Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->songs, 2u);
  EXPECT_EQ(stats->bytes, 350u);
  EXPECT_EQ(stats->replicas_healthy, 1u);
  EXPECT_EQ(stats->replicas_other, 2u);
  a.size_bytes = 1000;  // replacing a song replaces its size
  ASSERT_OK(store().Apply(LogIndex(2), {PutSong(a), PutReplica("b", 1, ReplicaState::kHealthy)}));
  stats = store().Stats();
  EXPECT_EQ(stats->bytes, 1250u);
  EXPECT_EQ(stats->replicas_healthy, 2u);
  EXPECT_EQ(stats->replicas_other, 1u);
}

// --- Search -----------------------------------------------------------------------------------------

TEST_P(MetadataStoreConformance, SearchIsCaseAndAccentInsensitive) {
  ASSERT_TRUE(Seeded(store()).ok);
  EXPECT_TRUE(Contains(MustSearch(store(), "beyonce"), "s03-crazy-in-love"));
  EXPECT_TRUE(Contains(MustSearch(store(), "BEYONCÉ"), "s03-crazy-in-love"));
  EXPECT_TRUE(Contains(MustSearch(store(), "MOTORHEAD"), "s04-ace-of-spades"));
  EXPECT_TRUE(Contains(MustSearch(store(), "motörhead"), "s04-ace-of-spades"));
  EXPECT_TRUE(Contains(MustSearch(store(), "hEy JuDe"), "s01-hey-jude"));
}

TEST_P(MetadataStoreConformance, SearchMatchesPrefixes) {
  ASSERT_TRUE(Seeded(store()).ok);
  const SearchPage page = MustSearch(store(), "beat");
  EXPECT_TRUE(Contains(page, "s01-hey-jude"));
  EXPECT_TRUE(Contains(page, "s02-yesterday"));
  EXPECT_TRUE(Contains(page, "s11-beat-it"));
  EXPECT_TRUE(Contains(MustSearch(store(), "metal"), "s05-enter-sandman"));
  EXPECT_TRUE(Contains(MustSearch(store(), "yester"), "s02-yesterday"));
}

TEST_P(MetadataStoreConformance, SearchToleratesATypo) {
  ASSERT_TRUE(Seeded(store()).ok);
  const SearchPage beatels = MustSearch(store(), "beatels");
  EXPECT_TRUE(Contains(beatels, "s01-hey-jude"));
  EXPECT_TRUE(Contains(beatels, "s02-yesterday"));
  EXPECT_TRUE(Contains(MustSearch(store(), "metalica"), "s05-enter-sandman"));
  EXPECT_TRUE(Contains(MustSearch(store(), "yesterdya"), "s02-yesterday"));
  EXPECT_TRUE(MustSearch(store(), "qwzxvbnm").items.empty());
}

TEST_P(MetadataStoreConformance, SearchKeepsCommonWordsInNames) {
  ASSERT_TRUE(Seeded(store()).ok);
  const SearchPage the_the = MustSearch(store(), "The The");
  ASSERT_FALSE(the_the.items.empty());
  EXPECT_EQ(the_the.items[0].file_id, "s06-this-is-the-day");
  const SearchPage don = MustSearch(store(), "Don Quixote");
  ASSERT_FALSE(don.items.empty());
  EXPECT_EQ(don.items[0].file_id, "s07-don-quixote");
}

TEST_P(MetadataStoreConformance, SearchFindsShortNames) {
  ASSERT_TRUE(Seeded(store()).ok);
  const SearchPage u2 = MustSearch(store(), "U2");
  ASSERT_FALSE(u2.items.empty());
  EXPECT_EQ(u2.items[0].file_id, "s08-one");
  EXPECT_TRUE(Contains(MustSearch(store(), "u2"), "s08-one"));
}

TEST_P(MetadataStoreConformance, SearchFindsNonLatinScripts) {
  ASSERT_TRUE(Seeded(store()).ok);
  EXPECT_TRUE(Contains(MustSearch(store(), "Кино"), "s09-gruppa-krovi"));
  EXPECT_TRUE(Contains(MustSearch(store(), "кино"), "s09-gruppa-krovi"));
  EXPECT_TRUE(Contains(MustSearch(store(), "крови"), "s09-gruppa-krovi"));
  EXPECT_TRUE(Contains(MustSearch(store(), "東京事変"), "s10-gunjou-biyori"));
  EXPECT_TRUE(Contains(MustSearch(store(), "群青日和"), "s10-gunjou-biyori"));
  EXPECT_TRUE(MustSearch(store(), "東京事変").items.size() == 1);
}

TEST_P(MetadataStoreConformance, SearchRanksExactThenPrefixThenSubstring) {
  ASSERT_TRUE(Seeded(store()).ok);
  // "one": the title "One" exactly, then "One More Time" (word prefix), then "Someone Like You".
  const SearchPage page = MustSearch(store(), "one");
  const auto ids = Ids(page.items);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids[0], "s08-one");
  auto pos = [&](const std::string& id) { return std::find(ids.begin(), ids.end(), id) - ids.begin(); };
  EXPECT_LT(pos("s12-one-more-time"), pos("s13-someone-like-you"));
  EXPECT_LT(pos("s13-someone-like-you"), static_cast<long>(ids.size()));
  // Exact whole field beats a substring even when the substring match has the smaller file_id.
  ASSERT_OK(store().Apply(LogIndex(2), {PutSong(MakeSong("a00-glovers", "Glovers Lane")),
                                        PutSong(MakeSong("z99-love", "Love"))}));
  const auto love = Ids(MustSearch(store(), "love").items);
  ASSERT_GE(love.size(), 3u);
  EXPECT_EQ(love[0], "z99-love");
  EXPECT_EQ(love.back(), "a00-glovers");
}

TEST_P(MetadataStoreConformance, SearchTiesAreOrderedByFileId) {
  std::vector<Mutation> muts;
  for (const char* id : {"m5", "m1", "m9", "m3", "m7"}) muts.push_back(PutSong(MakeSong(id, "Same Title")));
  ASSERT_OK(store().Apply(LogIndex(1), muts));
  EXPECT_EQ(Ids(MustSearch(store(), "same title").items),
            (std::vector<std::string>{"m1", "m3", "m5", "m7", "m9"}));
  EXPECT_EQ(Ids(MustSearch(store(), "titl").items), (std::vector<std::string>{"m1", "m3", "m5", "m7", "m9"}));
}

// 57 songs over three buckets of "zephyr": exact (title "Zephyr"), word prefix, substring.
std::vector<Mutation> PagingCatalog() {
  std::vector<Mutation> muts;
  for (int i = 0; i < 57; ++i) {
    const std::string id = "p" + std::to_string((i * 37) % 57 + 1000);
    std::string title = i < 7    ? "Zephyr"
                        : i < 33 ? "Zephyrus Rising " + std::to_string(i)
                                 : "Antizephyr " + std::to_string(i);
    muts.push_back(PutSong(MakeSong(id, title, "Paging Band", "Paging Album")));
  }
  return muts;
}

TEST_P(MetadataStoreConformance, SearchCursorPagination) {
  ASSERT_OK(store().Apply(LogIndex(1), PagingCatalog()));
  for (int round = 0; round < 2; ++round) {  // the same pages twice: stable
    std::vector<std::string> all;
    std::set<std::string> unique;
    SearchRequest req;
    req.query = "zephyr";
    req.limit = 10;
    int pages = 0;
    while (true) {
      auto page = store().Search(req);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      ++pages;
      ASSERT_LE(pages, 10);
      EXPECT_EQ(page->total, 57u);
      for (const auto& s : page->items) {
        EXPECT_TRUE(unique.insert(s.file_id).second) << "duplicate " << s.file_id;
        all.push_back(s.file_id);
      }
      if (page->next_cursor.empty()) {
        EXPECT_LE(page->items.size(), 10u);
        break;
      }
      EXPECT_EQ(page->items.size(), 10u);
      req.cursor = page->next_cursor;
    }
    EXPECT_EQ(pages, 6);
    ASSERT_EQ(all.size(), 57u);
    // Ranked by bucket, then file_id within each bucket.
    std::vector<std::string> exact(all.begin(), all.begin() + 7);
    std::vector<std::string> prefix(all.begin() + 7, all.begin() + 33);
    std::vector<std::string> substring(all.begin() + 33, all.end());
    EXPECT_TRUE(std::is_sorted(exact.begin(), exact.end()));
    EXPECT_TRUE(std::is_sorted(prefix.begin(), prefix.end()));
    EXPECT_TRUE(std::is_sorted(substring.begin(), substring.end()));
    for (const auto& id : exact) EXPECT_EQ((*store().GetSong(id))->title, "Zephyr");
    for (const auto& id : prefix) EXPECT_EQ((*store().GetSong(id))->title.rfind("Zephyrus", 0), 0u);
    for (const auto& id : substring) EXPECT_EQ((*store().GetSong(id))->title.rfind("Antizephyr", 0), 0u);
  }
}

TEST_P(MetadataStoreConformance, SearchOffsetPaginationMatchesCursor) {
  ASSERT_OK(store().Apply(LogIndex(1), PagingCatalog()));
  std::vector<std::string> by_cursor;
  SearchRequest req;
  req.query = "zephyr";
  req.limit = 10;
  while (true) {
    auto page = store().Search(req);
    ASSERT_TRUE(page.ok());
    for (const auto& s : page->items) by_cursor.push_back(s.file_id);
    if (page->next_cursor.empty()) break;
    req.cursor = page->next_cursor;
  }
  std::vector<std::string> by_offset;
  for (uint32_t offset = 0; offset < 70; offset += 10) {
    SearchRequest r;
    r.query = "zephyr";
    r.limit = 10;
    r.offset = offset;
    auto page = store().Search(r);
    ASSERT_TRUE(page.ok());
    for (const auto& s : page->items) by_offset.push_back(s.file_id);
  }
  EXPECT_EQ(by_offset, by_cursor);
}

TEST_P(MetadataStoreConformance, SearchLimitBounds) {
  ASSERT_TRUE(Seeded(store()).ok);
  SearchRequest req;
  req.query = "the";
  req.limit = 0;
  EXPECT_EQ(store().Search(req).status().code(), StatusCode::kInvalidArgument);
  req.limit = 101;
  EXPECT_EQ(store().Search(req).status().code(), StatusCode::kInvalidArgument);
  req.limit = 100;
  EXPECT_TRUE(store().Search(req).ok());
  req.limit = 1;
  auto one = store().Search(req);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->items.size(), 1u);
  EXPECT_FALSE(one->next_cursor.empty());
  EXPECT_GE(one->total, 4u);
}

TEST_P(MetadataStoreConformance, SearchEmptyAndGarbageQueries) {
  ASSERT_TRUE(Seeded(store()).ok);
  SearchRequest req;
  for (const char* q : {"", "   ", "\t\n"}) {
    req.query = q;
    EXPECT_EQ(store().Search(req).status().code(), StatusCode::kInvalidArgument) << "'" << q << "'";
  }
  for (const char* q : {"!!!", "%", "_", "*", "\"", "()", "-", ".", "&&||"}) {
    req.query = q;
    auto page = store().Search(req);
    ASSERT_TRUE(page.ok()) << q << ": " << page.status().ToString();
    EXPECT_TRUE(page->items.empty()) << q;
    EXPECT_EQ(page->total, 0u) << q;
  }
  req.query = "beatles";
  req.cursor = "garbage";
  EXPECT_EQ(store().Search(req).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(MetadataStoreConformance, SearchVeryLongQueryIsBounded) {
  ASSERT_TRUE(Seeded(store()).ok);
  SearchRequest req;
  req.query = std::string(100000, 'a');
  EXPECT_EQ(store().Search(req).status().code(), StatusCode::kInvalidArgument);
  req.query.clear();
  for (int i = 0; i < 60; ++i) req.query += "ab ";
  EXPECT_EQ(store().Search(req).status().code(), StatusCode::kInvalidArgument);
  req.query = "hey jude the beatles hey jude hey jude the beatles hey";  // long but within bounds
  auto page = store().Search(req);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
}

TEST_P(MetadataStoreConformance, SearchTreatsSqlAndFtsSyntaxAsText) {
  ASSERT_TRUE(Seeded(store()).ok);
  for (const char* q : {"'; DROP TABLE songs; --", "\" OR 1=1 --", "Robert'); DROP TABLE songs;--",
                        "beatles' OR '1'='1", "NEAR(beatles jude)", "beat*", "title:jude", "jude AND NOT hey",
                        "^hey", "hey OR", "\\x00", "%' --"}) {
    SearchRequest req;
    req.query = q;
    auto page = store().Search(req);
    ASSERT_TRUE(page.ok()) << q << ": " << page.status().ToString();
  }
  EXPECT_EQ(store().Stats()->songs, SearchCatalog().size());
  EXPECT_TRUE(Contains(MustSearch(store(), "drop table"), "s14-drop-table"));
  EXPECT_TRUE(Contains(MustSearch(store(), "'; DROP TABLE songs; --"), "s14-drop-table"));
}

TEST_P(MetadataStoreConformance, SearchFollowsUpdatesAndDeletes) {
  ASSERT_TRUE(Seeded(store()).ok);
  Song renamed = SearchCatalog()[0];
  renamed.title = "Let It Be";
  renamed.album = "Let It Be";
  renamed.file_name = "let-it-be.mp3";
  ASSERT_OK(store().Apply(LogIndex(2), {PutSong(renamed), DeleteSong("s05-enter-sandman")}));
  EXPECT_FALSE(Contains(MustSearch(store(), "jude"), "s01-hey-jude"));
  EXPECT_TRUE(Contains(MustSearch(store(), "let it be"), "s01-hey-jude"));
  EXPECT_FALSE(Contains(MustSearch(store(), "metallica"), "s05-enter-sandman"));
  EXPECT_FALSE(Contains(MustSearch(store(), "metalica"), "s05-enter-sandman"));
}

// --- Dump / Load --------------------------------------------------------------------------------------

Status DumpToFile(MetadataStore& store, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  Status st = store.Dump([&out](std::string_view chunk) {
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    return out ? Status::Ok() : Status::IoError("write failed");
  });
  out.close();
  return st;
}

std::vector<Song> AllSongs(MetadataStore& store) {
  std::vector<Song> out;
  ListRequest req;
  req.limit = 1000;
  while (true) {
    auto page = store.ListSongs(req);
    EXPECT_TRUE(page.ok());
    if (!page.ok()) break;
    out.insert(out.end(), page->items.begin(), page->items.end());
    if (page->next_after.empty()) break;
    req.after_file_id = page->next_after;
  }
  return out;
}

TEST_P(MetadataStoreConformance, DumpThenLoadGivesEqualContent) {
  ASSERT_TRUE(Seeded(store()).ok);
  const Lock lock{"rebalance", "node-2", 1700000009999, 77};
  ASSERT_OK(store().Apply(
      LogIndex(42), {PutReplica("s01-hey-jude", 1, ReplicaState::kHealthy, 3),
                     PutReplica("s01-hey-jude", 2, ReplicaState::kMissing, 4),
                     PutReplica("s03-crazy-in-love", 0x8000000000000001ULL, ReplicaState::kPending, 5),
                     PutLock(lock), PutSetting("replication_factor", "3"), PutSetting("members", "1,2,3")}));
  const std::string dump = dir().Sub("catalog.dump");
  ASSERT_OK(DumpToFile(store(), dump));

  auto other = OpenFresh("other");
  ASSERT_NE(other, nullptr);
  // Whatever the target held before is replaced.
  ASSERT_OK(other->Apply(LogIndex(99), {PutSong(MakeSong("stale", "Stale Song")), PutSetting("old", "x")}));
  ASSERT_OK(other->Load(dump));
  EXPECT_EQ(*other->AppliedIndex(), LogIndex(42));
  EXPECT_EQ(AllSongs(*other), AllSongs(store()));
  EXPECT_FALSE(other->GetSong("stale")->has_value());
  EXPECT_FALSE(other->GetSetting("old")->has_value());
  for (const auto& s : SearchCatalog())
    EXPECT_EQ(*other->GetReplicas(s.file_id), *store().GetReplicas(s.file_id));
  EXPECT_EQ(**other->GetLock("rebalance"), lock);
  EXPECT_EQ(other->GetSetting("members")->value_or(""), "1,2,3");
  EXPECT_EQ(other->GetSetting("replication_factor")->value_or(""), "3");
  auto a = store().Stats();
  auto b = other->Stats();
  EXPECT_EQ(a->songs, b->songs);
  EXPECT_EQ(a->bytes, b->bytes);
  EXPECT_EQ(a->replicas_healthy, b->replicas_healthy);
  EXPECT_EQ(a->replicas_other, b->replicas_other);
  // Search works on the loaded store, typos included.
  EXPECT_TRUE(Contains(MustSearch(*other, "beyonce"), "s03-crazy-in-love"));
  EXPECT_TRUE(Contains(MustSearch(*other, "metalica"), "s05-enter-sandman"));
  EXPECT_EQ(Ids(MustSearch(*other, "one").items), Ids(MustSearch(store(), "one").items));
  // A dump of the loaded store is the same state again; applying continues after the index.
  ASSERT_OK(other->Apply(LogIndex(42), {PutSetting("members", "replayed")}));
  EXPECT_EQ(other->GetSetting("members")->value_or(""), "1,2,3");
  ASSERT_OK(other->Apply(LogIndex(43), {DeleteSong("s01-hey-jude")}));
  EXPECT_TRUE(other->GetReplicas("s01-hey-jude")->empty());
}

TEST_P(MetadataStoreConformance, LoadOfACorruptDumpChangesNothing) {
  ASSERT_TRUE(Seeded(store()).ok);
  const std::string dump = dir().Sub("catalog.dump");
  ASSERT_OK(DumpToFile(store(), dump));
  std::string bytes;
  {
    std::ifstream in(dump, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_GT(bytes.size(), 100u);
  auto other = OpenFresh("other");
  ASSERT_OK(other->Apply(LogIndex(5), {PutSong(MakeSong("keep", "Keep Me"))}));
  for (const std::string& bad : {bytes.substr(0, bytes.size() / 2), bytes.substr(0, bytes.size() - 1),
                                 std::string(bytes).replace(bytes.size() / 2, 1, "\xFF")}) {
    {
      std::ofstream out(dump, std::ios::binary | std::ios::trunc);
      out << bad;
    }
    EXPECT_EQ(other->Load(dump).code(), StatusCode::kCorruption);
    EXPECT_EQ(*other->AppliedIndex(), LogIndex(5));
    EXPECT_TRUE(other->GetSong("keep")->has_value());
    EXPECT_FALSE(other->GetSong("s01-hey-jude")->has_value());
    EXPECT_EQ(other->Stats()->songs, 1u);
    EXPECT_TRUE(Contains(MustSearch(*other, "keep"), "keep"));
  }
  EXPECT_NE(other->Load(dir().Sub("missing.dump")).code(), StatusCode::kOk);
}

// --- Concurrency --------------------------------------------------------------------------------------

TEST_P(MetadataStoreConformance, ConcurrentReadsDuringApply) {
  constexpr int kEntries = 1000;
  std::atomic<bool> done{false};
  std::atomic<int> read_errors{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      auto index = store().AppliedIndex();
      if (!index.ok() || index->value() < last) ++read_errors;
      if (index.ok()) last = index->value();
      auto song = store().GetSong("c" + std::to_string(last));
      if (!song.ok() || (last > 0 && !song->has_value())) ++read_errors;
      SearchRequest req;
      req.query = "concurrent";
      req.limit = 5;
      auto page = store().Search(req);
      if (!page.ok() || (last > 0 && page->items.empty())) ++read_errors;
      ListRequest list;
      list.limit = 10;
      if (!store().ListSongs(list).ok()) ++read_errors;
      if (!store().Stats().ok()) ++read_errors;
      ++reads;
    }
  });
  Status failed;
  for (int i = 1; i <= kEntries && failed.ok(); ++i) {
    failed =
        store().Apply(LogIndex(static_cast<uint64_t>(i)),
                      {PutSong(MakeSong("c" + std::to_string(i), "Concurrent Song " + std::to_string(i))),
                       PutSetting("last", std::to_string(i))});
  }
  done.store(true);
  reader.join();
  ASSERT_OK(failed);
  EXPECT_EQ(read_errors.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(*store().AppliedIndex(), LogIndex(kEntries));
  EXPECT_EQ(store().Stats()->songs, static_cast<uint64_t>(kEntries));
}

// --- The library model (node/catalog/library.h) ----------------------------------------------------

Song Track(std::string file_id, std::string title, std::string artist, std::string album, uint32_t disc,
           uint32_t track, uint32_t year, int64_t created_at_ms, std::string album_artist = "",
           bool compilation = false, std::string genre = "") {
  Song s = MakeSong(std::move(file_id), std::move(title), std::move(artist), std::move(album));
  s.album_artist = std::move(album_artist);
  s.compilation = compilation;
  s.genre = std::move(genre);
  s.disc = disc;
  s.track = track;
  s.year = year;
  s.duration_ms = 1000 * track;
  s.created_at_ms = created_at_ms;
  CompleteSong(&s);
  return s;
}

std::vector<AlbumSummary> AllAlbums(MetadataStore& store, AlbumSort sort, uint32_t limit,
                                    std::optional<std::string> artist = std::nullopt, int* pages = nullptr) {
  std::vector<AlbumSummary> out;
  AlbumListRequest req;
  req.sort = sort;
  req.limit = limit;
  req.artist = std::move(artist);
  for (int page = 0; page < 1000; ++page) {
    auto got = store.ListAlbums(req);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) break;
    EXPECT_LE(got->items.size(), limit);
    out.insert(out.end(), got->items.begin(), got->items.end());
    if (pages != nullptr) *pages = page + 1;
    if (got->next_after.empty()) break;
    EXPECT_EQ(got->items.size(), limit) << "only the last page is short";
    req.after = got->next_after;
  }
  return out;
}

std::vector<ArtistSummary> AllArtists(MetadataStore& store, uint32_t limit) {
  std::vector<ArtistSummary> out;
  ArtistListRequest req;
  req.limit = limit;
  for (int page = 0; page < 1000; ++page) {
    auto got = store.ListArtists(req);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) break;
    out.insert(out.end(), got->items.begin(), got->items.end());
    if (got->next_after.empty()) break;
    req.after = got->next_after;
  }
  return out;
}

std::vector<std::string> Titles(const std::vector<AlbumSummary>& albums) {
  std::vector<std::string> out;
  for (const auto& a : albums) out.push_back(a.title);
  return out;
}

// A small library with the tag cases the album model must get right.
std::vector<Mutation> LibrarySongs() {
  return {
      // One album despite case and accents in the tags; max year, newest song, summed duration.
      PutSong(Track("ar-1", "Come Together", "The Beatles", "Abbey Road", 1, 1, 1969, 100)),
      PutSong(Track("ar-2", "Something", "the beatles", "ABBEY ROAD", 1, 2, 1969, 300)),
      PutSong(Track("ar-3", "Her Majesty", "The Béatles", "Abbey Road!", 1, 17, 1970, 200)),
      // A compilation: many artists, one album under "Various Artists".
      PutSong(Track("now-1", "Like a Prayer", "Madonna", "Now 1", 1, 1, 1989, 50, "", true)),
      PutSong(Track("now-2", "Kiss", "Prince", "Now 1", 1, 2, 1986, 60, "", true)),
      // A tagged album artist wins over the track artists; disc then track order; genres.
      PutSong(Track("dbl-4", "B2", "Guest", "Double", 2, 2, 2001, 10, "Band", false, "Rock")),
      PutSong(Track("dbl-3", "B1", "Band", "Double", 2, 1, 2001, 11, "Band", false, "Pop")),
      PutSong(Track("dbl-2", "A2", "Band", "Double", 1, 2, 2001, 12, "Band", false, "Rock")),
      PutSong(Track("dbl-1", "A1", "Band", "Double", 1, 1, 2001, 13, "Band")),
      PutSong(Track("solo-1", "Solo", "Band", "Zebra", 0, 0, 0, 14)),
  };
}

TEST_P(MetadataStoreConformance, AlbumsJoinFoldedTagsAndSummariseTheirSongs) {
  ASSERT_OK(store().Apply(LogIndex(1), LibrarySongs()));
  const auto albums = AllAlbums(store(), AlbumSort::kName, 50);
  ASSERT_EQ(Titles(albums), (std::vector<std::string>{"ABBEY ROAD", "Double", "Now 1", "Zebra"}));
  const AlbumSummary& abbey = albums[0];
  EXPECT_EQ(abbey.album_id, AlbumIdOf("The Beatles", "Abbey Road"));
  EXPECT_EQ(abbey.album_artist,
            "The Beatles");  // the smallest of "The Beatles", "the beatles", "The Béatles"
  EXPECT_EQ(abbey.year, 1970u);
  EXPECT_EQ(abbey.song_count, 3u);
  EXPECT_EQ(abbey.duration_ms, 20000u);
  EXPECT_EQ(abbey.created_at_ms, 300);
  EXPECT_EQ(albums[2].album_artist, "Various Artists");
  EXPECT_EQ(albums[2].song_count, 2u);

  auto detail = store().GetAlbum(AlbumIdOf("Band", "Double"));
  ASSERT_TRUE(detail.ok()) << detail.status().ToString();
  ASSERT_TRUE(detail->has_value());
  EXPECT_EQ((*detail)->summary, albums[1]);
  EXPECT_EQ(Ids((*detail)->songs), (std::vector<std::string>{"dbl-1", "dbl-2", "dbl-3", "dbl-4"}));
  EXPECT_EQ((*detail)->genres, (std::vector<std::string>{"Pop", "Rock"}));
  const Song& guest = (*detail)->songs[3];
  EXPECT_EQ(guest.artist, "Guest");
  EXPECT_EQ(guest.album_artist, "Band");
  EXPECT_EQ(guest.disc, 2u);
  EXPECT_EQ(guest.genre, "Rock");
  EXPECT_EQ(guest.album_id, AlbumIdOf("Band", "Double"));
  auto now = store().GetSong("now-2");
  ASSERT_TRUE(now.ok() && now->has_value());
  EXPECT_TRUE((*now)->compilation);
  EXPECT_EQ((*now)->album_artist, "Various Artists");

  auto missing = store().GetAlbum("0000000000000000");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(store().GetAlbum("not-an-id").status().code(), StatusCode::kInvalidArgument);
}

TEST_P(MetadataStoreConformance, AlbumListingsAreOrderedAndFilteredByArtist) {
  ASSERT_OK(store().Apply(LogIndex(1), LibrarySongs()));
  EXPECT_EQ(Titles(AllAlbums(store(), AlbumSort::kYear, 50)),
            (std::vector<std::string>{"Double", "Now 1", "ABBEY ROAD", "Zebra"}));
  EXPECT_EQ(Titles(AllAlbums(store(), AlbumSort::kRecent, 50)),
            (std::vector<std::string>{"ABBEY ROAD", "Now 1", "Zebra", "Double"}));
  EXPECT_EQ(Titles(AllAlbums(store(), AlbumSort::kName, 50, "Band")),
            (std::vector<std::string>{"Double", "Zebra"}));
  EXPECT_EQ(Titles(AllAlbums(store(), AlbumSort::kRecent, 1, "Band")),
            (std::vector<std::string>{"Zebra", "Double"}));
  EXPECT_TRUE(AllAlbums(store(), AlbumSort::kName, 50, "band").empty()) << "the artist filter is exact";
  const auto artists = AllArtists(store(), 50);
  ASSERT_EQ(artists.size(), 3u);
  EXPECT_EQ(artists[0], (ArtistSummary{"Band", 2, 5}));
  EXPECT_EQ(artists[1], (ArtistSummary{"The Beatles", 1, 3}));
  EXPECT_EQ(artists[2], (ArtistSummary{"Various Artists", 1, 2}));
  EXPECT_EQ(AllArtists(store(), 1), artists);
}

// Keyset pages walk each order exactly once, whatever the page size.
TEST_P(MetadataStoreConformance, LibraryPagingCoversEveryAlbumOnce) {
  std::vector<Mutation> songs;
  for (int i = 0; i < 60; ++i) {
    // 20 artists, 3 albums each; several albums share a year, a title or a creation time.
    const std::string artist = "Artist " + std::string(1, static_cast<char>('A' + i % 20));
    const std::string album = "Album " + std::to_string(i % 7) + (i % 3 == 0 ? "" : " Live");
    songs.push_back(PutSong(Track("p" + std::to_string(i), "T", artist, album + " " + std::to_string(i / 20),
                                  1, 1, static_cast<uint32_t>(1990 + i % 4), 1000 + i % 5)));
  }
  ASSERT_OK(store().Apply(LogIndex(1), songs));
  for (AlbumSort sort : {AlbumSort::kName, AlbumSort::kYear, AlbumSort::kRecent}) {
    const auto all = AllAlbums(store(), sort, 1000);
    ASSERT_EQ(all.size(), 60u);
    for (uint32_t limit : {1u, 7u, 59u, 60u}) {
      int pages = 0;
      EXPECT_EQ(AllAlbums(store(), sort, limit, std::nullopt, &pages), all)
          << "sort " << static_cast<int>(sort) << " limit " << limit;
      EXPECT_EQ(pages, (60 + static_cast<int>(limit) - 1) / static_cast<int>(limit));
    }
    for (size_t i = 1; i < all.size(); ++i) {
      const auto& a = all[i - 1];
      const auto& b = all[i];
      switch (sort) {
        case AlbumSort::kName:
          EXPECT_LE(std::make_pair(FoldKey(a.title), a.album_id),
                    std::make_pair(FoldKey(b.title), b.album_id));
          break;
        case AlbumSort::kYear:
          EXPECT_TRUE(a.year > b.year ||
                      (a.year == b.year && std::make_pair(FoldKey(a.title), a.album_id) <
                                               std::make_pair(FoldKey(b.title), b.album_id)));
          break;
        case AlbumSort::kRecent:
          EXPECT_TRUE(std::make_pair(a.created_at_ms, a.album_id) >
                      std::make_pair(b.created_at_ms, b.album_id));
          break;
      }
    }
  }
  const auto artists = AllArtists(store(), 1000);
  ASSERT_EQ(artists.size(), 20u);
  for (uint32_t limit : {1u, 3u, 19u}) EXPECT_EQ(AllArtists(store(), limit), artists);
  for (const auto& a : artists) {
    EXPECT_EQ(a.album_count, 3u);
    EXPECT_EQ(a.song_count, 3u);
    EXPECT_EQ(AllAlbums(store(), AlbumSort::kYear, 2, a.name).size(), 3u);
  }
}

TEST_P(MetadataStoreConformance, AlbumsFollowUpdatesAndDeletes) {
  ASSERT_OK(store().Apply(LogIndex(1), LibrarySongs()));
  // A song retagged into another album leaves its old one; the last song's delete removes it.
  ASSERT_OK(store().Apply(LogIndex(2),
                          {PutSong(Track("solo-1", "Solo", "Band", "Double", 3, 1, 2005, 99, "Band"))}));
  auto albums = AllAlbums(store(), AlbumSort::kName, 50);
  EXPECT_EQ(Titles(albums), (std::vector<std::string>{"ABBEY ROAD", "Double", "Now 1"}));
  EXPECT_EQ(albums[1].song_count, 5u);
  EXPECT_EQ(albums[1].year, 2005u);
  EXPECT_EQ(albums[1].created_at_ms, 99);
  ASSERT_OK(store().Apply(LogIndex(3), {DeleteSong("now-1"), DeleteSong("now-2"), DeleteSong("ar-2")}));
  albums = AllAlbums(store(), AlbumSort::kName, 50);
  EXPECT_EQ(Titles(albums), (std::vector<std::string>{"Abbey Road", "Double"}));
  EXPECT_EQ(albums[0].song_count, 2u);
  EXPECT_EQ(albums[0].created_at_ms, 200);
  auto gone = store().GetAlbum(AlbumIdOf("Various Artists", "Now 1"));
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  EXPECT_EQ(AllArtists(store(), 50).size(), 2u);
}

// Covers (schema 4): a song keeps its cover; an album shows the cover of its first song in album
// order that has one, and follows updates and deletes; SongWithCover finds a song by its cover;
// a dump carries them.
TEST_P(MetadataStoreConformance, AlbumsShowTheCoverOfTheirFirstSongWithOne) {
  const std::string red(64, 'a'), blue(64, 'b');
  auto with_cover = [](Song s, const std::string& cover) {
    s.cover = cover;
    return s;
  };
  ASSERT_OK(store().Apply(LogIndex(1), LibrarySongs()));
  ASSERT_OK(store().Apply(
      LogIndex(2),
      {PutSong(with_cover(Track("dbl-3", "B1", "Band", "Double", 2, 1, 2001, 11, "Band", false, "Pop"), red)),
       PutSong(with_cover(Track("dbl-4", "B2", "Guest", "Double", 2, 2, 2001, 10, "Band", false, "Rock"),
                          blue))}));
  auto id = [](std::string_view artist, std::string_view album) { return AlbumIdOf(artist, album); };
  auto cover_of = [&](const std::string& album_id) -> std::string {
    auto got = store().GetAlbum(album_id);
    EXPECT_TRUE(got.ok() && got->has_value());
    return got.ok() && got->has_value() ? (*got)->summary.cover : "?";
  };
  EXPECT_EQ(cover_of(id("Band", "Double")), red) << "disc 2 track 1 comes before disc 2 track 2";
  EXPECT_EQ(cover_of(id("The Beatles", "Abbey Road")), "");
  auto listed = AllAlbums(store(), AlbumSort::kName, 50);
  ASSERT_EQ(listed.size(), 4u);
  EXPECT_EQ(listed[1].cover, red);
  EXPECT_EQ(listed[0].cover, "");
  EXPECT_EQ(AllAlbums(store(), AlbumSort::kRecent, 1, "Band")[1].cover, red);

  auto song = store().GetSong("dbl-4");
  ASSERT_TRUE(song.ok() && song->has_value());
  EXPECT_EQ((*song)->cover, blue);
  auto found = store().SongWithCover(blue);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->file_id, "dbl-4");
  EXPECT_FALSE(store().SongWithCover(std::string(64, 'f'))->has_value());
  EXPECT_FALSE(store().SongWithCover("")->has_value()) << "songs without a cover are not found by \"\"";

  // An earlier track gains a cover: it becomes the album's. Its delete hands it back.
  ASSERT_OK(store().Apply(
      LogIndex(3),
      {PutSong(with_cover(Track("dbl-1", "A1", "Band", "Double", 1, 1, 2001, 13, "Band"), blue))}));
  EXPECT_EQ(cover_of(id("Band", "Double")), blue);
  ASSERT_OK(store().Apply(LogIndex(4), {DeleteSong("dbl-1"), DeleteSong("dbl-3")}));
  EXPECT_EQ(cover_of(id("Band", "Double")), blue) << "dbl-4's";
  ASSERT_OK(store().Apply(LogIndex(5), {DeleteSong("dbl-4")}));
  EXPECT_EQ(cover_of(id("Band", "Double")), "");
  EXPECT_FALSE(store().SongWithCover(blue)->has_value());

  ASSERT_OK(store().Apply(
      LogIndex(6),
      {PutSong(with_cover(Track("now-2", "Kiss", "Prince", "Now 1", 1, 2, 1986, 60, "", true), red))}));
  const std::string dump = dir().Sub("covers.dump");
  ASSERT_OK(DumpToFile(store(), dump));
  auto other = OpenFresh("covers-other");
  ASSERT_NE(other, nullptr);
  ASSERT_OK(other->Load(dump));
  EXPECT_EQ(AllSongs(*other), AllSongs(store()));
  EXPECT_EQ(AllAlbums(*other, AlbumSort::kName, 50), AllAlbums(store(), AlbumSort::kName, 50));
  EXPECT_EQ((*other->SongWithCover(red))->file_id, "now-2");
}

// An album's picture (an image entry, IsPicture): its album shows it before any embedded cover,
// but it is not a song: not counted, not listed among the album's songs, not found by search.
TEST_P(MetadataStoreConformance, AnAlbumPictureIsItsCoverButNotASong) {
  ASSERT_OK(store().Apply(LogIndex(1), LibrarySongs()));
  Song embedded = Track("dbl-1", "A1", "Band", "Double", 1, 1, 2001, 13, "Band");
  embedded.cover = std::string(64, 'e');
  Song picture = MakeSong("Double_cover.jpg", "", "Band", "Double");
  picture.content_type = "image/jpeg";
  picture.file_name = "cover.jpg";
  picture.album_artist = "Band";
  picture.cover = std::string(64, 'f');
  picture.created_at_ms = 9999;
  picture.year = 2099;
  CompleteSong(&picture);
  ASSERT_EQ(picture.album_id, AlbumIdOf("Band", "Double"));
  ASSERT_OK(store().Apply(LogIndex(2), {PutSong(embedded), PutSong(picture)}));

  auto album = store().GetAlbum(AlbumIdOf("Band", "Double"));
  ASSERT_TRUE(album.ok() && album->has_value()) << album.status().ToString();
  EXPECT_EQ((*album)->summary.cover, picture.cover) << "the picture wins over the embedded one";
  EXPECT_EQ((*album)->summary.song_count, 4u);
  EXPECT_EQ((*album)->summary.year, 2001u) << "the picture's fields are not the album's";
  EXPECT_EQ((*album)->summary.created_at_ms, 13);
  EXPECT_EQ(Ids((*album)->songs), (std::vector<std::string>{"dbl-1", "dbl-2", "dbl-3", "dbl-4"}));
  EXPECT_EQ(AllArtists(store(), 50)[0], (ArtistSummary{"Band", 2, 5}));
  SearchRequest sr;
  sr.query = "cover";
  EXPECT_TRUE(store().Search(sr)->items.empty());
  sr.query = "double";
  auto found = store().Search(sr);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->items.size(), 4u);
  for (const Song& s : found->items) EXPECT_FALSE(IsPicture(s)) << s.file_id;
  EXPECT_EQ((*store().SongWithCover(picture.cover))->file_id, picture.file_id);
  // Still a file of the catalog: the listing that repair walks has it.
  EXPECT_EQ(Ids(AllSongs(store())).size(), LibrarySongs().size() + 1);

  // Without it, the embedded cover again; a picture alone does not make an album.
  ASSERT_OK(store().Apply(LogIndex(3), {DeleteSong(picture.file_id)}));
  EXPECT_EQ((*store().GetAlbum(AlbumIdOf("Band", "Double")))->summary.cover, embedded.cover);
  Song lonely = picture;
  lonely.file_id = "Nowhere_cover.jpg";
  lonely.album = "Nowhere";
  lonely.album_id.clear();
  CompleteSong(&lonely);
  ASSERT_OK(store().Apply(LogIndex(4), {PutSong(lonely)}));
  EXPECT_FALSE(store().GetAlbum(lonely.album_id)->has_value());
  EXPECT_EQ(AllAlbums(store(), AlbumSort::kName, 50).size(), 4u);
}

TEST_P(MetadataStoreConformance, LibraryRequestsAreValidated) {
  ASSERT_OK(store().Apply(LogIndex(1), LibrarySongs()));
  AlbumListRequest albums;
  albums.limit = 1;
  auto first = store().ListAlbums(albums);
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->next_after.empty());
  albums.sort = AlbumSort::kYear;  // a cursor of the name order
  albums.after = first->next_after;
  EXPECT_EQ(store().ListAlbums(albums).status().code(), StatusCode::kInvalidArgument);
  albums.sort = AlbumSort::kName;
  albums.after = "garbage";
  EXPECT_EQ(store().ListAlbums(albums).status().code(), StatusCode::kInvalidArgument);
  albums.after.clear();
  albums.limit = 0;
  EXPECT_EQ(store().ListAlbums(albums).status().code(), StatusCode::kInvalidArgument);
  ArtistListRequest artists;
  artists.after = first->next_after;
  EXPECT_EQ(store().ListArtists(artists).status().code(), StatusCode::kInvalidArgument);
  artists.after.clear();
  artists.limit = 1001;
  EXPECT_EQ(store().ListArtists(artists).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(MetadataStoreConformance, DumpThenLoadKeepsTheLibrary) {
  ASSERT_OK(store().Apply(LogIndex(4), LibrarySongs()));
  const std::string path = dir().Sub("library.dump");
  ASSERT_OK(DumpToFile(store(), path));
  auto other = OpenFresh("library-copy");
  ASSERT_NE(other, nullptr);
  ASSERT_OK(other->Load(path));
  for (AlbumSort sort : {AlbumSort::kName, AlbumSort::kYear, AlbumSort::kRecent}) {
    EXPECT_EQ(AllAlbums(*other, sort, 2), AllAlbums(store(), sort, 2));
  }
  EXPECT_EQ(AllArtists(*other, 2), AllArtists(store(), 2));
  for (const char* id : {"dbl-4", "now-1", "ar-3", "solo-1"}) {
    EXPECT_EQ(*other->GetSong(id), *store().GetSong(id)) << id;
  }
  auto a = other->GetAlbum(AlbumIdOf("Band", "Double"));
  auto b = store().GetAlbum(AlbumIdOf("Band", "Double"));
  ASSERT_TRUE(a.ok() && b.ok() && a->has_value() && b->has_value());
  EXPECT_EQ((*a)->songs, (*b)->songs);
  EXPECT_EQ((*a)->genres, (*b)->genres);
}

}  // namespace
}  // namespace dispotify::catalog
