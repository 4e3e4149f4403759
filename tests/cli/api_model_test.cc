// Reading the REST API's JSON answers (docs/openapi.yaml) into what dispotifyctl prints.

#include "cli/dispotifyctl/api_model.h"

#include <gtest/gtest.h>

namespace dispotify::cli {
namespace {

constexpr const char* kSong =
    R"({"file_id":"Hey-Jude.mp3","title":"Hey Jude","artist":"The Beatles","album":"1","file_name":"Hey Jude.mp3",)"
    R"("content_type":"audio/mpeg","track":1,"year":1968,"duration_ms":431000,"size_bytes":7000000,)"
    R"("sha256":"00","created_at_ms":5,"replicas":[{"node_id":1,"state":"healthy"}]})";

TEST(ApiModelTest, Song) {
  auto s = ParseSong(kSong);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->file_id, "Hey-Jude.mp3");
  EXPECT_EQ(s->title, "Hey Jude");
  EXPECT_EQ(s->artist, "The Beatles");
  EXPECT_EQ(s->album, "1");
  EXPECT_EQ(s->duration_ms, 431000u);
  EXPECT_EQ(s->size_bytes, 7000000u);
  EXPECT_FALSE(ParseSong("{}").ok());
  EXPECT_FALSE(ParseSong("not json").ok());
  EXPECT_FALSE(ParseSong("[]").ok());
}

TEST(ApiModelTest, SongsPage) {
  auto page =
      ParseSongPage(std::string(R"({"items":[)") + kSong + R"(,{"file_id":"b.mp3"}],"next_after":"b.mp3"})");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[1].file_id, "b.mp3");
  EXPECT_EQ(page->items[1].title, "");
  EXPECT_EQ(page->next, "b.mp3");
  auto last = ParseSongPage(R"({"items":[],"next_after":""})");
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->items.empty());
  EXPECT_EQ(last->next, "");
  EXPECT_FALSE(ParseSongPage(R"({"next_after":""})").ok());
}

TEST(ApiModelTest, SearchPage) {
  auto page = ParseSongPage(std::string(R"({"total":31,"items":[)") + kSong + R"(],"next_cursor":"abc"})");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 31u);
  EXPECT_EQ(page->next, "abc");
  ASSERT_EQ(page->items.size(), 1u);
}

TEST(ApiModelTest, ClusterStatus) {
  const char* json = R"({"node_id":1,"role":"leader","term":3,"leader_id":1,"leader_address":"127.0.0.1:7001",
    "commit_index":12,"applied_index":11,"replication_factor":2,
    "members":[{"node_id":1,"address":"127.0.0.1:7001","role":"leader","healthy":true,"match_index":12},
               {"node_id":2,"address":"127.0.0.1:7002","role":"voter","healthy":false,"match_index":9,
                "files":4,"bytes":10,"free_bytes":99}],
    "songs":5,"bytes":1234,"replicas_healthy":9,"replicas_other":1,
    "local":{"files":5,"bytes":1234,"free_bytes":100},
    "repair":{"under_replicated":1,"unavailable":0,"queued":1}})";
  auto s = ParseClusterStatus(json);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->node_id, 1u);
  EXPECT_EQ(s->role, "leader");
  EXPECT_EQ(s->term, 3u);
  EXPECT_EQ(s->leader_id, 1u);
  EXPECT_EQ(s->leader_address, "127.0.0.1:7001");
  EXPECT_EQ(s->commit_index, 12u);
  EXPECT_EQ(s->applied_index, 11u);
  EXPECT_EQ(s->replication_factor, 2u);
  EXPECT_EQ(s->songs, 5);
  EXPECT_EQ(s->bytes, 1234);
  EXPECT_EQ(s->under_replicated, 1);
  EXPECT_EQ(s->unavailable, 0);
  ASSERT_EQ(s->members.size(), 2u);
  EXPECT_EQ(s->members[0].files, 5);  // the answering node's own count comes from "local"
  EXPECT_TRUE(s->members[0].healthy);
  EXPECT_EQ(s->members[1].files, 4);
  EXPECT_FALSE(s->members[1].healthy);
  EXPECT_EQ(s->members[1].match_index, 9u);
}

TEST(ApiModelTest, ClusterStatusOfAFollowerLacksRepair) {
  auto s = ParseClusterStatus(R"({"node_id":2,"role":"follower","members":[]})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->under_replicated, -1);
  EXPECT_EQ(s->songs, -1);
}

TEST(ApiModelTest, MergeItems) {
  auto merged =
      MergeItems({R"({"items":[{"file_id":"a"}],"next_after":"a"})", R"({"items":[{"file_id":"b"}]})"});
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(*merged, R"({"items":[{"file_id":"a"},{"file_id":"b"}]})");
  auto with_total = MergeItems({R"({"items":[]})"}, 7);
  ASSERT_TRUE(with_total.ok());
  EXPECT_EQ(*with_total, R"({"total":7,"items":[]})");
  EXPECT_FALSE(MergeItems({"nope"}).ok());
}

}  // namespace
}  // namespace dispotify::cli
