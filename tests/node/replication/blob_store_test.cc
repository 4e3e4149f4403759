#include "node/replication/blob_store.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "tests/mocks/fault_injecting_file_system.h"
#include "tests/mocks/temp_dir.h"
#include "tests/support/bytes.h"

namespace dispotify::replication {
namespace {

using mocks::FaultInjectingFileSystem;
using mocks::FsOp;
using mocks::TempDir;

using testing_bytes::Bytes;

// Counts every call that reaches the file system (the path-trick test expects none).
class CountingFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override {
    ++calls;
    return base_.Open(path, mode);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    ++calls;
    return base_.Rename(from, to);
  }
  Status Remove(const std::string& path) override {
    ++calls;
    return base_.Remove(path);
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    ++calls;
    return base_.ListDir(dir);
  }
  Status CreateDirs(const std::string& dir) override {
    ++calls;
    return base_.CreateDirs(dir);
  }
  Status SyncDir(const std::string& dir) override {
    ++calls;
    return base_.SyncDir(dir);
  }
  Result<uint64_t> FileSize(const std::string& path) override {
    ++calls;
    return base_.FileSize(path);
  }
  bool Exists(const std::string& path) override {
    ++calls;
    return base_.Exists(path);
  }
  bool IsDirectory(const std::string& path) override {
    ++calls;
    return base_.IsDirectory(path);
  }
  Result<FileSystemSpace> Space(const std::string& path) override {
    ++calls;
    return base_.Space(path);
  }
  int calls = 0;

 private:
  FileSystem& base_ = DefaultFileSystem();
};

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // A fresh BlobStore over the same directory (a restart of the node).
  void Reopen() {
    store_.reset();
    auto s = OpenBlobStore(fs_, tmp_.path());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  Status Put(const std::string& id, const std::string& data, BlobWriteOptions options = {}) {
    auto w = store_->Create(id, std::move(options));
    if (!w.ok()) return w.status();
    DISPOTIFY_RETURN_IF_ERROR((*w)->Append(data));
    return (*w)->Commit();
  }

  // The whole content through the verified sequential read.
  Result<std::string> Get(const std::string& id) {
    auto r = store_->Open(id);
    if (!r.ok()) return r.status();
    std::string out;
    DISPOTIFY_RETURN_IF_ERROR((*r)->ReadAll([&](std::string_view piece) {
      out += piece;
      return Status::Ok();
    }));
    return out;
  }

  std::string BlobFile(const std::string& id) {
    return tmp_.path() + "/blobs/" + ToHex(Sha256Digest(id).data(), 1) + "/" + id;
  }

  std::vector<std::string> TempFiles() {
    auto names = DefaultFileSystem().ListDir(tmp_.path() + "/blobs/.tmp");
    EXPECT_TRUE(names.ok()) << names.status().ToString();
    return names.ok() ? *names : std::vector<std::string>{};
  }

  // Nothing about `id` is visible, and no temp file is left.
  void ExpectNothingVisible(const std::string& id) {
    EXPECT_FALSE(store_->Exists(id));
    EXPECT_EQ(store_->Open(id).status().code(), StatusCode::kNotFound);
    auto page = store_->List("", 100);
    ASSERT_TRUE(page.ok());
    EXPECT_TRUE(page->file_ids.empty());
    EXPECT_EQ(store_->Stats()->files, 0u);
    EXPECT_EQ(store_->Stats()->bytes, 0u);
    EXPECT_TRUE(TempFiles().empty());
  }

  TempDir tmp_;
  FaultInjectingFileSystem fs_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, StreamingWriteAndReadBack) {
  const std::string data = Bytes(3 * 1024 * 1024 + 17, 1);
  auto w =
      store_->Create("track-01.flac", {.expected_size = data.size(), .expected_sha256 = Sha256Hex(data)});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  // Pieces of every shape: tiny, buffer-sized, larger than the buffer.
  size_t pos = 0;
  for (size_t n : {1, 100, 4096, 300 * 1024, 256 * 1024, 1024 * 1024, 70000}) {
    ASSERT_TRUE((*w)->Append(std::string_view(data).substr(pos, n)).ok());
    pos += n;
  }
  ASSERT_TRUE((*w)->Append(std::string_view(data).substr(pos)).ok());
  EXPECT_FALSE(store_->Exists("track-01.flac")) << "visible before Commit";
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ((*w)->sha256(), Sha256Hex(data));
  EXPECT_LE((*w)->peak_buffered_bytes(), BlobWriter::kBufferSize);
  EXPECT_TRUE(TempFiles().empty());

  EXPECT_TRUE(store_->Exists("track-01.flac"));
  auto r = store_->Open("track-01.flac");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->size(), data.size());
  EXPECT_EQ((*r)->sha256(), Sha256Hex(data));
  EXPECT_EQ(*(*r)->ReadAt(0, 10), data.substr(0, 10));
  EXPECT_EQ(*(*r)->ReadAt(1234567, 5000), data.substr(1234567, 5000));
  EXPECT_EQ(*(*r)->ReadAt(data.size() - 3, 100), data.substr(data.size() - 3));
  EXPECT_EQ(*(*r)->ReadAt(data.size(), 100), "");
  EXPECT_EQ(*Get("track-01.flac"), data);
  EXPECT_TRUE(store_->VerifyChecksum("track-01.flac").ok());

  // The on-disk layout of blob_store.h: blobs/<shard>/<id>, a 256-byte header, then the content
  // byte for byte (what sendfile from path()/data_offset() sends).
  EXPECT_EQ((*r)->path(), BlobFile("track-01.flac"));
  EXPECT_EQ((*r)->data_offset(), BlobStore::kHeaderSize);
  auto raw = ReadFileToString(DefaultFileSystem(), (*r)->path());
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->substr(0, 8), "DSPFYBLB");
  EXPECT_EQ(raw->substr(BlobStore::kHeaderSize), data);

  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->files, 1u);
  EXPECT_EQ(stats->bytes, data.size());
  EXPECT_GT(stats->free_bytes, 0u);
  EXPECT_GE(stats->total_bytes, stats->free_bytes);
}

TEST_F(BlobStoreTest, EmptyBlobAndNoExpectations) {
  ASSERT_TRUE(Put("empty", "").ok());
  EXPECT_EQ(*Get("empty"), "");
  EXPECT_EQ((*store_->Open("empty"))->sha256(), Sha256Hex(""));
  EXPECT_TRUE(store_->VerifyChecksum("empty").ok());

  auto w = store_->Create("x");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("hello").ok());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ((*w)->sha256(), Sha256Hex("hello"));
  EXPECT_EQ((*w)->Append("more").code(), StatusCode::kFailedPrecondition);
}

TEST_F(BlobStoreTest, ChecksumOrSizeMismatchOnCommitMakesNothingVisible) {
  const std::string data = Bytes(100000, 2);
  // Wrong SHA-256 (upper case is accepted as the same digest).
  std::string upper = Sha256Hex("something else");
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(Put("a", data, {.expected_sha256 = upper}).code(), StatusCode::kCorruption);
  ExpectNothingVisible("a");
  std::string good_upper = Sha256Hex(data);
  for (char& c : good_upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ASSERT_TRUE(Put("b", data, {.expected_sha256 = good_upper}).ok());
  ASSERT_TRUE(store_->Delete("b").ok());

  // Too few bytes: caught at Commit.
  EXPECT_EQ(Put("a", data, {.expected_size = data.size() + 1}).code(), StatusCode::kCorruption);
  ExpectNothingVisible("a");

  // Too many bytes: caught by the Append that goes past, and the writer stays failed.
  auto w = store_->Create("a", {.expected_size = 10});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("0123456").ok());
  EXPECT_EQ((*w)->Append("7890").code(), StatusCode::kCorruption);
  EXPECT_TRUE(TempFiles().empty());
  EXPECT_EQ((*w)->Append("7").code(), StatusCode::kCorruption);
  EXPECT_EQ((*w)->Commit().code(), StatusCode::kCorruption);
  ExpectNothingVisible("a");

  // Malformed expectation.
  EXPECT_EQ(store_->Create("a", {.expected_sha256 = "abc"}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(BlobStoreTest, AbortAndDestructionDeleteTheTempFile) {
  {
    auto w = store_->Create("a");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Bytes(1000, 3)).ok());
    EXPECT_EQ(TempFiles().size(), 1u);
    (*w)->Abort();
    EXPECT_TRUE(TempFiles().empty());
    EXPECT_EQ((*w)->Commit().code(), StatusCode::kAborted);
  }
  {
    auto w = store_->Create("a");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Bytes(1000, 3)).ok());
  }
  ExpectNothingVisible("a");
}

TEST_F(BlobStoreTest, CorruptedByteOnDiskIsReportedByFullReadAndScrub) {
  const std::string data = Bytes(2 * 1024 * 1024 + 5, 4);  // several 1 MiB read pieces
  ASSERT_TRUE(Put("song", data).ok());
  ASSERT_TRUE(fs_.FlipByte(BlobFile("song"), BlobStore::kHeaderSize + 1500000).ok());

  auto r = store_->Open("song");
  ASSERT_TRUE(r.ok()) << "the header is intact";
  uint64_t delivered = 0;
  Status s = (*r)->ReadAll([&](std::string_view piece) {
    delivered += piece.size();
    return Status::Ok();
  });
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_LT(delivered, data.size()) << "the piece that completes a bad stream must be withheld";
  // The reader stays failed.
  char buf[16];
  EXPECT_EQ((*r)->ReadNext(buf, sizeof(buf)).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(store_->VerifyChecksum("song").code(), StatusCode::kCorruption);
  // Ranged reads are not verified (the scrub above is what catches this).
  EXPECT_TRUE((*r)->ReadAt(0, 100).ok());

  // A damaged header or a wrong length fails Open itself.
  ASSERT_TRUE(Put("song2", data).ok());
  ASSERT_TRUE(fs_.FlipByte(BlobFile("song2"), 30).ok());
  EXPECT_EQ(store_->Open("song2").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(store_->VerifyChecksum("song2").code(), StatusCode::kCorruption);
  ASSERT_TRUE(Put("song3", data).ok());
  {
    auto f = DefaultFileSystem().Open(BlobFile("song3"), OpenMode::kReadWrite);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Truncate(BlobStore::kHeaderSize + data.size() - 1).ok());
  }
  EXPECT_EQ(store_->Open("song3").status().code(), StatusCode::kCorruption);
  {
    auto f = DefaultFileSystem().Open(BlobFile("song3"), OpenMode::kReadWrite);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Truncate(BlobStore::kHeaderSize + data.size() + 1).ok());  // one byte too long
  }
  EXPECT_EQ(store_->Open("song3").status().code(), StatusCode::kCorruption);
  // A blob moved under another id's name.
  ASSERT_TRUE(Put("song4", "four").ok());
  ASSERT_TRUE(Put("song5", "five").ok());
  ASSERT_TRUE(DefaultFileSystem().Rename(BlobFile("song4"), BlobFile("song5")).ok());
  EXPECT_EQ(store_->Open("song5").status().code(), StatusCode::kCorruption);
}

TEST_F(BlobStoreTest, OpenVerifiedRefusesACopyChangedSinceItsLastVerification) {
  const std::string data = Bytes(300000, 9);
  ASSERT_TRUE(Put("served", data).ok());
  auto first = store_->OpenVerified("served");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(store_->OpenVerified("served").ok()) << "unchanged: remembered as verified";
  // File times have the kernel's coarse clock: let it tick so the change is visible.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_TRUE(fs_.FlipByte(BlobFile("served"), BlobStore::kHeaderSize + 1234).ok());
  EXPECT_EQ(store_->OpenVerified("served").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(store_->OpenVerified("served").status().code(), StatusCode::kCorruption) << "and stays refused";
  ASSERT_TRUE(Put("served", data).ok());  // a verified copy heals it
  EXPECT_TRUE(store_->OpenVerified("served").ok());
  EXPECT_EQ(store_->OpenVerified("missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->OpenVerified("../x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(BlobStoreTest, RecommitIsIdempotentAndHealsADamagedCopy) {
  const std::string a = Bytes(50000, 5);
  const std::string b = Bytes(70000, 6);
  ASSERT_TRUE(Put("id", a).ok());
  ASSERT_TRUE(Put("id", a, {.expected_sha256 = Sha256Hex(a)}).ok());
  EXPECT_EQ(store_->Stats()->files, 1u);
  EXPECT_EQ(store_->Stats()->bytes, a.size());

  // Different content: refused unless overwrite.
  EXPECT_EQ(Put("id", b).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*Get("id"), a);
  EXPECT_TRUE(TempFiles().empty());
  ASSERT_TRUE(Put("id", b, {.overwrite = true}).ok());
  EXPECT_EQ(*Get("id"), b);
  EXPECT_EQ(store_->Stats()->files, 1u);
  EXPECT_EQ(store_->Stats()->bytes, b.size());

  // A copy damaged on disk is replaced by a re-commit of the same content (repair).
  ASSERT_TRUE(fs_.FlipByte(BlobFile("id"), BlobStore::kHeaderSize + 10).ok());
  EXPECT_EQ(store_->VerifyChecksum("id").code(), StatusCode::kCorruption);
  ASSERT_TRUE(Put("id", b).ok());
  EXPECT_TRUE(store_->VerifyChecksum("id").ok());
  // ... and so is one whose header is unreadable.
  ASSERT_TRUE(fs_.FlipByte(BlobFile("id"), 3).ok());
  ASSERT_TRUE(Put("id", b).ok());
  EXPECT_EQ(*Get("id"), b);
}

TEST_F(BlobStoreTest, PathTricksAreRejectedWithoutTouchingTheDisk) {
  CountingFileSystem counting;
  auto opened = OpenBlobStore(counting, tmp_.path() + "/counted");
  ASSERT_TRUE(opened.ok());
  BlobStore& store = **opened;
  const std::vector<std::string> bad = {
      "",
      ".",
      "..",
      "../x",
      "../../etc/passwd",
      "/etc/passwd",
      "a/b",
      "a\\b",
      std::string("a\0b", 3),
      std::string(1, '\0'),
      std::string(129, 'a'),
      "a b",
      "a\nb",
      "caf\xc3\xa9",
      "%2e%2e",
  };
  counting.calls = 0;
  for (const std::string& id : bad) {
    EXPECT_EQ(store.Create(id).status().code(), StatusCode::kInvalidArgument) << id;
    EXPECT_EQ(store.Open(id).status().code(), StatusCode::kInvalidArgument) << id;
    EXPECT_EQ(store.VerifyChecksum(id).code(), StatusCode::kInvalidArgument) << id;
    EXPECT_EQ(store.Delete(id).code(), StatusCode::kInvalidArgument) << id;
    EXPECT_FALSE(store.Exists(id)) << id;
    if (!id.empty()) {
      EXPECT_EQ(store.List(id, 10).status().code(), StatusCode::kInvalidArgument) << id;
    }
  }
  EXPECT_EQ(counting.calls, 0) << "an invalid id reached the file system";

  // The edges that are valid.
  for (const std::string& id :
       {std::string(128, 'a'), std::string("..."), std::string(".hidden"), std::string("A-z_0.9")}) {
    auto w = store.Create(id);
    ASSERT_TRUE(w.ok()) << id;
    ASSERT_TRUE((*w)->Append(id).ok());
    ASSERT_TRUE((*w)->Commit().ok()) << id;
    EXPECT_TRUE(store.VerifyChecksum(id).ok()) << id;
  }
}

TEST_F(BlobStoreTest, FullDiskMidWriteIsNoSpaceAndLeavesNothing) {
  // Write #1 is Create's zero header; every 1 MiB Append is one write; the disk fills on the 3rd.
  fs_.Inject({.op = FsOp::kWrite, .nth = 3, .err = ENOSPC, .sticky = true, .partial_bytes = 4096});
  auto w = store_->Create("big");
  ASSERT_TRUE(w.ok());
  const std::string mib = Bytes(size_t{1} << 20, 7);
  Status s;
  for (int i = 0; i < 8 && s.ok(); ++i) s = (*w)->Append(mib);
  EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s.ToString();
  EXPECT_TRUE(TempFiles().empty()) << "the partial temp file must be deleted at once";
  EXPECT_EQ((*w)->Commit().code(), StatusCode::kNoSpace);
  ExpectNothingVisible("big");

  // Already full when the header is written.
  EXPECT_EQ(store_->Create("big").status().code(), StatusCode::kNoSpace);
  EXPECT_TRUE(TempFiles().empty());

  // The buffered tail fails at Commit: same outcome.
  fs_.ClearFaults();
  auto w2 = store_->Create("small");
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE((*w2)->Append("tail that stays in the buffer").ok());
  fs_.FailNthWrite(1, ENOSPC);
  EXPECT_EQ((*w2)->Commit().code(), StatusCode::kNoSpace);
  ExpectNothingVisible("small");

  // Space again: writes succeed.
  fs_.ClearFaults();
  ASSERT_TRUE(Put("big", mib).ok());
  EXPECT_EQ(*Get("big"), mib);
}

TEST_F(BlobStoreTest, TheReserveIsNeverWrittenInto) {
  constexpr uint64_t kReserve = 64ull << 20;
  store_.reset();
  auto opened = OpenBlobStore(fs_, tmp_.path(), BlobStoreOptions{.reserved_bytes = kReserve});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  store_ = std::move(opened).value();
  EXPECT_EQ(store_->Stats()->reserved_bytes, kReserve);

  // 1 MiB above the reserve: a blob announced larger than that is refused before any byte.
  fs_.SetFreeBytes(kReserve + (1 << 20));
  auto refused = store_->Create("announced", {.expected_size = 2 << 20});
  EXPECT_EQ(refused.status().code(), StatusCode::kNoSpace);
  EXPECT_NE(refused.status().message().find("kept in reserve"), std::string::npos)
      << refused.status().ToString();
  EXPECT_TRUE(TempFiles().empty());
  // One that fits is written.
  const std::string small = Bytes(512 << 10, 3);
  ASSERT_TRUE(Put("fits", small, {.expected_size = small.size()}).ok());

  // Exactly at the reserve: nothing new starts, even without an announced size.
  fs_.SetFreeBytes(kReserve);
  EXPECT_EQ(store_->Create("unannounced").status().code(), StatusCode::kNoSpace);

  // The disk fills while a blob of unknown size streams in: the writer notices at its next check
  // (every kSpaceCheckBytes), fails with kNoSpace and leaves nothing behind.
  fs_.SetFreeBytes(std::nullopt);
  auto w = store_->Create("streaming");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  const std::string mib = Bytes(size_t{1} << 20, 9);
  Status s;
  uint64_t appended = 0;
  for (; appended < 8 && s.ok(); ++appended) s = (*w)->Append(mib);
  ASSERT_TRUE(s.ok()) << s.ToString();
  fs_.SetFreeBytes(kReserve - 1);
  for (; appended < 64 && s.ok(); ++appended) s = (*w)->Append(mib);
  EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s.ToString();
  EXPECT_LE(appended << 20, BlobStore::kSpaceCheckBytes + (1 << 20));
  EXPECT_TRUE(TempFiles().empty());
  EXPECT_FALSE(store_->Exists("streaming"));

  // Space again (someone deleted songs): writes succeed; the earlier blob is intact.
  fs_.SetFreeBytes(std::nullopt);
  ASSERT_TRUE(Put("streaming", mib).ok());
  EXPECT_EQ(*Get("fits"), small);
}

TEST_F(BlobStoreTest, FailedFsyncLeavesNothing) {
  auto w = store_->Create("x");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Bytes(10000, 8)).ok());
  fs_.FailNthSync(1, EIO);
  EXPECT_EQ((*w)->Commit().code(), StatusCode::kIoError);
  ExpectNothingVisible("x");
}

TEST_F(BlobStoreTest, CrashBeforeRenameLeavesNothingAfterRestart) {
  const std::string data = Bytes(600000, 9);
  // The process dies after the temp file is synced, before the rename.
  fs_.Inject({.op = FsOp::kRename, .nth = 1, .err = EIO});
  EXPECT_EQ(Put("x", data).code(), StatusCode::kIoError);
  ASSERT_TRUE(fs_.Crash().ok());
  fs_.ClearFaults();
  Reopen();
  ExpectNothingVisible("x");

  // The process dies in the middle of the stream (with a torn tail on disk).
  auto w = store_->Create("y");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(data).ok());
  ASSERT_TRUE(fs_.Crash(/*keep_unsynced_bytes=*/1000).ok());
  EXPECT_FALSE((*w)->Commit().ok()) << "handles from before the crash are dead";
  w->reset();
  Reopen();
  ExpectNothingVisible("y");
}

TEST_F(BlobStoreTest, CommittedBlobSurvivesACrash) {
  const std::string data = Bytes(700000, 10);
  ASSERT_TRUE(Put("x", data).ok());
  ASSERT_TRUE(fs_.Crash().ok());
  Reopen();
  EXPECT_EQ(*Get("x"), data);
  EXPECT_EQ(store_->Stats()->files, 1u);
  EXPECT_EQ(store_->Stats()->bytes, data.size());
}

TEST_F(BlobStoreTest, CrashBetweenRenameAndDirectorySyncShowsAllOrNothing) {
  const std::string data = Bytes(700000, 11);
  fs_.Inject({.op = FsOp::kSyncDir, .nth = 1, .err = EIO, .path_substr = "/blobs/"});
  EXPECT_EQ(Put("x", data).code(), StatusCode::kIoError);
  ASSERT_TRUE(fs_.Crash().ok());
  fs_.ClearFaults();
  Reopen();
  if (store_->Exists("x")) {
    EXPECT_EQ(*Get("x"), data);
  } else {
    ExpectNothingVisible("x");
  }
}

TEST_F(BlobStoreTest, LeftoverTempFilesAreRemovedOnOpen) {
  FileSystem& fs = DefaultFileSystem();
  for (const char* name : {"7-x.tmp", "junk"}) {
    auto f = fs.Open(tmp_.path() + "/blobs/.tmp/" + name, OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append("partial").ok());
  }
  EXPECT_EQ(TempFiles().size(), 2u);
  Reopen();
  EXPECT_TRUE(TempFiles().empty());
}

TEST_F(BlobStoreTest, DeleteListAndStats) {
  std::set<std::string> ids;
  uint64_t bytes = 0;
  for (int i = 0; i < 53; ++i) {
    const std::string id = "f" + std::to_string(i);
    const std::string data = Bytes(static_cast<size_t>(i) * 10, static_cast<uint64_t>(i));
    ASSERT_TRUE(Put(id, data).ok());
    ids.insert(id);
    bytes += data.size();
  }
  for (const char* id : {"f3", "f17", "f40"}) {
    ASSERT_TRUE(store_->Delete(id).ok());
    EXPECT_EQ(store_->Delete(id).code(), StatusCode::kNotFound);
    EXPECT_FALSE(store_->Exists(id));
    ids.erase(id);
  }
  bytes -= 30 + 170 + 400;
  EXPECT_EQ(store_->Stats()->files, ids.size());
  EXPECT_EQ(store_->Stats()->bytes, bytes);

  // Paging visits every blob exactly once, in a stable order.
  std::vector<std::string> listed;
  std::string after;
  int pages = 0;
  do {
    auto page = store_->List(after, 7);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_LE(page->file_ids.size(), 7u);
    listed.insert(listed.end(), page->file_ids.begin(), page->file_ids.end());
    after = page->next_after;
    ASSERT_LT(++pages, 100);
  } while (!after.empty());
  EXPECT_EQ(listed.size(), ids.size());
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), ids);
  auto all = store_->List("", 10000);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->file_ids, listed);
  EXPECT_TRUE(all->next_after.empty());
  EXPECT_EQ(store_->List("", 0).status().code(), StatusCode::kInvalidArgument);

  // A restart recounts the same totals from the disk.
  Reopen();
  EXPECT_EQ(store_->Stats()->files, ids.size());
  EXPECT_EQ(store_->Stats()->bytes, bytes);
}

TEST_F(BlobStoreTest, ReaderKeepsItsCopyWhenTheBlobIsDeleted) {
  ASSERT_TRUE(Put("x", "old").ok());
  auto r = store_->Open("x");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(store_->Delete("x").ok());
  EXPECT_EQ(*(*r)->ReadAt(0, 10), "old");
}

uint64_t PeakRssBytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // kilobytes on Linux
}

TEST_F(BlobStoreTest, MemoryStaysBoundedWritingA256MiBFile) {
  constexpr size_t kTotal = size_t{256} << 20;
  constexpr size_t kChunk = size_t{64} << 10;
  static_assert(BlobWriter::kBufferSize <= size_t{1} << 20);
  const uint64_t rss_before = PeakRssBytes();
  auto w = store_->Create("big.flac", {.expected_size = kTotal});
  ASSERT_TRUE(w.ok());
  std::string chunk = Bytes(kChunk, 12);
  Sha256 expected;
  for (size_t done = 0; done < kTotal; done += kChunk) {
    chunk.replace(0, sizeof(done), reinterpret_cast<const char*>(&done),
                  sizeof(done));  // every chunk differs
    expected.Update(chunk);
    ASSERT_TRUE((*w)->Append(chunk).ok());
    ASSERT_LE((*w)->peak_buffered_bytes(), BlobWriter::kBufferSize);
  }
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ((*w)->sha256(), expected.FinalHex());
  EXPECT_EQ(store_->Stats()->bytes, kTotal);
  EXPECT_TRUE(store_->VerifyChecksum("big.flac").ok());  // reads back in bounded pieces too
  const uint64_t rss_growth = PeakRssBytes() - rss_before;
  std::printf("256 MiB blob: writer peak buffered %zu bytes (bound %zu); peak RSS growth %.1f MiB\n",
              (*w)->peak_buffered_bytes(), BlobWriter::kBufferSize,
              static_cast<double>(rss_growth) / (1024.0 * 1024.0));
  EXPECT_LT(rss_growth, kTotal / 4) << "the writer or the reader held a large part of the file";
}

}  // namespace
}  // namespace dispotify::replication
