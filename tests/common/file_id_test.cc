#include "common/file_id.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dispotify {
namespace {

TEST(IsValidFileIdTest, AcceptsTheSafeAlphabetOnly) {
  EXPECT_TRUE(IsValidFileId("a"));
  EXPECT_TRUE(IsValidFileId("Album-A_01-Intro.mp3"));
  EXPECT_TRUE(IsValidFileId(std::string(kMaxFileIdSize, 'x')));
  EXPECT_FALSE(IsValidFileId(""));
  EXPECT_FALSE(IsValidFileId("."));
  EXPECT_FALSE(IsValidFileId(".."));
  EXPECT_FALSE(IsValidFileId(std::string(kMaxFileIdSize + 1, 'x')));
  EXPECT_FALSE(IsValidFileId("a/b"));
  EXPECT_FALSE(IsValidFileId("a b"));
  EXPECT_FALSE(IsValidFileId(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidFileId("Canción"));
}

struct Example {
  std::string path;
  std::string id;
};

TEST(FileIdFromPathTest, Examples) {
  const std::vector<Example> examples = {
      // The rule's own example (docs/file-ids.md).
      {"Music/Abbey Road/01 - Come Together.mp3", "Music_Abbey-Road_01-Come-Together.mp3"},
      // Same file name in different albums: different ids.
      {"Album A/01 - Intro.mp3", "Album-A_01-Intro.mp3"},
      {"Album B/01 - Intro.mp3", "Album-B_01-Intro.mp3"},
      {"Library/Disc 1/track01.flac", "Library_Disc-1_track01.flac"},
      {"Library/Disc 2/track01.flac", "Library_Disc-2_track01.flac"},
      // A bare file name: what earlier versions derived from the name alone.
      {"song.flac", "song.flac"},
      {"Abbey Road - Come Together.mp3", "Abbey-Road-Come-Together.mp3"},
      {"  spaced   out  .ogg", "spaced-out-.ogg"},
      {".hidden", "hidden"},
      {"-x-", "x"},
      {std::string("a\0b.mp3", 7), "a-b.mp3"},
      // Unicode: each multi-byte character becomes one '-'.
      {"Café del Mar.mp3", "Caf-del-Mar.mp3"},
      {"Canción.mp3", "Canci-n.mp3"},
      {"Música/Canción.mp3", "M-sica_Canci-n.mp3"},
      {"日本語/曲.mp3", "mp3"},
      // Windows separators, mixed separators, a drive letter.
      {"C:\\Music\\x.mp3", "C_Music_x.mp3"},
      {"Music\\Album/x.mp3", "Music_Album_x.mp3"},
      // Empty, "." and ".." components are dropped, never resolved.
      {"../../etc/passwd", "etc_passwd"},
      {"a/./b/../c.mp3", "a_b_c.mp3"},
      {"//a//b.mp3//", "a_b.mp3"},
      // Components that slug to nothing are dropped.
      {"!!!/song.mp3", "song.mp3"},
      {"日本語/x.mp3", "x.mp3"},
      {"a/.../b.ogg", "a_b.ogg"},
      // Nothing left at all.
      {"", ""},
      {".", ""},
      {"..", ""},
      {"///", ""},
      {"\\\\", ""},
      {"日本語", ""},
      {"./../...", ""},
  };
  for (const auto& e : examples) {
    const std::string id = FileIdFromPath(e.path);
    EXPECT_EQ(id, e.id) << "path: " << e.path;
    EXPECT_TRUE(id.empty() || IsValidFileId(id)) << e.path << " -> " << id;
  }
}

TEST(FileIdFromPathTest, LongPathsKeepAPrefixAHashAndTheExtension) {
  // 16 hex digits of SHA-256("x" * 500) after the longest prefix that fits.
  EXPECT_EQ(FileIdFromPath(std::string(500, 'x')), std::string(111, 'x') + "-c38c2bf3055c516a");

  const std::string exactly(kMaxFileIdSize, 'y');
  EXPECT_EQ(FileIdFromPath(exactly), exactly);

  const std::string long_name = std::string(300, 'z') + ".flac";
  const std::string id = FileIdFromPath(long_name);
  EXPECT_EQ(id.size(), kMaxFileIdSize);
  EXPECT_EQ(id.substr(id.size() - 5), ".flac");
  EXPECT_TRUE(IsValidFileId(id));

  // An "extension" longer than 10 characters is not kept.
  const std::string odd = FileIdFromPath(std::string(300, 'z') + ".abcdefghijk");
  EXPECT_EQ(odd.find(".abc"), std::string::npos);
  EXPECT_TRUE(IsValidFileId(odd));
}

TEST(FileIdFromPathTest, DistinctLongPathsSharingTheirStartGetDistinctIds) {
  const std::string common = "Music/" + std::string(100, 'A') + "/" + std::string(93, 'B');
  ASSERT_GE(common.size(), 200u);
  const std::string a = FileIdFromPath(common + "/Disc 1/01 - Intro.mp3");
  const std::string b = FileIdFromPath(common + "/Disc 2/01 - Intro.mp3");
  EXPECT_NE(a, b);
  for (const std::string& id : {a, b}) {
    EXPECT_LE(id.size(), kMaxFileIdSize);
    EXPECT_TRUE(IsValidFileId(id)) << id;
    EXPECT_EQ(id.substr(id.size() - 4), ".mp3") << id;
  }
  // The hash is of the normalised path: other separators or dot components give the same id.
  EXPECT_EQ(FileIdFromPath("./" + common + "//Disc 1\\01 - Intro.mp3"), a);
}

TEST(FileIdFromPathTest, PrefixNeverEndsInASeparatorBeforeTheHash) {
  // With ".mp3" kept the prefix is 107 characters, the last of them the '_' between components.
  const std::string path = std::string(106, 'a') + "/" + std::string(100, 'b') + ".mp3";
  const std::string id = FileIdFromPath(path);
  EXPECT_TRUE(IsValidFileId(id));
  EXPECT_EQ(id.substr(0, 107), std::string(106, 'a') + "-");
  EXPECT_EQ(id.size(), 106u + 1 + 16 + 4);
}

TEST(FileIdTest, AlbumPictureNames) {
  for (const char* name :
       {"cover.jpg", "Cover.JPG", "folder.png", "FRONT.jpeg", "front.webp", "a/b/cover.jpg"}) {
    EXPECT_TRUE(IsAlbumPictureName(name)) << name;
  }
  for (const char* name :
       {"back.jpg", "cover.gif", "cover", "covers.jpg", "my cover.jpg", ".jpg", "cover.jpg.part"}) {
    EXPECT_FALSE(IsAlbumPictureName(name)) << name;
  }
}

}  // namespace
}  // namespace dispotify
