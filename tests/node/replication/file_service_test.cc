// The pure parts of the upload path: file ids derived from names, and the write quorum.
#include "node/replication/file_service.h"

#include <gtest/gtest.h>

#include "node/catalog/types.h"

namespace dispotify::replication {
namespace {

TEST(DeriveFileId, KeepsSafeCharactersAndReplacesTheRest) {
  EXPECT_EQ(DeriveFileId("Abbey Road - Come Together.mp3"), "Abbey-Road-Come-Together.mp3");
  EXPECT_EQ(DeriveFileId("song.flac"), "song.flac");
  EXPECT_EQ(DeriveFileId("  spaced   out  .ogg"), "spaced-out-.ogg");
  EXPECT_EQ(DeriveFileId("Café del Mar.mp3"), "Caf-del-Mar.mp3");
}

TEST(DeriveFileId, PathTricksCannotSurvive) {
  EXPECT_EQ(DeriveFileId("../../etc/passwd"), "passwd");
  EXPECT_EQ(DeriveFileId("C:\\music\\x.mp3"), "x.mp3");
  EXPECT_EQ(DeriveFileId(".."), "");
  EXPECT_EQ(DeriveFileId("."), "");
  EXPECT_EQ(DeriveFileId(".hidden"), "hidden");
  EXPECT_EQ(DeriveFileId(std::string("a\0b.mp3", 7)), "a-b.mp3");
  EXPECT_EQ(DeriveFileId(""), "");
  EXPECT_EQ(DeriveFileId("///"), "");
  EXPECT_EQ(DeriveFileId("日本語"), "");
}

TEST(DeriveFileId, ResultIsAlwaysValidOrEmpty) {
  const std::string long_name(500, 'x');
  EXPECT_EQ(DeriveFileId(long_name).size(), catalog::kMaxFileIdSize);
  for (const char* name : {"a b", "-x-", "..a", "a..", "%2e%2e", "a/b/c.mp3", "x\ny"}) {
    std::string id = DeriveFileId(name);
    EXPECT_TRUE(id.empty() || catalog::IsValidFileId(id)) << name << " -> " << id;
  }
}

TEST(WriteQuorum, IsAMajorityOfTheCopies) {
  EXPECT_EQ(WriteQuorum(1), 1u);
  EXPECT_EQ(WriteQuorum(2), 2u);
  EXPECT_EQ(WriteQuorum(3), 2u);
  EXPECT_EQ(WriteQuorum(4), 3u);
  EXPECT_EQ(WriteQuorum(5), 3u);
}

}  // namespace
}  // namespace dispotify::replication
