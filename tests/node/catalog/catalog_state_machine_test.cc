// The catalog state machine over the embedded store: command encoding, the rules of each command
// (locks, conditional puts, replication factor), idempotent replay after a restart, determinism
// across servers, and snapshots.

#include "node/catalog/catalog_state_machine.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/audit/chain.h"
#include "common/audit/entry.h"
#include "common/encoding.h"
#include "tests/mocks/temp_dir.h"

namespace dispotify::catalog {
namespace {

using consensus::Entry;
using consensus::EntryType;

Song MakeSong(const std::string& id, const std::string& sha = std::string(64, 'a')) {
  Song s;
  s.file_id = id;
  s.title = "Title " + id;
  s.artist = "Artist";
  s.album = "Album";
  s.file_name = id + ".mp3";
  s.content_type = "audio/mpeg";
  s.size_bytes = 1234;
  s.sha256 = sha;
  return s;
}

// One server's catalog: a store in its own directory and the state machine over it.
class CatalogServer {
 public:
  explicit CatalogServer(const std::string& dir) : dir_(dir) { Open(); }
  void Open() {
    sm_.reset();
    store_.reset();
    auto store = OpenSqliteStore(dir_ + "/catalog.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto sm = CatalogStateMachine::Open(store_.get());
    ASSERT_TRUE(sm.ok()) << sm.status().ToString();
    sm_ = std::move(sm).value();
  }
  consensus::ApplyResult Apply(uint64_t index, const Command& cmd) {
    return sm_->Apply(Entry{Term(1), LogIndex(index), EntryType::kNormal, EncodeCommand(cmd)});
  }
  CatalogStateMachine& sm() { return *sm_; }
  MetadataStore& store() { return *store_; }
  std::string Dump() {
    std::string out;
    EXPECT_TRUE(store_
                    ->Dump([&out](std::string_view b) {
                      out.append(b);
                      return Status::Ok();
                    })
                    .ok());
    return out;
  }

 private:
  std::string dir_;
  std::unique_ptr<MetadataStore> store_;
  std::unique_ptr<CatalogStateMachine> sm_;
};

Command At(int64_t now_ms, CommandBody body) {
  return Command{now_ms, std::move(body)};
}

TEST(CatalogCommands, EveryKindRoundTrips) {
  std::vector<Command> cmds = {
      At(1, PutSongCmd{MakeSong("a"), true, {}}),
      At(1, PutSongCmd{MakeSong("a"), false, {NodeId(1), NodeId(3)}}),
      At(2, DeleteSongCmd{"a"}),
      At(3, SetReplicaCmd{Replica{"a", NodeId(2), ReplicaState::kHealthy, 0}}),
      At(4, RemoveReplicaCmd{"a", NodeId(2)}),
      At(5, SetReplicationFactorCmd{5}),
      At(6, AcquireLockCmd{"upload/a", "node-1", 3000}),
      At(7, RenewLockCmd{"upload/a", "node-1", 3000}),
      At(-8, ReleaseLockCmd{"upload/a", "node-1"}),
      At(9, SetDrainingCmd{NodeId(4), true}),
      At(10, SetDrainingCmd{NodeId(4), false}),
      At(11, AcquireLockCmd{"upload:a", "sha256:ab/1:x", 3000, "sha256:ab"}),
      At(12, PutSongCmd{MakeSong("a"), true, {NodeId(1)}, "upload:a", 7}),
      At(13, PutSongCmd{MakeSong("a"), true, {NodeId(1)}, "", 0, "alice"}),
      At(14, PutUserCmd{"alice", "{}", true, false}),
      At(15, PutUserCmd{"admin", "{}", false, true}),
      At(16, DeleteUserCmd{"alice"}),
      At(17, PutTokenCmd{std::string(64, 'a'), "alice", "{}"}),
      At(18, RevokeTokenCmd{std::string(64, 'a'), "alice"}),
      At(19, AppendAuditCmd{{"x", "yz"}}),
      At(20, TrimAuditCmd{7}),
  };
  for (const auto& c : cmds) {
    auto back = DecodeCommand(EncodeCommand(c));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->now_ms, c.now_ms);
    EXPECT_EQ(back->body.index(), c.body.index());
    EXPECT_EQ(EncodeCommand(*back), EncodeCommand(c));
  }
}

TEST(CatalogCommands, MalformedInputIsRejected) {
  std::string good = EncodeCommand(At(1, PutSongCmd{MakeSong("a"), true}));
  for (size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_FALSE(DecodeCommand(good.substr(0, cut)).ok()) << "truncated at " << cut;
  }
  EXPECT_FALSE(DecodeCommand(good + "x").ok()) << "trailing bytes";
  std::string bad_version = good;
  bad_version[0] = 9;
  EXPECT_EQ(DecodeCommand(bad_version).status().code(), StatusCode::kInvalidArgument);
  std::string bad_kind = good;
  bad_kind[1] = 42;
  EXPECT_EQ(DecodeCommand(bad_kind).status().code(), StatusCode::kInvalidArgument);
}

// The library fields travel as a trailing group (after the lock group) only when one is set; a
// put-song carrying them is command level 2, one without them is what level 1 wrote.
TEST(CatalogCommands, LibraryFieldsRoundTripAndNeedLevel2) {
  Song tagged = MakeSong("t");
  tagged.album_artist = "Various Artists";
  tagged.disc = 2;
  tagged.genre = "Synth-pop";
  tagged.compilation = true;
  for (const PutSongCmd& put :
       {PutSongCmd{tagged, true, {NodeId(1)}}, PutSongCmd{tagged, true, {}, "upload:t", 9}}) {
    auto back = DecodeCommand(EncodeCommand(At(1, put)));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    const auto& got = std::get<PutSongCmd>(back->body);
    EXPECT_EQ(got.song, tagged);
    EXPECT_EQ(got.lock_name, put.lock_name);
    EXPECT_EQ(got.lock_token, put.lock_token);
    EXPECT_EQ(CommandLevelOf(back->body), 2u);
  }
  Song disc_only = MakeSong("d");
  disc_only.disc = 1;
  EXPECT_EQ(CommandLevelOf(PutSongCmd{disc_only, true}), 2u);
  EXPECT_EQ(CommandLevelOf(PutSongCmd{MakeSong("u"), true}), 1u);
  // A bad flag byte is refused, not read as true.
  std::string bad = EncodeCommand(At(1, PutSongCmd{tagged, true}));
  bad.back() = 2;
  EXPECT_FALSE(DecodeCommand(bad).ok());
}

// The cover travels as a third group, after the lock and library groups (written at their
// defaults when only the cover is set); a put-song carrying one is command level 3. A level-2
// node would find trailing bytes and refuse the entry, which is what the level gate prevents.
TEST(CatalogCommands, CoverRoundTripsAndNeedsLevel3) {
  Song covered = MakeSong("c");
  covered.cover = std::string(64, 'e');
  Song both = covered;
  both.genre = "Jazz";
  for (const Song& song : {covered, both}) {
    for (const PutSongCmd& put :
         {PutSongCmd{song, true, {NodeId(1)}}, PutSongCmd{song, false, {}, "upload:c", 4}}) {
      auto back = DecodeCommand(EncodeCommand(At(1, put)));
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      const auto& got = std::get<PutSongCmd>(back->body);
      EXPECT_EQ(got.song, song);
      EXPECT_EQ(got.lock_name, put.lock_name);
      EXPECT_EQ(got.lock_token, put.lock_token);
      EXPECT_EQ(CommandLevelOf(back->body), 3u);
    }
  }
  // Without a cover the entry is byte for byte what level 2 wrote.
  Song tagged = both;
  tagged.cover.clear();
  const std::string level2 = EncodeCommand(At(1, PutSongCmd{tagged, true}));
  auto back = DecodeCommand(level2);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(CommandLevelOf(back->body), 2u);
  EXPECT_EQ(std::get<PutSongCmd>(back->body).song.cover, "");
  // A cover that is not 64 lowercase hex digits is refused by the store's validation.
  for (const std::string& bad : {std::string(63, 'a'), std::string(64, 'A'), std::string(64, 'g')}) {
    Mutation m;
    m.kind = Mutation::Kind::kPutSong;
    m.song = MakeSong("b");
    m.song.cover = bad;
    EXPECT_EQ(ValidateMutation(m).code(), StatusCode::kInvalidArgument) << bad;
  }
}

// A put-song entry exactly as the previous version wrote it (no library group) still decodes and
// applies: the song gets the defaults (album_artist = its artist, disc 0, no genre).
TEST(CatalogCommands, AnEntryOfThePreviousVersionAppliesWithDefaults) {
  std::string old;
  encoding::PutU8(&old, 1);  // version
  encoding::PutU8(&old, 0);  // put-song
  encoding::PutU64(&old, 77);
  for (const char* f : {"old-1", "Yesterday", "The Beatles", "Help!", "old-1.mp3", "audio/mpeg"}) {
    encoding::PutString(&old, f);
  }
  encoding::PutU32(&old, 13);
  encoding::PutU32(&old, 1965);
  encoding::PutU64(&old, 125000);
  encoding::PutU64(&old, 4000);
  encoding::PutString(&old, std::string(64, 'a'));
  encoding::PutU64(&old, 77);
  encoding::PutU8(&old, 1);   // if_absent
  encoding::PutU32(&old, 0);  // no replicas
  auto decoded = DecodeCommand(old);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const auto& put = std::get<PutSongCmd>(decoded->body);
  EXPECT_EQ(put.song.album_artist, "");
  EXPECT_EQ(put.song.disc, 0u);
  EXPECT_EQ(EncodeCommand(*decoded), old) << "an untagged song is written as before";

  mocks::TempDir dir;
  CatalogServer server(dir.path());
  auto r = server.sm().Apply(Entry{Term(1), LogIndex(1), EntryType::kNormal, old});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  auto song = server.store().GetSong("old-1");
  ASSERT_TRUE(song.ok() && song->has_value());
  EXPECT_EQ((*song)->title, "Yesterday");
  EXPECT_EQ((*song)->album_artist, "The Beatles");
  EXPECT_EQ((*song)->album_id, AlbumIdOf("The Beatles", "Help!"));
  auto album = server.store().GetAlbum((*song)->album_id);
  ASSERT_TRUE(album.ok() && album->has_value());
  EXPECT_EQ((*album)->summary.title, "Help!");
}

TEST(CatalogStateMachine, LocksHaveTtlOwnerOnlyReleaseAndGrowingTokens) {
  mocks::TempDir dir;
  CatalogServer r(dir.path());
  auto a = r.Apply(1, At(1000, AcquireLockCmd{"L", "alice", 500}));
  ASSERT_TRUE(a.status.ok());
  EXPECT_EQ(a.value, "1");
  EXPECT_EQ(r.Apply(2, At(1100, AcquireLockCmd{"L", "bob", 500})).status.code(),
            StatusCode::kFailedPrecondition)
      << "held by alice until 1500";
  EXPECT_EQ(r.Apply(3, At(1200, ReleaseLockCmd{"L", "bob"})).status.code(), StatusCode::kFailedPrecondition)
      << "only the owner releases";
  EXPECT_TRUE(r.Apply(4, At(1300, RenewLockCmd{"L", "alice", 500})).status.ok()) << "renewed until 1800";
  EXPECT_EQ(r.Apply(5, At(1600, AcquireLockCmd{"L", "bob", 500})).status.code(),
            StatusCode::kFailedPrecondition)
      << "the renewal holds past the first expiry";
  auto b = r.Apply(6, At(1800, AcquireLockCmd{"L", "bob", 500}));
  ASSERT_TRUE(b.status.ok()) << "expired at 1800: another owner may take it";
  EXPECT_EQ(b.value, "2") << "a new holder gets a larger fencing token";
  EXPECT_EQ(r.Apply(7, At(1900, RenewLockCmd{"L", "alice", 500})).status.code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(r.Apply(8, At(1900, ReleaseLockCmd{"L", "bob"})).status.ok());
  auto c = r.Apply(9, At(1901, AcquireLockCmd{"L", "alice", 500}));
  ASSERT_TRUE(c.status.ok()) << "free after release";
  EXPECT_EQ(c.value, "3");
  EXPECT_TRUE(r.Apply(10, At(5000, ReleaseLockCmd{"L", "carol"})).status.ok())
      << "an expired lock releases freely";
  EXPECT_EQ(r.Apply(11, At(5000, AcquireLockCmd{"L", "alice", 0})).status.code(),
            StatusCode::kInvalidArgument);
}

TEST(CatalogStateMachine, ALockSharedByContentIsTakenOverWithANewToken) {
  mocks::TempDir dir;
  CatalogServer r(dir.path());
  auto first = r.Apply(1, At(1000, AcquireLockCmd{"L", "sha256:aa/n1", 500, "sha256:aa"}));
  ASSERT_TRUE(first.status.ok());
  EXPECT_EQ(first.value, "1");
  EXPECT_EQ(r.Apply(2, At(1100, AcquireLockCmd{"L", "sha256:bb/n2", 500, "sha256:bb"})).status.code(),
            StatusCode::kFailedPrecondition)
      << "other content waits for the lease to lapse";
  EXPECT_EQ(r.Apply(3, At(1100, AcquireLockCmd{"L", "sha256:a/n2", 500, "sha256:a"})).status.code(),
            StatusCode::kFailedPrecondition)
      << "a prefix of the key is not the key";
  auto retry = r.Apply(4, At(1200, AcquireLockCmd{"L", "sha256:aa/n3", 500, "sha256:aa"}));
  ASSERT_TRUE(retry.status.ok()) << "the same content takes the lease over at once";
  EXPECT_EQ(retry.value, "2") << "and fences the earlier attempt off";
  EXPECT_EQ(r.Apply(5, At(1300, RenewLockCmd{"L", "sha256:aa/n1", 500})).status.code(),
            StatusCode::kFailedPrecondition)
      << "the earlier attempt lost its lease";
}

TEST(CatalogStateMachine, AFencedSongCommitsOnlyUnderItsLiveLease) {
  mocks::TempDir dir;
  CatalogServer r(dir.path());
  ASSERT_TRUE(r.Apply(1, At(1000, AcquireLockCmd{"upload:a", "n1", 500})).status.ok());
  EXPECT_EQ(r.Apply(2, At(1600, PutSongCmd{MakeSong("a"), true, {}, "upload:a", 1})).status.code(),
            StatusCode::kFailedPrecondition)
      << "the lease lapsed at 1500";
  EXPECT_FALSE(r.store().GetSong("a")->has_value());
  ASSERT_TRUE(r.Apply(3, At(1700, AcquireLockCmd{"upload:a", "n2", 500})).status.ok());
  EXPECT_EQ(r.Apply(4, At(1800, PutSongCmd{MakeSong("a"), true, {}, "upload:a", 1})).status.code(),
            StatusCode::kFailedPrecondition)
      << "a late writer with the old token";
  EXPECT_TRUE(r.Apply(5, At(1800, PutSongCmd{MakeSong("a"), true, {}, "upload:a", 2})).status.ok());
  EXPECT_TRUE(r.store().GetSong("a")->has_value());
}

TEST(CatalogStateMachine, ConcurrentUploadsOfOneIdFirstCommitWins) {
  mocks::TempDir dir;
  CatalogServer r(dir.path());
  ASSERT_TRUE(r.Apply(1, At(10, PutSongCmd{MakeSong("x", std::string(64, 'a')), true})).status.ok());
  EXPECT_TRUE(r.Apply(2, At(11, PutSongCmd{MakeSong("x", std::string(64, 'a')), true})).status.ok())
      << "the same content again: a retried upload succeeds";
  EXPECT_EQ(r.Apply(3, At(12, PutSongCmd{MakeSong("x", std::string(64, 'b')), true})).status.code(),
            StatusCode::kAlreadyExists);
  auto song = r.store().GetSong("x");
  ASSERT_TRUE(song.ok() && song->has_value());
  EXPECT_EQ((*song)->sha256, std::string(64, 'a'));
  EXPECT_EQ((*song)->created_at_ms, 10) << "the creation time is the leader's, from the command";
  EXPECT_EQ(r.sm().applied_index(), LogIndex(3)) << "rejected commands still advance the applied index";
}

TEST(CatalogStateMachine, PutSongRecordsItsReplicasInTheSameEntry) {
  mocks::TempDir dir;
  CatalogServer r(dir.path());
  ASSERT_TRUE(
      r.Apply(1, At(10, PutSongCmd{MakeSong("x", std::string(64, 'a')), true, {NodeId(2), NodeId(5)}}))
          .status.ok());
  auto replicas = r.store().GetReplicas("x");
  ASSERT_TRUE(replicas.ok());
  ASSERT_EQ(replicas->size(), 2u);
  for (const auto& rep : *replicas) {
    EXPECT_EQ(rep.state, ReplicaState::kHealthy);
    EXPECT_EQ(rep.updated_at_ms, 10);
  }
  EXPECT_EQ((*replicas)[0].node, NodeId(2));
  EXPECT_EQ((*replicas)[1].node, NodeId(5));
  // A command with a replica on no node changes nothing, not even the song.
  EXPECT_EQ(r.Apply(2, At(11, PutSongCmd{MakeSong("y"), true, {kNoNode}})).status.code(),
            StatusCode::kInvalidArgument);
  auto y = r.store().GetSong("y");
  ASSERT_TRUE(y.ok());
  EXPECT_FALSE(y->has_value());
}

TEST(CatalogStateMachine, ReplicasNeedTheirSongAndGoAwayWithIt) {
  mocks::TempDir dir;
  CatalogServer r(dir.path());
  EXPECT_EQ(
      r.Apply(1, At(1, SetReplicaCmd{Replica{"s", NodeId(1), ReplicaState::kHealthy, 0}})).status.code(),
      StatusCode::kNotFound);
  ASSERT_TRUE(r.Apply(2, At(2, PutSongCmd{MakeSong("s"), true})).status.ok());
  for (uint64_t n = 1; n <= 3; ++n) {
    ASSERT_TRUE(
        r.Apply(2 + n, At(3, SetReplicaCmd{Replica{"s", NodeId(n), ReplicaState::kHealthy, 0}})).status.ok());
  }
  auto replicas = r.store().GetReplicas("s");
  ASSERT_TRUE(replicas.ok());
  EXPECT_EQ(replicas->size(), 3u);
  ASSERT_TRUE(r.Apply(6, At(4, RemoveReplicaCmd{"s", NodeId(2)})).status.ok());
  EXPECT_EQ(r.store().GetReplicas("s")->size(), 2u);
  ASSERT_TRUE(r.Apply(7, At(5, DeleteSongCmd{"s"})).status.ok());
  EXPECT_TRUE(r.store().GetReplicas("s")->empty());
  EXPECT_EQ(r.Apply(8, At(6, DeleteSongCmd{"s"})).status.code(), StatusCode::kNotFound);
}

// A committed command whose mutations the store refuses is a no-op on every server, not a reason
// to stop: otherwise one bad entry would stop the whole cluster.
TEST(CatalogStateMachine, CommandTheStoreRefusesIsANoOpNotFatal) {
  mocks::TempDir dir;
  CatalogServer r(dir.path());
  auto result = r.Apply(1, At(1, RemoveReplicaCmd{"../etc/passwd", NodeId(1)}));
  EXPECT_EQ(result.status.code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(result.fatal);
  EXPECT_EQ(r.sm().applied_index(), LogIndex(1));
  EXPECT_TRUE(r.Apply(2, At(2, PutSongCmd{MakeSong("ok"), true})).status.ok());
}

// A store whose Apply is unavailable for the first `failures` calls (PostgreSQL restarting).
class FlakyStore final : public MetadataStore {
 public:
  FlakyStore(MetadataStore* inner, int failures) : inner_(inner), failures_(failures) {}
  Result<LogIndex> AppliedIndex() override { return inner_->AppliedIndex(); }
  Status Apply(LogIndex index, const std::vector<Mutation>& mutations) override {
    if (failures_ > 0) {
      --failures_;
      return Status::Unavailable("server restarting");
    }
    return inner_->Apply(index, mutations);
  }
  Result<std::optional<Song>> GetSong(std::string_view id) override { return inner_->GetSong(id); }
  Result<SongPage> ListSongs(const ListRequest& r) override { return inner_->ListSongs(r); }
  Result<SearchPage> Search(const SearchRequest& r) override { return inner_->Search(r); }
  Result<ArtistPage> ListArtists(const ArtistListRequest& r) override { return inner_->ListArtists(r); }
  Result<AlbumPage> ListAlbums(const AlbumListRequest& r) override { return inner_->ListAlbums(r); }
  Result<std::optional<AlbumDetail>> GetAlbum(std::string_view id) override { return inner_->GetAlbum(id); }
  Result<std::optional<Song>> SongWithCover(std::string_view cover) override {
    return inner_->SongWithCover(cover);
  }
  Result<std::vector<Replica>> GetReplicas(std::string_view id) override { return inner_->GetReplicas(id); }
  Result<std::vector<Replica>> ReplicasOnNode(NodeId n, std::string_view after, uint32_t limit) override {
    return inner_->ReplicasOnNode(n, after, limit);
  }
  Result<std::optional<Lock>> GetLock(std::string_view name) override { return inner_->GetLock(name); }
  Result<std::optional<std::string>> GetSetting(std::string_view key) override {
    return inner_->GetSetting(key);
  }
  Result<std::vector<std::pair<std::string, std::string>>> ListSettings(std::string_view prefix,
                                                                        std::string_view after,
                                                                        uint32_t limit) override {
    return inner_->ListSettings(prefix, after, limit);
  }
  Result<CatalogStats> Stats() override { return inner_->Stats(); }
  Status Dump(const std::function<Status(std::string_view)>& sink) override { return inner_->Dump(sink); }
  Status Load(const std::string& path) override { return inner_->Load(path); }

 private:
  MetadataStore* inner_;
  int failures_;
};

TEST(CatalogStateMachine, UnavailableStoreIsRetriedThenFatal) {
  mocks::TempDir dir;
  auto inner = OpenSqliteStore(dir.path() + "/catalog.db");
  ASSERT_TRUE(inner.ok());
  {
    FlakyStore flaky(inner->get(), 3);
    auto sm = CatalogStateMachine::Open(&flaky);
    ASSERT_TRUE(sm.ok());
    auto r = (*sm)->Apply(Entry{Term(1), LogIndex(1), EntryType::kNormal,
                                EncodeCommand(At(1, PutSongCmd{MakeSong("a"), true}))});
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_FALSE(r.fatal);
    EXPECT_EQ((*sm)->applied_index(), LogIndex(1));
  }
  {
    FlakyStore down(inner->get(), 1000000);
    auto sm = CatalogStateMachine::Open(&down);
    ASSERT_TRUE(sm.ok());
    (*sm)->set_unavailable_budget(std::chrono::milliseconds(300));
    auto r = (*sm)->Apply(
        Entry{Term(1), LogIndex(2), EntryType::kNormal, EncodeCommand(At(2, DeleteSongCmd{"a"}))});
    EXPECT_TRUE(r.fatal) << "a store that stays away stops the node in the end";
    EXPECT_EQ(r.status.code(), StatusCode::kUnavailable);
  }
}

TEST(CatalogCommands, UserAndTokenKindsAndANamedUploaderNeedLevel4) {
  EXPECT_EQ(CommandLevelOf(PutUserCmd{"a", "{}"}), 4u);
  EXPECT_EQ(CommandLevelOf(RevokeTokenCmd{std::string(64, 'a'), "a"}), 4u);
  EXPECT_EQ(CommandLevelOf(PutSongCmd{MakeSong("a"), true, {}, "", 0, "alice"}), 4u);
  EXPECT_EQ(CommandLevelOf(PutSongCmd{MakeSong("a"), true, {}}), 1u);
  auto back = DecodeCommand(EncodeCommand(At(1, PutSongCmd{MakeSong("a"), true, {}, "", 0, "alice"})));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::get<PutSongCmd>(back->body).uploader, "alice");
}

TEST(CatalogStateMachine, UsersAndTokensLiveAsSettingsAndGoTogether) {
  mocks::TempDir dir;
  CatalogServer r(dir.path());
  const std::string tok_a(64, 'a');
  const std::string tok_b(64, 'b');
  // The bootstrap admin is created once, whatever leader proposes it again.
  ASSERT_TRUE(r.Apply(1, At(1, PutUserCmd{"admin", "r1", false, true})).status.ok());
  EXPECT_EQ(r.Apply(2, At(2, PutUserCmd{"admin2", "r2", false, true})).status.code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(r.Apply(3, At(3, PutUserCmd{"admin", "r3", true, false})).status.code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(r.store().GetSetting(UserKey("admin"))->value_or(""), "r1");
  EXPECT_EQ(r.Apply(4, At(4, PutUserCmd{"bad/name", "r", false, false})).status.code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(r.Apply(5, At(5, PutUserCmd{"alice", "ra", true, false})).status.ok());
  // Tokens need their owner, a well-formed id, and a fresh one.
  EXPECT_EQ(r.Apply(6, At(6, PutTokenCmd{tok_a, "nobody", "t"})).status.code(), StatusCode::kNotFound);
  EXPECT_EQ(r.Apply(7, At(7, PutTokenCmd{"short", "alice", "t"})).status.code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(r.Apply(8, At(8, PutTokenCmd{tok_a, "alice", "ta"})).status.ok());
  ASSERT_TRUE(r.Apply(9, At(9, PutTokenCmd{tok_b, "alice", "tb"})).status.ok());
  EXPECT_EQ(r.Apply(10, At(10, PutTokenCmd{tok_b, "alice", "tb"})).status.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(r.store().ListSettings(UserTokenPrefix("alice"), "", 10)->size(), 2u);
  // Revoking is idempotent.
  ASSERT_TRUE(r.Apply(11, At(11, RevokeTokenCmd{tok_a, "alice"})).status.ok());
  ASSERT_TRUE(r.Apply(12, At(12, RevokeTokenCmd{tok_a, "alice"})).status.ok());
  EXPECT_FALSE(r.store().GetSetting(TokenKey(tok_a))->has_value());
  EXPECT_EQ(r.store().GetSetting(TokenKey(tok_b))->value_or(""), "tb");
  // A deleted user takes their tokens along.
  ASSERT_TRUE(r.Apply(13, At(13, DeleteUserCmd{"alice"})).status.ok());
  EXPECT_FALSE(r.store().GetSetting(TokenKey(tok_b))->has_value());
  EXPECT_TRUE(r.store().ListSettings(UserTokenPrefix("alice"), "", 10)->empty());
  EXPECT_EQ(r.Apply(14, At(14, DeleteUserCmd{"alice"})).status.code(), StatusCode::kNotFound);
}

TEST(CatalogStateMachine, TheFirstUploaderOwnsASongUntilItIsDeleted) {
  mocks::TempDir dir;
  CatalogServer r(dir.path());
  ASSERT_TRUE(r.Apply(1, At(1, PutSongCmd{MakeSong("a"), true, {}, "", 0, "alice"})).status.ok());
  ASSERT_TRUE(r.Apply(2, At(2, PutSongCmd{MakeSong("a", std::string(64, 'c')), false, {}, "", 0, "bob"}))
                  .status.ok());
  EXPECT_EQ(r.store().GetSetting(UploaderKey("a"))->value_or(""), "alice");
  ASSERT_TRUE(r.Apply(3, At(3, DeleteSongCmd{"a"})).status.ok());
  EXPECT_FALSE(r.store().GetSetting(UploaderKey("a"))->has_value());
  ASSERT_TRUE(r.Apply(4, At(4, PutSongCmd{MakeSong("a"), true, {}, "", 0, "bob"})).status.ok());
  EXPECT_EQ(r.store().GetSetting(UploaderKey("a"))->value_or(""), "bob");
}

std::string UnchainedEntry(const std::string& actor) {
  audit::Entry e;
  e.time_ms = 5;
  e.actor = actor;
  e.client = "127.0.0.1";
  e.action = audit::Action::kUpload;
  e.target = "song";
  e.code = "ok";
  return *audit::Encode(e);
}

TEST(CatalogStateMachine, AuditEntriesAreChainedInLogOrderAndTrimmedToACheckpoint) {
  mocks::TempDir dir;
  CatalogServer r(dir.path());
  auto first = r.Apply(1, At(1, AppendAuditCmd{{UnchainedEntry("a"), UnchainedEntry("b")}}));
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  EXPECT_EQ(first.value, "2");
  ASSERT_TRUE(r.Apply(2, At(2, AppendAuditCmd{{UnchainedEntry("c")}})).status.ok());
  std::vector<audit::Entry> entries;
  auto stored = r.store().ListSettings(kAuditEntryPrefix, "", 100);
  ASSERT_TRUE(stored.ok());
  for (const auto& [key, bytes] : *stored) {
    entries.push_back(*audit::Decode(bytes));
    EXPECT_EQ(key, AuditEntryKey(entries.back().seq));
  }
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[2].actor, "c");
  const auto head = audit::ParseHead(r.store().GetSetting(kAuditHeadKey)->value_or(""));
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(*head, audit::HeadOf(entries[2]));
  EXPECT_FALSE(audit::Check(entries, {}, head).fault.has_value());
  // One entry that does not decode refuses the whole batch.
  EXPECT_EQ(r.Apply(3, At(3, AppendAuditCmd{{UnchainedEntry("d"), "garbage"}})).status.code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(r.store().ListSettings(kAuditEntryPrefix, "", 100)->size(), 3u);
  // Retention keeps a checkpoint from which the rest still verifies.
  ASSERT_TRUE(r.Apply(4, At(4, TrimAuditCmd{2})).status.ok());
  auto kept = r.store().ListSettings(kAuditEntryPrefix, "", 100);
  ASSERT_EQ(kept->size(), 1u);
  const auto checkpoint = audit::ParseHead(r.store().GetSetting(kAuditCheckpointKey)->value_or(""));
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_EQ(*checkpoint, audit::HeadOf(entries[1]));
  std::vector<audit::Entry> rest = {*audit::Decode(kept->front().second)};
  EXPECT_FALSE(audit::Check(rest, *checkpoint, head).fault.has_value());
  EXPECT_TRUE(r.Apply(5, At(5, TrimAuditCmd{1})).status.ok()) << "already trimmed: a no-op";
  EXPECT_EQ(r.Apply(6, At(6, TrimAuditCmd{9})).status.code(), StatusCode::kInvalidArgument);
  // The chain goes on from the head after a trim.
  ASSERT_TRUE(r.Apply(7, At(7, AppendAuditCmd{{UnchainedEntry("e")}})).status.ok());
  EXPECT_EQ(audit::ParseHead(r.store().GetSetting(kAuditHeadKey)->value_or(""))->seq, 4u);
}

TEST(CatalogStateMachine, DrainingNodesAreASortedSetting) {
  mocks::TempDir dir;
  CatalogServer r(dir.path());
  ASSERT_TRUE(r.Apply(1, At(1, SetDrainingCmd{NodeId(5), true})).status.ok());
  ASSERT_TRUE(r.Apply(2, At(2, SetDrainingCmd{NodeId(2), true})).status.ok());
  ASSERT_TRUE(r.Apply(3, At(3, SetDrainingCmd{NodeId(5), true})).status.ok()) << "draining twice is a no-op";
  auto v = r.store().GetSetting(kDrainingNodesKey);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ(**v, "2,5");
  ASSERT_TRUE(r.Apply(4, At(4, SetDrainingCmd{NodeId(2), false})).status.ok());
  v = r.store().GetSetting(kDrainingNodesKey);
  EXPECT_EQ(v->value_or(""), "5");
  EXPECT_EQ(r.Apply(5, At(5, SetDrainingCmd{kNoNode, true})).status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseNodeList("3,1,x,,0,3"), (std::vector<NodeId>{NodeId(1), NodeId(3)}));
  EXPECT_EQ(FormatNodeList({NodeId(1), NodeId(3)}), "1,3");
}

TEST(CatalogStateMachine, ReplicationFactorIsValidatedAndSurvivesRestart) {
  mocks::TempDir dir;
  {
    CatalogServer r(dir.path());
    EXPECT_EQ(r.sm().replication_factor(), 3u);
    EXPECT_EQ(r.Apply(1, At(1, SetReplicationFactorCmd{0})).status.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.Apply(2, At(1, SetReplicationFactorCmd{17})).status.code(), StatusCode::kInvalidArgument);
    ASSERT_TRUE(r.Apply(3, At(1, SetReplicationFactorCmd{5})).status.ok());
    EXPECT_EQ(r.sm().replication_factor(), 5u);
  }
  CatalogServer again(dir.path());
  EXPECT_EQ(again.sm().replication_factor(), 5u);
  EXPECT_EQ(again.sm().applied_index(), LogIndex(3));
}

// The driver replays entries after the store's applied index on restart, and may hand the state
// machine entries it already has: applying them again must change nothing.
TEST(CatalogStateMachine, ReplayAfterRestartIsIdempotent) {
  mocks::TempDir dir;
  std::vector<Command> cmds;
  for (int i = 0; i < 20; ++i) cmds.push_back(At(i, PutSongCmd{MakeSong("song" + std::to_string(i)), true}));
  std::string before;
  {
    CatalogServer r(dir.path());
    for (size_t i = 0; i < 10; ++i) ASSERT_TRUE(r.Apply(i + 1, cmds[i]).status.ok());
    before = r.Dump();
  }
  CatalogServer r(dir.path());
  EXPECT_EQ(r.sm().applied_index(), LogIndex(10));
  for (size_t i = 0; i < 10; ++i) EXPECT_TRUE(r.Apply(i + 1, cmds[i]).status.ok());
  EXPECT_EQ(r.Dump(), before) << "replayed entries changed nothing";
  for (size_t i = 10; i < 20; ++i) ASSERT_TRUE(r.Apply(i + 1, cmds[i]).status.ok());
  EXPECT_EQ(r.store().Stats()->songs, 20u);
}

// Every server applies the same entries: the stores must end up identical, byte for byte.
TEST(CatalogStateMachine, SameEntriesSameStateOnEveryServer) {
  mocks::TempDir a_dir;
  mocks::TempDir b_dir;
  CatalogServer a(a_dir.path());
  CatalogServer b(b_dir.path());
  std::vector<Entry> entries;
  uint64_t index = 0;
  auto add = [&](const Command& c) {
    entries.push_back(Entry{Term(1), LogIndex(++index), EntryType::kNormal, EncodeCommand(c)});
  };
  for (int i = 0; i < 30; ++i) add(At(i, PutSongCmd{MakeSong("s" + std::to_string(i)), true}));
  entries.push_back(Entry{Term(2), LogIndex(++index), EntryType::kNoop, {}});
  add(At(40, AcquireLockCmd{"L", "n1", 100}));
  add(At(41, SetReplicaCmd{Replica{"s1", NodeId(3), ReplicaState::kCorrupt, 0}}));
  add(At(42, DeleteSongCmd{"s2"}));
  add(At(43, SetReplicationFactorCmd{2}));
  entries.push_back(Entry{Term(2), LogIndex(++index), EntryType::kNormal, "garbage"});
  for (const auto& e : entries) {
    a.sm().Apply(e);
    b.sm().Apply(e);
  }
  EXPECT_EQ(a.sm().applied_index(), LogIndex(index));
  EXPECT_EQ(a.Dump(), b.Dump());
}

TEST(CatalogStateMachine, SnapshotRestoresEverything) {
  mocks::TempDir dir;
  mocks::TempDir other;
  CatalogServer src(dir.path());
  for (int i = 0; i < 25; ++i)
    ASSERT_TRUE(src.Apply(i + 1, At(i, PutSongCmd{MakeSong("s" + std::to_string(i)), true})).status.ok());
  ASSERT_TRUE(src.Apply(26, At(100, AcquireLockCmd{"L", "n1", 1000})).status.ok());
  ASSERT_TRUE(src.Apply(27, At(100, SetReplicationFactorCmd{4})).status.ok());

  struct FileSink final : consensus::SnapshotSink {
    std::ofstream out;
    Status Write(std::string_view d) override {
      out.write(d.data(), static_cast<std::streamsize>(d.size()));
      return out ? Status::Ok() : Status::IoError("write");
    }
  } sink;
  const std::string path = other.Sub("snap");
  sink.out.open(path, std::ios::binary);
  ASSERT_TRUE(src.sm().SaveSnapshot(sink).ok());
  sink.out.close();

  CatalogServer dst(other.path());
  ASSERT_TRUE(dst.Apply(1, At(1, PutSongCmd{MakeSong("stale"), true})).status.ok());
  ASSERT_TRUE(dst.sm().Restore(path).ok());
  EXPECT_EQ(dst.sm().applied_index(), LogIndex(27));
  EXPECT_EQ(dst.sm().replication_factor(), 4u);
  EXPECT_EQ(dst.Dump(), src.Dump());
  EXPECT_FALSE(dst.store().GetSong("stale")->has_value()) << "a restore replaces the whole state";
}

}  // namespace
}  // namespace dispotify::catalog
