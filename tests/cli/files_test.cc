// What `dispotifyctl upload` picks: the audio-extension filter and the folder walk, on temp dirs.

#include "cli/dispotifyctl/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/mocks/temp_dir.h"

namespace dispotify::cli {
namespace {

namespace fs = std::filesystem;

void Write(const std::string& path, size_t bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << std::string(bytes, 'x');
}

std::vector<std::string> Names(const UploadPlan& plan) {
  std::vector<std::string> out;
  for (const auto& f : plan.files) out.push_back(f.name);
  return out;
}

TEST(FilesTest, AudioExtensions) {
  for (const char* name : {"a.mp3", "a.flac", "a.ogg", "a.opus", "a.m4a", "a.wav", "a.aac", "Song.FLAC",
                           "x.y.Mp3", "dir.d/song.wav", "with space.ogg"}) {
    EXPECT_TRUE(IsAudioFileName(name)) << name;
  }
  for (const char* name :
       {"notes.txt", "mp3", ".mp3", "a.mp3.part", "a.", "", "cover.jpg", "a.mp4", "dir.mp3/x", "a.mp33"}) {
    EXPECT_FALSE(IsAudioFileName(name)) << name;
  }
}

TEST(FilesTest, WalksFoldersRecursivelyInPathOrder) {
  mocks::TempDir dir;
  Write(dir.Sub("music/b.mp3"), 3);
  Write(dir.Sub("music/a.flac"), 5);
  Write(dir.Sub("music/scan.jpg"), 1);
  Write(dir.Sub("music/sub/deeper/c.OGG"), 7);
  Write(dir.Sub("music/sub/readme.txt"), 1);
  fs::create_directories(dir.Sub("music/empty"));

  UploadPlan plan = PlanUploads({dir.Sub("music")});
  EXPECT_EQ(Names(plan), (std::vector<std::string>{"a.flac", "b.mp3", "c.OGG"}));
  ASSERT_EQ(plan.files.size(), 3u);
  EXPECT_EQ(plan.files[0].path, dir.Sub("music/a.flac"));
  EXPECT_EQ(plan.files[0].size, 5u);
  EXPECT_EQ(plan.files[2].path, dir.Sub("music/sub/deeper/c.OGG"));
  EXPECT_EQ(plan.files[2].size, 7u);
  // Paths are sent relative to the folder's parent, like a browser's webkitRelativePath.
  EXPECT_EQ(plan.files[0].relative_path, "music/a.flac");
  EXPECT_EQ(plan.files[2].relative_path, "music/sub/deeper/c.OGG");
  EXPECT_EQ(plan.skipped, 2u);
  EXPECT_TRUE(plan.problems.empty());
}

// A folder's album pictures go after all its songs: the node finds a picture's album from the
// songs beside it.
TEST(FilesTest, AlbumPicturesComeAfterTheSongs) {
  mocks::TempDir dir;
  Write(dir.Sub("m/A/cover.jpg"), 1);
  Write(dir.Sub("m/A/01.mp3"), 2);
  Write(dir.Sub("m/B/Folder.png"), 3);
  Write(dir.Sub("m/B/01.flac"), 4);
  Write(dir.Sub("m/B/back.jpg"), 5);
  UploadPlan plan = PlanUploads({dir.Sub("m")});
  std::vector<std::string> paths;
  for (const auto& f : plan.files) paths.push_back(f.relative_path);
  EXPECT_EQ(paths,
            (std::vector<std::string>{"m/A/01.mp3", "m/B/01.flac", "m/A/cover.jpg", "m/B/Folder.png"}));
  EXPECT_EQ(plan.skipped, 1u);  // back.jpg
}

TEST(FilesTest, RelativePathsNameTheFolderHoweverItIsWritten) {
  mocks::TempDir dir;
  Write(dir.Sub("Music/Album A/01 - Intro.mp3"), 1);
  Write(dir.Sub("Music/Album B/01 - Intro.mp3"), 2);
  for (const std::string& operand :
       {dir.Sub("Music"), dir.Sub("Music/"), dir.Sub("Music/."), dir.Sub("Music/Album A/../")}) {
    UploadPlan plan = PlanUploads({operand});
    std::vector<std::string> paths;
    for (const auto& f : plan.files) paths.push_back(f.relative_path);
    EXPECT_EQ(paths,
              (std::vector<std::string>{"Music/Album A/01 - Intro.mp3", "Music/Album B/01 - Intro.mp3"}))
        << operand;
  }
  // A file operand is sent under its own name; a subfolder under its own name.
  UploadPlan file = PlanUploads({dir.Sub("Music/Album A/01 - Intro.mp3")});
  ASSERT_EQ(file.files.size(), 1u);
  EXPECT_EQ(file.files[0].relative_path, "01 - Intro.mp3");
  UploadPlan album = PlanUploads({dir.Sub("Music/Album B")});
  ASSERT_EQ(album.files.size(), 1u);
  EXPECT_EQ(album.files[0].relative_path, "Album B/01 - Intro.mp3");
}

TEST(FilesTest, HashFile) {
  mocks::TempDir dir;
  std::ofstream(dir.Sub("a.mp3"), std::ios::binary) << "hello world";
  auto d = HashFile(dir.Sub("a.mp3"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(ToHex(*d), "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
  EXPECT_FALSE(HashFile(dir.Sub("missing.mp3")).ok());
}

TEST(FilesTest, FileOperandsKeepTheirOrderAndNonAudioIsAProblem) {
  mocks::TempDir dir;
  Write(dir.Sub("z.wav"), 1);
  Write(dir.Sub("a.mp3"), 2);
  Write(dir.Sub("notes.txt"), 3);
  UploadPlan plan =
      PlanUploads({dir.Sub("z.wav"), dir.Sub("notes.txt"), dir.Sub("a.mp3"), dir.Sub("missing.mp3")});
  EXPECT_EQ(Names(plan), (std::vector<std::string>{"z.wav", "a.mp3"}));
  ASSERT_EQ(plan.problems.size(), 2u);
  EXPECT_EQ(plan.problems[0].path, dir.Sub("notes.txt"));
  EXPECT_NE(plan.problems[0].reason.find("not an audio file"), std::string::npos);
  EXPECT_EQ(plan.problems[1].path, dir.Sub("missing.mp3"));
  EXPECT_EQ(plan.problems[1].reason, "no such file or folder");
}

TEST(FilesTest, APathReachedTwiceIsSentOnce) {
  mocks::TempDir dir;
  Write(dir.Sub("m/a.mp3"), 1);
  UploadPlan plan = PlanUploads({dir.Sub("m"), dir.Sub("m/a.mp3"), dir.Sub("m/../m/a.mp3")});
  EXPECT_EQ(Names(plan), std::vector<std::string>{"a.mp3"});
}

TEST(FilesTest, SymlinksToFilesAreFollowedSymlinkedFoldersAreNot) {
  mocks::TempDir dir;
  Write(dir.Sub("elsewhere/real.mp3"), 4);
  Write(dir.Sub("m/own.mp3"), 1);
  fs::create_symlink(dir.Sub("elsewhere/real.mp3"), dir.Sub("m/link.mp3"));
  fs::create_directory_symlink(dir.Sub("elsewhere"), dir.Sub("m/linked-dir"));
  fs::create_directory_symlink(dir.Sub("m"), dir.Sub("m/loop"));
  fs::create_symlink(dir.Sub("nowhere.mp3"), dir.Sub("m/dangling.mp3"));
  UploadPlan plan = PlanUploads({dir.Sub("m")});
  EXPECT_EQ(Names(plan), (std::vector<std::string>{"link.mp3", "own.mp3"}));
  ASSERT_EQ(plan.files.size(), 2u);
  EXPECT_EQ(plan.files[0].size, 4u);
  EXPECT_TRUE(plan.problems.empty());
}

TEST(FilesTest, UnreadableSubfolderDoesNotStopTheWalk) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads every folder";
  mocks::TempDir dir;
  Write(dir.Sub("m/a.mp3"), 1);
  Write(dir.Sub("m/locked/b.mp3"), 1);
  Write(dir.Sub("m/z/c.mp3"), 1);
  ::chmod(dir.Sub("m/locked").c_str(), 0);
  UploadPlan plan = PlanUploads({dir.Sub("m")});
  ::chmod(dir.Sub("m/locked").c_str(), 0755);
  EXPECT_EQ(Names(plan), (std::vector<std::string>{"a.mp3", "c.mp3"}));
}

TEST(FilesTest, EmptyAndSpecialOperands) {
  mocks::TempDir dir;
  fs::create_directories(dir.Sub("empty"));
  UploadPlan plan = PlanUploads({dir.Sub("empty")});
  EXPECT_TRUE(plan.files.empty());
  EXPECT_TRUE(plan.problems.empty());
  ASSERT_EQ(::mkfifo(dir.Sub("pipe.mp3").c_str(), 0600), 0);
  plan = PlanUploads({dir.Sub("pipe.mp3")});
  ASSERT_EQ(plan.problems.size(), 1u);
  EXPECT_EQ(plan.problems[0].reason, "not a regular file or a folder");
}

}  // namespace
}  // namespace dispotify::cli
