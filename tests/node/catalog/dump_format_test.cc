#include "node/catalog/dump_format.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/mocks/temp_dir.h"

namespace dispotify::catalog {
namespace {

Song MakeSong(int i) {
  Song s;
  s.file_id = "song-" + std::to_string(i);
  s.title = "Title " + std::to_string(i) + " Beyoncé 東京";
  s.artist = "Artist";
  s.album = std::string("Al\0bum", 6);  // embedded NUL survives
  s.file_name = "f.mp3";
  s.content_type = "audio/mpeg";
  s.track = static_cast<uint32_t>(i);
  s.year = 1999;
  s.duration_ms = 123456789012ULL;
  s.size_bytes = 1ULL << 40;
  s.sha256 = std::string(64, 'a');
  s.created_at_ms = -5;
  return s;
}

std::vector<DumpRecord> SampleRecords(int songs) {
  std::vector<DumpRecord> records;
  for (int i = 0; i < songs; ++i) records.emplace_back(MakeSong(i));
  records.emplace_back(Replica{"song-1", NodeId(7), ReplicaState::kCorrupt, 42});
  records.emplace_back(Replica{"song-2", NodeId(UINT64_MAX), ReplicaState::kHealthy, INT64_MIN});
  records.emplace_back(Lock{"upload/x", "node-3", 99999, 17});
  records.emplace_back(DumpSetting{"replication_factor", "3"});
  records.emplace_back(DumpSetting{"", ""});
  return records;
}

std::string Encode(LogIndex index, const std::vector<DumpRecord>& records) {
  std::string out;
  DumpWriter w([&out](std::string_view chunk) {
    out.append(chunk);
    return Status::Ok();
  });
  EXPECT_TRUE(w.Begin(index).ok());
  for (const auto& r : records) {
    Status st;
    if (const auto* s = std::get_if<Song>(&r)) st = w.Add(*s);
    if (const auto* rep = std::get_if<Replica>(&r)) st = w.Add(*rep);
    if (const auto* l = std::get_if<Lock>(&r)) st = w.Add(*l);
    if (const auto* kv = std::get_if<DumpSetting>(&r)) st = w.AddSetting(kv->key, kv->value);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_TRUE(w.Finish().ok());
  return out;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Reads the whole dump; returns the first error, or OK with the records.
Status ReadAll(const std::string& path, LogIndex* index, std::vector<DumpRecord>* out) {
  auto reader = DumpReader::Open(path);
  if (!reader.ok()) return reader.status();
  *index = (*reader)->applied_index();
  while (true) {
    auto next = (*reader)->Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return Status::Ok();
    out->push_back(std::move(**next));
  }
}

TEST(DumpFormatTest, RoundTrip) {
  mocks::TempDir dir;
  // Enough songs to cross the writer's flush threshold several times.
  const auto records = SampleRecords(3000);
  WriteFile(dir.Sub("d"), Encode(LogIndex(123456), records));
  LogIndex index;
  std::vector<DumpRecord> got;
  ASSERT_TRUE(ReadAll(dir.Sub("d"), &index, &got).ok());
  EXPECT_EQ(index, LogIndex(123456));
  EXPECT_EQ(got, records);
}

// The library group of a song record (schema 3) is optional both ways: a record without it (as
// version 1 wrote, or a song whose album artist is just its artist) reads with the defaults.
TEST(DumpFormatTest, SongLibraryFieldsAreAnOptionalTrailingGroup) {
  Song tagged = MakeSong(1);
  tagged.album_artist = "Various Artists";
  tagged.disc = 3;
  tagged.genre = "Jazz";
  tagged.compilation = true;
  std::string payload;
  EncodeDumpRecord(DumpRecord(tagged), &payload);
  auto back = DecodeDumpRecord(DumpRecordKind::kSong, payload);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(std::get<Song>(*back), tagged);

  Song plain = MakeSong(2);  // as stored: album_artist = artist, no other library field
  plain.album_artist = plain.artist;
  plain.album_id = "0123456789abcdef";  // derived, never written
  std::string plain_payload;
  EncodeDumpRecord(DumpRecord(plain), &plain_payload);
  Song v1 = MakeSong(2);
  std::string v1_payload;
  EncodeDumpRecord(DumpRecord(v1), &v1_payload);
  EXPECT_EQ(plain_payload.size(), v1_payload.size() - (4 + 4 + 4 + 1))
      << "the group is left out (it would hold \"\", 0, \"\", 0 for v1's empty album_artist)";
  auto plain_back = DecodeDumpRecord(DumpRecordKind::kSong, plain_payload);
  ASSERT_TRUE(plain_back.ok());
  EXPECT_EQ(std::get<Song>(*plain_back).album_artist, "");
  EXPECT_EQ(std::get<Song>(*plain_back).album_id, "");
  EXPECT_EQ(std::get<Song>(*plain_back).title, plain.title);

  // A truncated group or a bad flag is corruption.
  EXPECT_FALSE(DecodeDumpRecord(DumpRecordKind::kSong, payload.substr(0, payload.size() - 1)).ok());
  std::string bad_flag = payload;
  bad_flag.back() = 7;
  EXPECT_FALSE(DecodeDumpRecord(DumpRecordKind::kSong, bad_flag).ok());
}

// The cover rides after the library group (which is then written even at its defaults); a song
// without one is written as before.
TEST(DumpFormatTest, SongCoverIsAnOptionalGroupAfterTheLibraryFields) {
  Song covered = MakeSong(3);
  covered.album_artist = covered.artist;  // the library group at its defaults
  covered.cover = std::string(64, 'c');
  std::string payload;
  EncodeDumpRecord(DumpRecord(covered), &payload);
  auto back = DecodeDumpRecord(DumpRecordKind::kSong, payload);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(std::get<Song>(*back), covered);

  Song plain = covered;
  plain.cover.clear();
  std::string plain_payload;
  EncodeDumpRecord(DumpRecord(plain), &plain_payload);
  EXPECT_LT(plain_payload.size(), payload.size());
  auto plain_back = DecodeDumpRecord(DumpRecordKind::kSong, plain_payload);
  ASSERT_TRUE(plain_back.ok());
  EXPECT_EQ(std::get<Song>(*plain_back).cover, "");
  // A truncated cover is corruption.
  EXPECT_FALSE(DecodeDumpRecord(DumpRecordKind::kSong, payload.substr(0, payload.size() - 1)).ok());
}

TEST(DumpFormatTest, EmptyDump) {
  mocks::TempDir dir;
  WriteFile(dir.Sub("d"), Encode(LogIndex(0), {}));
  LogIndex index(9);
  std::vector<DumpRecord> got;
  ASSERT_TRUE(ReadAll(dir.Sub("d"), &index, &got).ok());
  EXPECT_EQ(index, LogIndex(0));
  EXPECT_TRUE(got.empty());
}

TEST(DumpFormatTest, NextAfterEndKeepsReturningEnd) {
  mocks::TempDir dir;
  WriteFile(dir.Sub("d"), Encode(LogIndex(1), {}));
  auto reader = DumpReader::Open(dir.Sub("d"));
  ASSERT_TRUE(reader.ok());
  for (int i = 0; i < 3; ++i) {
    auto next = (*reader)->Next();
    ASSERT_TRUE(next.ok());
    EXPECT_FALSE(next->has_value());
  }
}

TEST(DumpFormatTest, EveryTruncationIsCorruption) {
  mocks::TempDir dir;
  const std::string full = Encode(LogIndex(5), SampleRecords(3));
  for (size_t len = 0; len < full.size(); ++len) {
    WriteFile(dir.Sub("d"), full.substr(0, len));
    LogIndex index;
    std::vector<DumpRecord> got;
    Status st = ReadAll(dir.Sub("d"), &index, &got);
    EXPECT_EQ(st.code(), StatusCode::kCorruption) << "length " << len << ": " << st.ToString();
  }
}

TEST(DumpFormatTest, EveryBitFlipIsDetected) {
  mocks::TempDir dir;
  const std::string full = Encode(LogIndex(5), SampleRecords(2));
  for (size_t byte = 0; byte < full.size(); ++byte) {
    for (int bit = 0; bit < 8; bit += 3) {
      std::string bad = full;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      WriteFile(dir.Sub("d"), bad);
      LogIndex index;
      std::vector<DumpRecord> got;
      Status st = ReadAll(dir.Sub("d"), &index, &got);
      EXPECT_EQ(st.code(), StatusCode::kCorruption) << "byte " << byte << " bit " << bit;
    }
  }
}

TEST(DumpFormatTest, TrailingBytesAreCorruption) {
  mocks::TempDir dir;
  WriteFile(dir.Sub("d"), Encode(LogIndex(5), SampleRecords(1)) + "x");
  LogIndex index;
  std::vector<DumpRecord> got;
  EXPECT_EQ(ReadAll(dir.Sub("d"), &index, &got).code(), StatusCode::kCorruption);
}

TEST(DumpFormatTest, MissingFileIsNotCorruption) {
  mocks::TempDir dir;
  auto reader = DumpReader::Open(dir.Sub("nope"));
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().code(), StatusCode::kCorruption);
}

TEST(DumpFormatTest, SinkErrorIsSticky) {
  int calls = 0;
  DumpWriter w([&calls](std::string_view) {
    ++calls;
    return Status::NoSpace("disk full");
  });
  ASSERT_TRUE(w.Begin(LogIndex(1)).ok());  // buffered
  Status st = w.Finish();
  EXPECT_EQ(st.code(), StatusCode::kNoSpace);
  EXPECT_EQ(w.Add(MakeSong(1)).code(), StatusCode::kNoSpace);
  EXPECT_EQ(calls, 1);
}

TEST(DumpFormatTest, MisuseIsRejected) {
  DumpWriter w([](std::string_view) { return Status::Ok(); });
  EXPECT_EQ(w.Add(MakeSong(1)).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(w.Begin(LogIndex(1)).ok());
  EXPECT_EQ(w.Begin(LogIndex(1)).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_EQ(w.AddSetting("k", "v").code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dispotify::catalog
