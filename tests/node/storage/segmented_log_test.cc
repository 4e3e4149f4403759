#include "node/storage/segmented_log.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "common/logging.h"
#include "tests/mocks/fault_injecting_file_system.h"
#include "tests/mocks/temp_dir.h"

namespace dispotify::storage {
namespace {

using consensus::Entry;
using consensus::EntryType;
using mocks::FaultInjectingFileSystem;
using mocks::FsOp;
using mocks::TempDir;
namespace sl = segmented_log;

constexpr size_t kRecordOverhead = sl::kRecordHeaderSize;

Entry MakeEntry(uint64_t index, uint64_t term, size_t size = 100) {
  std::string data = "i" + std::to_string(index) + "t" + std::to_string(term) + ":";
  data.resize(std::max(size, data.size()), static_cast<char>('a' + (index * 7 + term) % 26));
  data.resize(size);
  const auto type =
      index % 11 == 0 ? EntryType::kConfChange : (index % 5 == 0 ? EntryType::kNoop : EntryType::kNormal);
  return Entry{Term(term), LogIndex(index), type, data};
}

std::vector<Entry> MakeEntries(uint64_t first, uint64_t last, uint64_t term, size_t size = 100) {
  std::vector<Entry> out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(MakeEntry(i, term, size));
  return out;
}

class SegmentedLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([this](LogLevel level, const std::string& line) {
      if (level >= LogLevel::kWarning) warnings_.push_back(line);
    });
  }
  void TearDown() override {
    if (log_) log_->CheckInvariants();
    SetLogSink(nullptr);
  }

  Status Open(uint64_t segment_bytes = 64 << 20) {
    log_.reset();
    LogStoreOptions options;
    options.segment_bytes = segment_bytes;
    auto log = SegmentedLog::Open(fs_, dir_, options);
    if (!log.ok()) return log.status();
    log_ = std::move(log).value();
    log_->CheckInvariants();
    return Status::Ok();
  }

  void OpenOk(uint64_t segment_bytes = 64 << 20) {
    Status s = Open(segment_bytes);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Simulates a power failure and restarts the log.
  void CrashAndReopen(uint64_t keep_unsynced_bytes = 0, uint64_t segment_bytes = 64 << 20) {
    log_.reset();
    ASSERT_TRUE(fs_.Crash(keep_unsynced_bytes).ok());
    OpenOk(segment_bytes);
  }

  void AppendOk(const std::vector<Entry>& entries) {
    Status s = log_->Append(entries);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void SyncOk() {
    Status s = log_->Sync();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::vector<Entry> ReadAll() {
    auto r = log_->Read(log_->first_index(), log_->last_index());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<Entry>{};
  }

  std::vector<std::string> SegmentFiles() {
    std::vector<std::string> out;
    auto names = fs_.ListDir(dir_);
    EXPECT_TRUE(names.ok());
    for (const auto& n : *names) {
      LogIndex first;
      if (sl::ParseSegmentFileName(n, &first)) out.push_back(JoinPath(dir_, n));
    }
    return out;
  }

  bool WarnedAbout(const std::string& needle) const {
    for (const auto& w : warnings_) {
      if (w.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  TempDir tmp_;
  FaultInjectingFileSystem fs_;
  const std::string dir_ = tmp_.Sub("log");
  std::unique_ptr<SegmentedLog> log_;
  std::vector<std::string> warnings_;
};

TEST(SegmentFileNameTest, RoundTrip) {
  EXPECT_EQ(sl::SegmentFileName(LogIndex(42)), "log-00000000000000000042.seg");
  LogIndex first;
  ASSERT_TRUE(sl::ParseSegmentFileName("log-18446744073709551615.seg", &first));
  EXPECT_EQ(first, LogIndex(UINT64_MAX));
  EXPECT_FALSE(sl::ParseSegmentFileName("log-00000000000000000042.seg.tmp", &first));
  EXPECT_FALSE(sl::ParseSegmentFileName("log-0000000000000000004x.seg", &first));
  EXPECT_FALSE(sl::ParseSegmentFileName("log-99999999999999999999.seg", &first));  // > UINT64_MAX
}

TEST_F(SegmentedLogTest, FreshLogIsEmptyAtIndexOne) {
  OpenOk();
  EXPECT_EQ(log_->first_index(), LogIndex(1));
  EXPECT_EQ(log_->last_index(), LogIndex(0));
  EXPECT_TRUE(ReadAll().empty());
  EXPECT_EQ(SegmentFiles().size(), 1u);
}

TEST_F(SegmentedLogTest, AppendReadReopen) {
  OpenOk();
  auto entries = MakeEntries(1, 50, 1);
  entries.push_back(Entry{Term(2), LogIndex(51), EntryType::kNormal, ""});  // empty data
  entries.push_back(Entry{Term(2), LogIndex(52), EntryType::kNormal, std::string(100000, '\xAB')});
  AppendOk({entries.begin(), entries.begin() + 10});
  AppendOk({entries.begin() + 10, entries.end()});
  EXPECT_EQ(log_->last_index(), LogIndex(52));
  EXPECT_EQ(ReadAll(), entries);
  auto mid = log_->Read(LogIndex(7), LogIndex(12));
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(*mid, std::vector<Entry>(entries.begin() + 6, entries.begin() + 12));
  SyncOk();

  OpenOk();
  EXPECT_EQ(log_->first_index(), LogIndex(1));
  EXPECT_EQ(log_->last_index(), LogIndex(52));
  EXPECT_EQ(ReadAll(), entries);
  AppendOk(MakeEntries(53, 60, 3));
  EXPECT_EQ(log_->last_index(), LogIndex(60));
  EXPECT_TRUE(warnings_.empty());
}

TEST_F(SegmentedLogTest, ReadOutsideTheLog) {
  OpenOk();
  AppendOk(MakeEntries(1, 10, 1));
  EXPECT_EQ(log_->Read(LogIndex(0), LogIndex(3)).status().code(), StatusCode::kCompacted);
  EXPECT_EQ(log_->Read(LogIndex(5), LogIndex(11)).status().code(), StatusCode::kInvalidArgument);
  auto none = log_->Read(LogIndex(6), LogIndex(5));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(SegmentedLogTest, AppendRejectsMalformedBatches) {
  OpenOk();
  AppendOk(MakeEntries(1, 5, 2));
  EXPECT_EQ(log_->Append(MakeEntries(7, 8, 2)).code(), StatusCode::kInvalidArgument);  // gap
  EXPECT_EQ(log_->Append({MakeEntry(6, 2), MakeEntry(8, 2)}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->Append({MakeEntry(6, 3), MakeEntry(7, 2)}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->Append({MakeEntry(6, 1)}).code(), StatusCode::kInvalidArgument);  // term goes back
  EXPECT_EQ(log_->Append({MakeEntry(3, 1)}).code(), StatusCode::kInvalidArgument);  // ... after index 2
  EXPECT_EQ(log_->last_index(), LogIndex(5));                                       // nothing truncated
  EXPECT_TRUE(log_->Append({}).ok());
  AppendOk({MakeEntry(6, 2)});  // still usable
}

TEST_F(SegmentedLogTest, TruncateSuffixWithinASegment) {
  OpenOk();
  AppendOk(MakeEntries(1, 20, 1));
  SyncOk();
  auto replacement = MakeEntries(15, 17, 2, 30);
  AppendOk(replacement);
  EXPECT_EQ(log_->last_index(), LogIndex(17));
  auto expected = MakeEntries(1, 14, 1);
  expected.insert(expected.end(), replacement.begin(), replacement.end());
  EXPECT_EQ(ReadAll(), expected);
  SyncOk();
  OpenOk();
  EXPECT_EQ(ReadAll(), expected);
}

TEST_F(SegmentedLogTest, RollOverAtSegmentBytes) {
  const uint64_t kSegmentBytes = 1000;  // about 8 records of 125 bytes
  OpenOk(kSegmentBytes);
  for (uint64_t i = 1; i <= 100; i += 4) AppendOk(MakeEntries(i, i + 3, 1));
  SyncOk();
  EXPECT_GT(log_->segment_count(), 5u);
  // Closed segments hold at least segment_bytes, and a batch never spans two segments.
  auto files = SegmentFiles();
  ASSERT_EQ(files.size(), log_->segment_count());
  for (size_t i = 0; i + 1 < files.size(); ++i) {
    auto size = fs_.FileSize(files[i]);
    ASSERT_TRUE(size.ok());
    EXPECT_GE(*size, kSegmentBytes);
    EXPECT_EQ((*size - sl::kHeaderSize) % (4 * (kRecordOverhead + 100)), 0u);
  }
  EXPECT_EQ(ReadAll(), MakeEntries(1, 100, 1));
  OpenOk(kSegmentBytes);
  EXPECT_EQ(ReadAll(), MakeEntries(1, 100, 1));
}

TEST_F(SegmentedLogTest, TruncateSuffixAcrossSegments) {
  OpenOk(1000);
  AppendOk(MakeEntries(1, 100, 1));  // one batch: one segment
  for (uint64_t i = 101; i <= 200; i += 5) AppendOk(MakeEntries(i, i + 4, 1));
  SyncOk();
  const size_t segments_before = log_->segment_count();
  ASSERT_GT(segments_before, 5u);

  // Conflict at 42: everything from 42 on goes, in the first segment and all later ones.
  // The first segment, cut to [1, 41], is still past segment_bytes: 42.. goes to a new one.
  AppendOk(MakeEntries(42, 45, 2));
  EXPECT_EQ(log_->segment_count(), 2u);
  EXPECT_EQ(SegmentFiles().size(), 2u);
  auto expected = MakeEntries(1, 41, 1);
  for (const auto& e : MakeEntries(42, 45, 2)) expected.push_back(e);
  EXPECT_EQ(ReadAll(), expected);
  SyncOk();
  OpenOk(1000);
  EXPECT_EQ(ReadAll(), expected);

  // A conflict at the first index of a later segment keeps that segment, emptied.
  for (uint64_t i = 46; i <= 120; i += 5) AppendOk(MakeEntries(i, i + 4, 2));
  const LogIndex second_first = [&] {
    auto files = SegmentFiles();
    LogIndex f;
    EXPECT_TRUE(sl::ParseSegmentFileName(files.back().substr(dir_.size() + 1), &f));
    return f;
  }();
  AppendOk({MakeEntry(second_first.value(), 3)});
  EXPECT_EQ(log_->last_index(), second_first);
  auto tail = log_->Read(second_first.prev(), second_first);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ((*tail)[0].term, Term(2));
  EXPECT_EQ((*tail)[1].term, Term(3));
}

TEST_F(SegmentedLogTest, TruncateEverythingDownToTheFirstIndex) {
  OpenOk(1000);
  AppendOk(MakeEntries(1, 30, 1));
  AppendOk(MakeEntries(1, 3, 5));
  EXPECT_EQ(ReadAll(), MakeEntries(1, 3, 5));
  SyncOk();
  OpenOk(1000);
  EXPECT_EQ(ReadAll(), MakeEntries(1, 3, 5));
}

TEST_F(SegmentedLogTest, CompactPrefixDropsWholeSegmentsOnly) {
  OpenOk(1000);
  for (uint64_t i = 1; i <= 100; i += 4) AppendOk(MakeEntries(i, i + 3, 1));
  SyncOk();
  const size_t before = log_->segment_count();
  // Segments hold 8 entries each here ([1, 8], [9, 16], ...): compacting to 20 drops two.
  ASSERT_TRUE(log_->CompactPrefix(LogIndex(20)).ok());
  EXPECT_EQ(log_->segment_count(), before - 2);
  EXPECT_EQ(log_->first_index(), LogIndex(17));
  EXPECT_EQ(log_->Read(LogIndex(16), LogIndex(17)).status().code(), StatusCode::kCompacted);
  EXPECT_EQ(ReadAll(), MakeEntries(17, 100, 1));
  // The open segment always stays, so the log remembers its end.
  ASSERT_TRUE(log_->CompactPrefix(LogIndex(1000)).ok());
  EXPECT_EQ(log_->segment_count(), 1u);
  EXPECT_EQ(log_->last_index(), LogIndex(100));
  const LogIndex first = log_->first_index();
  OpenOk(1000);
  EXPECT_EQ(log_->first_index(), first);
  EXPECT_EQ(ReadAll(), MakeEntries(first.value(), 100, 1));
}

TEST_F(SegmentedLogTest, ResetDropsEverything) {
  OpenOk(1000);
  AppendOk(MakeEntries(1, 60, 1));
  for (uint64_t i = 61; i <= 80; ++i) AppendOk({MakeEntry(i, 1)});
  SyncOk();
  ASSERT_TRUE(log_->Reset(LogIndex(500)).ok());
  EXPECT_EQ(log_->first_index(), LogIndex(500));
  EXPECT_EQ(log_->last_index(), LogIndex(499));
  EXPECT_EQ(SegmentFiles().size(), 1u);
  EXPECT_EQ(log_->Append(MakeEntries(501, 502, 1)).code(), StatusCode::kInvalidArgument);
  // Durable when it returns, with no Sync: a crash right now keeps the reset.
  CrashAndReopen(0, 1000);
  EXPECT_EQ(log_->first_index(), LogIndex(500));
  EXPECT_EQ(log_->last_index(), LogIndex(499));
  AppendOk(MakeEntries(500, 510, 1));  // any term: nothing before it is known
  SyncOk();
  // A reset to a lower index, over an existing segment name.
  ASSERT_TRUE(log_->Reset(LogIndex(500)).ok());
  ASSERT_TRUE(log_->Reset(LogIndex(3)).ok());
  OpenOk(1000);
  EXPECT_EQ(log_->first_index(), LogIndex(3));
  EXPECT_EQ(log_->last_index(), LogIndex(2));
  EXPECT_EQ(log_->Reset(LogIndex(0)).code(), StatusCode::kInvalidArgument);
}

TEST_F(SegmentedLogTest, ResetInterruptedAfterItsCommitPointFinishesOnOpen) {
  OpenOk(1000);
  for (uint64_t i = 1; i <= 40; i += 4) AppendOk(MakeEntries(i, i + 3, 1));
  SyncOk();
  ASSERT_GT(log_->segment_count(), 2u);
  // The new segment is created and its rename made durable; the removal of the old ones fails.
  fs_.Inject({FsOp::kRemove, 2, EIO, true, 0, ""});
  EXPECT_FALSE(log_->Reset(LogIndex(100)).ok());
  EXPECT_FALSE(log_->Append({MakeEntry(100, 1)}).ok());  // unusable after a failure
  EXPECT_GT(SegmentFiles().size(), 1u);                  // old segments still there
  fs_.ClearFaults();
  CrashAndReopen(0, 1000);
  EXPECT_TRUE(WarnedAbout("interrupted reset"));
  EXPECT_EQ(SegmentFiles().size(), 1u);
  EXPECT_EQ(log_->first_index(), LogIndex(100));
  EXPECT_EQ(log_->last_index(), LogIndex(99));
}

TEST_F(SegmentedLogTest, ResetInterruptedBeforeItsCommitPointKeepsTheOldLog) {
  OpenOk(1000);
  AppendOk(MakeEntries(1, 20, 1));
  SyncOk();
  fs_.Inject({FsOp::kRename, 1, EIO, false, 0, ""});
  EXPECT_FALSE(log_->Reset(LogIndex(100)).ok());
  CrashAndReopen(0, 1000);
  EXPECT_EQ(ReadAll(), MakeEntries(1, 20, 1));
}

TEST_F(SegmentedLogTest, AppendIsOneWriteCall) {
  OpenOk();
  const uint64_t before = fs_.write_count();
  AppendOk(MakeEntries(1, 64, 1, 256));
  EXPECT_EQ(fs_.write_count() - before, 1u);
  const uint64_t syncs = fs_.sync_count();
  SyncOk();
  SyncOk();  // nothing new: no second fdatasync
  EXPECT_EQ(fs_.sync_count() - syncs, 1u);
}

TEST_F(SegmentedLogTest, LostUnsyncedWritesAfterACrash) {
  OpenOk();
  AppendOk(MakeEntries(1, 10, 1));
  SyncOk();
  AppendOk(MakeEntries(11, 20, 1));
  CrashAndReopen();
  EXPECT_EQ(ReadAll(), MakeEntries(1, 10, 1));
  EXPECT_FALSE(WarnedAbout("truncating"));  // a clean cut at a record boundary
}

TEST_F(SegmentedLogTest, SegmentCreatedWithoutDirectorySyncIsLostInACrash) {
  OpenOk(1000);
  AppendOk(MakeEntries(1, 10, 1));
  SyncOk();
  AppendOk(MakeEntries(11, 12, 1));  // rolls over: new segment, directory not synced yet
  ASSERT_EQ(log_->segment_count(), 2u);
  CrashAndReopen(0, 1000);
  EXPECT_EQ(ReadAll(), MakeEntries(1, 10, 1));
  EXPECT_EQ(SegmentFiles().size(), 1u);

  AppendOk(MakeEntries(11, 12, 1));  // rolls over again
  SyncOk();                          // now the directory is synced too
  CrashAndReopen(0, 1000);
  EXPECT_EQ(ReadAll(), MakeEntries(1, 12, 1));
}

TEST_F(SegmentedLogTest, TornTailIsTruncatedWithAWarning) {
  OpenOk();
  AppendOk(MakeEntries(1, 10, 1));
  SyncOk();
  AppendOk(MakeEntries(11, 15, 1));
  // The crash keeps one whole record and 40 bytes of the next.
  CrashAndReopen(kRecordOverhead + 100 + 40);
  EXPECT_EQ(log_->last_index(), LogIndex(11));
  EXPECT_EQ(ReadAll(), MakeEntries(1, 11, 1));
  EXPECT_TRUE(WarnedAbout("truncating 40 byte(s)"));
  // The cut is durable and the log is writable where it left off.
  AppendOk(MakeEntries(12, 13, 2));
  SyncOk();
  OpenOk();
  auto expected = MakeEntries(1, 11, 1);
  for (const auto& e : MakeEntries(12, 13, 2)) expected.push_back(e);
  EXPECT_EQ(ReadAll(), expected);
}

TEST_F(SegmentedLogTest, EveryTornLengthRecoversAPrefix) {
  const size_t kUnsynced = 5 * (kRecordOverhead + 100);
  for (size_t keep = 0; keep <= kUnsynced; keep += 7) {
    SCOPED_TRACE("keep " + std::to_string(keep));
    log_.reset();
    ASSERT_TRUE(fs_.Crash().ok());
    std::filesystem::remove_all(dir_);
    OpenOk();
    AppendOk(MakeEntries(1, 10, 1));
    SyncOk();
    AppendOk(MakeEntries(11, 15, 1));
    CrashAndReopen(keep);
    const uint64_t whole = keep / (kRecordOverhead + 100);
    EXPECT_EQ(log_->last_index(), LogIndex(10 + whole));
    EXPECT_EQ(ReadAll(), MakeEntries(1, 10 + whole, 1));
  }
}

TEST_F(SegmentedLogTest, FlippedByteInTheLastRecordIsTruncated) {
  OpenOk();
  AppendOk(MakeEntries(1, 10, 1));
  SyncOk();
  auto size = fs_.FileSize(SegmentFiles().back());
  ASSERT_TRUE(size.ok());
  log_.reset();
  ASSERT_TRUE(fs_.FlipByte(SegmentFiles().back(), *size - 3).ok());  // in entry 10's data
  OpenOk();
  EXPECT_EQ(log_->last_index(), LogIndex(9));
  EXPECT_EQ(ReadAll(), MakeEntries(1, 9, 1));
  EXPECT_TRUE(WarnedAbout("checksum mismatch"));
}

TEST_F(SegmentedLogTest, FlippedByteInAClosedSegmentIsCorruption) {
  OpenOk(1000);
  for (uint64_t i = 1; i <= 40; i += 4) AppendOk(MakeEntries(i, i + 3, 1));
  SyncOk();
  auto files = SegmentFiles();
  ASSERT_GT(files.size(), 2u);
  log_.reset();
  ASSERT_TRUE(fs_.FlipByte(files[0], sl::kHeaderSize + kRecordOverhead + 100 + 30).ok());  // entry 2
  Status s = Open(1000);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("closed segment"), std::string::npos) << s.ToString();
}

TEST_F(SegmentedLogTest, DamagedLengthInAClosedSegmentIsCorruption) {
  OpenOk(1000);
  for (uint64_t i = 1; i <= 40; i += 4) AppendOk(MakeEntries(i, i + 3, 1));
  SyncOk();
  auto files = SegmentFiles();
  log_.reset();
  ASSERT_TRUE(fs_.FlipByte(files[1], sl::kHeaderSize + 2, 0x40).ok());  // length of its first record
  EXPECT_EQ(Open(1000).code(), StatusCode::kCorruption);
}

TEST_F(SegmentedLogTest, BadHeaderIsCorruption) {
  OpenOk();
  AppendOk(MakeEntries(1, 3, 1));
  SyncOk();
  log_.reset();
  for (size_t offset : {size_t{0}, size_t{9}, size_t{13}, size_t{21}, size_t{29}}) {
    SCOPED_TRACE(offset);
    ASSERT_TRUE(fs_.FlipByte(SegmentFiles()[0], offset).ok());
    EXPECT_EQ(Open().code(), StatusCode::kCorruption);
    ASSERT_TRUE(fs_.FlipByte(SegmentFiles()[0], offset).ok());  // repaired
    OpenOk();
    log_.reset();
  }
  // A header shorter than its size.
  {
    auto f = fs_.Open(SegmentFiles()[0], OpenMode::kReadWrite);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Truncate(10).ok());
  }
  EXPECT_EQ(Open().code(), StatusCode::kCorruption);
}

TEST_F(SegmentedLogTest, HeaderThatDisagreesWithTheNameIsCorruption) {
  OpenOk();
  AppendOk(MakeEntries(1, 3, 1));
  SyncOk();
  log_.reset();
  ASSERT_TRUE(fs_.Rename(SegmentFiles()[0], JoinPath(dir_, sl::SegmentFileName(LogIndex(2)))).ok());
  EXPECT_EQ(Open().code(), StatusCode::kCorruption);
}

TEST_F(SegmentedLogTest, MissingMiddleSegmentIsCorruption) {
  OpenOk(1000);
  for (uint64_t i = 1; i <= 40; i += 4) AppendOk(MakeEntries(i, i + 3, 1));
  SyncOk();
  auto files = SegmentFiles();
  ASSERT_GT(files.size(), 2u);
  log_.reset();
  ASSERT_TRUE(fs_.Remove(files[1]).ok());
  Status s = Open(1000);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("gap"), std::string::npos) << s.ToString();
}

TEST_F(SegmentedLogTest, ReadNeverServesARecordDamagedAfterOpen) {
  OpenOk();
  AppendOk(MakeEntries(1, 10, 1));
  SyncOk();
  ASSERT_TRUE(fs_.FlipByte(SegmentFiles()[0], sl::kHeaderSize + 4 * (kRecordOverhead + 100) + 50).ok());
  auto r = log_->Read(LogIndex(1), LogIndex(10));
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_TRUE(log_->Read(LogIndex(1), LogIndex(4)).ok());
  EXPECT_EQ(log_->Read(LogIndex(5), LogIndex(5)).status().code(), StatusCode::kCorruption);
}

TEST_F(SegmentedLogTest, NoSpaceOnAppendFailsAndReopenShowsTheDurablePrefix) {
  OpenOk();
  AppendOk(MakeEntries(1, 10, 1));
  SyncOk();
  fs_.Inject({FsOp::kWrite, 1, ENOSPC, true, 300, ""});  // a full disk, after a short write
  Status s = log_->Append(MakeEntries(11, 20, 1));
  EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s.ToString();
  EXPECT_EQ(log_->last_index(), LogIndex(10));  // claims nothing it did not write
  EXPECT_EQ(log_->Append(MakeEntries(11, 11, 1)).code(), StatusCode::kNoSpace);
  EXPECT_EQ(log_->Sync().code(), StatusCode::kNoSpace);
  EXPECT_FALSE(log_->Read(LogIndex(1), LogIndex(1)).ok());
  fs_.ClearFaults();
  OpenOk();
  EXPECT_EQ(ReadAll(), MakeEntries(1, 10, 1));
  AppendOk(MakeEntries(11, 12, 1));  // space is back
}

TEST_F(SegmentedLogTest, NoSpaceWhileRollingOver) {
  OpenOk(1000);
  AppendOk(MakeEntries(1, 10, 1));
  SyncOk();
  fs_.Inject({FsOp::kWrite, 1, ENOSPC, true, 0, ".tmp"});  // the new segment's header
  EXPECT_EQ(log_->Append(MakeEntries(11, 12, 1)).code(), StatusCode::kNoSpace);
  fs_.ClearFaults();
  CrashAndReopen(0, 1000);
  EXPECT_EQ(ReadAll(), MakeEntries(1, 10, 1));
  EXPECT_EQ(SegmentFiles().size(), 1u);
  AppendOk(MakeEntries(11, 12, 1));
}

TEST_F(SegmentedLogTest, FailedSyncMakesTheLogUnusable) {
  OpenOk();
  AppendOk(MakeEntries(1, 10, 1));
  SyncOk();
  AppendOk(MakeEntries(11, 12, 1));
  fs_.FailNthSync(1);
  EXPECT_EQ(log_->Sync().code(), StatusCode::kIoError);
  EXPECT_EQ(log_->Append(MakeEntries(13, 13, 1)).code(), StatusCode::kIoError);
  EXPECT_EQ(log_->Sync().code(), StatusCode::kIoError);  // no retry that could "succeed"
  CrashAndReopen();
  EXPECT_EQ(ReadAll(), MakeEntries(1, 10, 1));
}

TEST_F(SegmentedLogTest, CrashAfterATruncationNeverMixesOldAndNewRecords) {
  OpenOk();
  AppendOk(MakeEntries(1, 20, 1));
  SyncOk();
  AppendOk(MakeEntries(15, 25, 2));  // truncates 15..20 (synced at once), appends unsynced
  for (size_t keep = 0; keep < 3 * (kRecordOverhead + 100); keep += 50) {
    SCOPED_TRACE(keep);
    CrashAndReopen(keep);
    const auto all = ReadAll();
    ASSERT_GE(all.size(), 14u);
    for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].term, Term(i < 14 ? 1 : 2));
    // Restore the scenario for the next round.
    AppendOk(MakeEntries(all.size() + 1, 25, 2));
  }
}

// Random appends, conflicting appends, syncs and crashes (with torn tails) against a model: after
// a crash the log must be a prefix of what was written that holds at least everything synced.
TEST_F(SegmentedLogTest, RandomizedCrashRecovery) {
  const char* env = std::getenv("DISPOTIFY_SEED");
  const uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::cout << "seed " << seed << " (rerun with DISPOTIFY_SEED=" << seed << ")\n";
  SCOPED_TRACE("DISPOTIFY_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const uint64_t kSegmentBytes = 2000;
  OpenOk(kSegmentBytes);
  std::vector<Entry> written;  // what the log holds now (from index 1)
  size_t durable = 0;          // written[0, durable) survives any crash
  uint64_t term = 1;
  for (int step = 0; step < 400; ++step) {
    const int op = static_cast<int>(rng() % 10);
    if (op < 5) {
      // Append, sometimes over a suffix.
      uint64_t start = written.size() + 1;
      if (rng() % 4 == 0 && !written.empty()) {
        start = 1 + rng() % written.size();
        ++term;
      }
      const uint64_t n = 1 + rng() % 8;
      std::vector<Entry> batch;
      for (uint64_t i = start; i < start + n; ++i) batch.push_back(MakeEntry(i, term, rng() % 300));
      AppendOk(batch);
      written.resize(start - 1);
      durable = std::min(durable, written.size());
      written.insert(written.end(), batch.begin(), batch.end());
    } else if (op < 8) {
      SyncOk();
      durable = written.size();
    } else {
      CrashAndReopen(rng() % 400, kSegmentBytes);
      const auto got = ReadAll();
      ASSERT_GE(got.size(), durable) << "step " << step;
      ASSERT_LE(got.size(), written.size()) << "step " << step;
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i], written[i]) << "step " << step << " index " << i + 1;
      written = got;
      durable = got.size();
      term = got.empty() ? term : std::max(term, got.back().term.value());
    }
    log_->CheckInvariants();
  }
}

}  // namespace
}  // namespace dispotify::storage
