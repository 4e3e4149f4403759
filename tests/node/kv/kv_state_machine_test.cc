#include "node/kv/kv_state_machine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

namespace dispotify::kv {
namespace {

// Writes the snapshot payload to a plain file (the real SnapshotStore is tested in storage).
class FileWriter final : public consensus::SnapshotSink {
 public:
  explicit FileWriter(std::string path)
      : path_(std::move(path)), out_(path_, std::ios::binary | std::ios::trunc) {}
  Status Write(std::string_view data) override {
    out_.write(data.data(), static_cast<std::streamsize>(data.size()));
    return out_ ? Status::Ok() : Status::IoError("write");
  }
  Status Commit() {
    out_.close();
    return Status::Ok();
  }

 private:
  std::string path_;
  std::ofstream out_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::string content(static_cast<size_t>(std::max<std::streamoff>(in.tellg(), 0)), '\0');
  in.seekg(0);
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  return content;
}

consensus::Entry Normal(uint64_t index, std::string data) {
  return consensus::Entry{Term(1), LogIndex(index), consensus::EntryType::kNormal, std::move(data)};
}

TEST(KvStateMachineTest, CommandEncodingRoundTrip) {
  Command c;  // views into the encoded bytes, which must outlive it
  const std::string put = EncodePut("k", std::string("v\0x", 3));
  ASSERT_TRUE(DecodeCommand(put, &c));
  EXPECT_EQ(c.op, Op::kPut);
  EXPECT_EQ(c.key, "k");
  EXPECT_EQ(c.value, std::string_view("v\0x", 3));
  const std::string del = EncodeDelete("gone");
  ASSERT_TRUE(DecodeCommand(del, &c));
  EXPECT_EQ(c.op, Op::kDelete);
  EXPECT_EQ(c.key, "gone");
  EXPECT_FALSE(DecodeCommand("", &c));
  EXPECT_FALSE(DecodeCommand(std::string("\x01\x09\x00\x00\x00k", 6), &c));  // key length past the end
  EXPECT_FALSE(DecodeCommand(std::string("\x07\x00\x00\x00\x00", 5), &c));   // unknown op
}

TEST(KvStateMachineTest, ApplyPutDeleteAndMalformed) {
  KvStateMachine sm;
  EXPECT_TRUE(sm.Apply(Normal(1, EncodePut("a", "1"))).status.ok());
  EXPECT_TRUE(sm.Apply(Normal(2, EncodePut("b", "2"))).status.ok());
  EXPECT_TRUE(sm.Apply(consensus::Entry{Term(2), LogIndex(3), consensus::EntryType::kNoop, ""}).status.ok());
  EXPECT_TRUE(sm.Apply(Normal(4, EncodeDelete("a"))).status.ok());
  EXPECT_FALSE(sm.Apply(Normal(5, "garbage")).status.ok());  // rejected, but applied (index moves)
  EXPECT_EQ(sm.applied_index(), LogIndex(5));
  EXPECT_FALSE(sm.Get("a").has_value());
  EXPECT_EQ(sm.Get("b").value_or(""), "2");
}

TEST(KvStateMachineTest, SnapshotRestoreRoundTrip) {
  KvStateMachine sm;
  uint64_t index = 0;
  for (int i = 0; i < 5000; ++i) {
    ASSERT_TRUE(sm.Apply(Normal(++index, EncodePut("key" + std::to_string(i), std::string(i % 300, 'v'))))
                    .status.ok());
  }
  ASSERT_TRUE(
      sm.Apply(Normal(++index, EncodePut(std::string("bin\0key", 7), std::string("\0\1\2", 3)))).status.ok());
  ASSERT_TRUE(sm.Apply(Normal(++index, EncodeDelete("key7"))).status.ok());

  std::string path = ::testing::TempDir() + "/kv-snapshot-test.bin";
  {
    FileWriter w(path);
    ASSERT_TRUE(sm.SaveSnapshot(w).ok());
    ASSERT_TRUE(w.Commit().ok());
  }
  KvStateMachine restored;
  ASSERT_TRUE(restored.Restore(path).ok());
  EXPECT_EQ(restored.applied_index(), sm.applied_index());
  EXPECT_EQ(restored.size(), sm.size());
  EXPECT_EQ(restored.Get("key42"), sm.Get("key42"));
  EXPECT_FALSE(restored.Get("key7").has_value());
  EXPECT_EQ(restored.Get(std::string("bin\0key", 7)).value_or(""), std::string("\0\1\2", 3));
  // Applying continues from the restored index.
  EXPECT_TRUE(restored.Apply(Normal(index + 1, EncodePut("after", "x"))).status.ok());

  // A flipped byte or a truncated file is detected.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  KvStateMachine corrupt;
  Status st = corrupt.Restore(path);
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  std::remove(path.c_str());
  EXPECT_FALSE(corrupt.Restore(path).ok());
}

TEST(KvStateMachineTest, SameStateSameSnapshotBytes) {
  KvStateMachine a;
  KvStateMachine b;
  ASSERT_TRUE(a.Apply(Normal(1, EncodePut("x", "1"))).status.ok());
  ASSERT_TRUE(a.Apply(Normal(2, EncodePut("y", "2"))).status.ok());
  ASSERT_TRUE(b.Apply(Normal(1, EncodePut("y", "2"))).status.ok());
  ASSERT_TRUE(b.Apply(Normal(2, EncodePut("x", "1"))).status.ok());
  std::string pa = ::testing::TempDir() + "/kv-a.bin";
  std::string pb = ::testing::TempDir() + "/kv-b.bin";
  {
    FileWriter wa(pa);
    FileWriter wb(pb);
    ASSERT_TRUE(a.SaveSnapshot(wa).ok());
    ASSERT_TRUE(b.SaveSnapshot(wb).ok());
  }
  EXPECT_EQ(ReadAll(pa), ReadAll(pb));
  std::remove(pa.c_str());
  std::remove(pb.c_str());
}

}  // namespace
}  // namespace dispotify::kv
