#include "node/replication/sealed_blob.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "common/encoding.h"
#include "common/sha256.h"
#include "tests/mocks/temp_dir.h"
#include "tests/support/bytes.h"

namespace dispotify::replication {
namespace {

using mocks::TempDir;

constexpr uint32_t kTiny = 16;  // chunk size of the exhaustive tests
constexpr size_t kChunkOnDisk = kTiny + kSealTagSize;

using testing_bytes::Bytes;

SealKey KeyFromSeed(uint64_t seed) {
  std::string b = Bytes(kSealKeySize, seed);
  std::array<uint8_t, kSealKeySize> bytes{};
  std::memcpy(bytes.data(), b.data(), kSealKeySize);
  return SealKey(bytes);
}

Keyring Ring(std::initializer_list<std::pair<std::string, uint64_t>> keys) {
  Keyring ring;
  for (const auto& [id, seed] : keys) {
    Status s = ring.Add(id, KeyFromSeed(seed));
    if (!s.ok()) std::abort();
  }
  return ring;
}

std::string Base64(const std::string& raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

uint64_t SeedFromEnv(uint64_t fallback) {
  const char* s = std::getenv("DISPOTIFY_SEAL_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 10) : fallback;
}

// Seals `plain` pushed in random piece sizes drawn from `rng` (0 included); the whole file.
std::string Seal(const Keyring& ring, const std::string& plain, uint32_t chunk_size, std::mt19937_64* rng) {
  std::string file;
  auto w = SealWriter::Create(
      ring,
      [&](std::string_view b) {
        file.append(b);
        return Status::Ok();
      },
      SealOptions{chunk_size});
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  if (!w.ok()) return {};
  EXPECT_EQ(file, std::string(kSealHeaderSize, '\0'));
  size_t at = 0;
  std::uniform_int_distribution<size_t> piece(0, 3 * size_t{chunk_size});
  while (at < plain.size()) {
    size_t n = std::min(plain.size() - at, piece(*rng));
    EXPECT_TRUE((*w)->Write(std::string_view(plain).substr(at, n)).ok());
    at += n;
  }
  Result<std::string> header = (*w)->Finish();
  EXPECT_TRUE(header.ok()) << header.status().ToString();
  if (!header.ok()) return {};
  EXPECT_EQ(header->size(), kSealHeaderSize);
  file.replace(0, kSealHeaderSize, *header);
  return file;
}

std::string Seal(const Keyring& ring, const std::string& plain, uint32_t chunk_size = kTiny) {
  std::mt19937_64 rng(7);
  return Seal(ring, plain, chunk_size, &rng);
}

// An open file descriptor holding given bytes, closed at the end of the scope.
class FdFile {
 public:
  FdFile(const TempDir& dir, const std::string& bytes) {
    static int counter = 0;
    path_ = dir.Sub("f" + std::to_string(counter++));
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0 || ::write(fd_, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()))
      std::abort();
  }
  ~FdFile() { ::close(fd_); }
  FdFile(const FdFile&) = delete;
  FdFile& operator=(const FdFile&) = delete;
  int fd() const { return fd_; }
  std::string Contents() const {
    std::string out;
    char buf[4096];
    for (off_t at = 0;; at += static_cast<off_t>(sizeof(buf))) {
      ssize_t n = ::pread(fd_, buf, sizeof(buf), at);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

Result<std::string> ReadRange(SealedReader* r, uint64_t offset, size_t len) {
  std::string out(len, '\0');
  Result<size_t> n = r->ReadPlain(offset, out.data(), len);
  if (!n.ok()) return n.status();
  out.resize(*n);
  return out;
}

// Reads chunk `index` of a kTiny-chunked file alone.
Status ReadChunk(SealedReader* r, uint64_t index) {
  return ReadRange(r, index * kTiny, kTiny).status();
}

// Rewrites plain_size in a header and gives it a valid CRC again (a forger's edit).
void ForgePlainSize(std::string* file, uint64_t plain_size) {
  std::string size;
  encoding::PutU64(&size, plain_size);
  file->replace(80, 8, size);
  std::string crc;
  encoding::PutU32(&crc, crc32c::Value(file->data(), 92));
  file->replace(92, 4, crc);
}

class SealedBlobTest : public ::testing::Test {
 protected:
  TempDir dir_;
  Keyring ring_ = Ring({{"a", 1}});
};

TEST_F(SealedBlobTest, RoundTripsEverySizeAroundChunkBoundariesInRandomPieces) {
  const uint64_t seed = SeedFromEnv(20261207);
  std::printf("seed %llu (rerun with DISPOTIFY_SEAL_SEED)\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  for (uint32_t c : {kTiny, kDefaultSealChunkSize}) {
    for (size_t size : {size_t{0}, size_t{1}, size_t{c} - 1, size_t{c}, size_t{c} + 1, 10 * size_t{c} + 7}) {
      SCOPED_TRACE("chunk " + std::to_string(c) + " size " + std::to_string(size));
      std::string plain = Bytes(size, size + c);
      std::string file = Seal(ring_, plain, c, &rng);
      EXPECT_EQ(file.size(), SealedFileSize(size, c));
      FdFile f(dir_, file);
      auto r = SealedReader::Open(f.fd(), ring_);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ((*r)->plain_size(), size);
      EXPECT_EQ((*r)->key_id(), "a");
      EXPECT_EQ((*r)->chunk_size(), c);
      Result<std::string> all = ReadRange(r->get(), 0, size + 5);
      ASSERT_TRUE(all.ok()) << all.status().ToString();
      EXPECT_EQ(*all, plain);
      EXPECT_EQ((*r)->chunks_decrypted(), size == 0 ? 0 : SealedChunkCount(size, c));
      EXPECT_TRUE((*r)->Verify().ok());
    }
  }
}

TEST_F(SealedBlobTest, SealedFileHoldsNoPlaintextRun) {
  std::string plain;
  for (int i = 0; i < 200; ++i) plain += "la la land ";
  std::string file = Seal(ring_, plain, kDefaultSealChunkSize);
  for (size_t at = 0; at + 16 <= plain.size(); at += 16) {
    EXPECT_EQ(file.find(plain.substr(at, 16)), std::string::npos);
  }
}

TEST_F(SealedBlobTest, EveryRangeOfAThreeChunkFileIsExactAndDecryptsOnlyItsChunks) {
  const std::string plain = Bytes(2 * kTiny + 8, 3);  // chunks of 16, 16 and 8 bytes
  FdFile f(dir_, Seal(ring_, plain));
  auto r = SealedReader::Open(f.fd(), ring_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (size_t a = 0; a <= plain.size() + 2; ++a) {
    for (size_t b = a; b <= plain.size() + 4; ++b) {
      uint64_t before = (*r)->chunks_decrypted();
      Result<std::string> got = ReadRange(r->get(), a, b - a);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      size_t end = std::min(b, plain.size());
      std::string want = a < end ? plain.substr(a, end - a) : "";
      EXPECT_EQ(*got, want) << "range [" << a << ", " << b << ")";
      uint64_t covering = a < end ? (end - 1) / kTiny - a / kTiny + 1 : 0;
      EXPECT_EQ((*r)->chunks_decrypted() - before, covering) << "range [" << a << ", " << b << ")";
    }
  }
}

TEST_F(SealedBlobTest, OneMebibyteRangeOfTenMebibytesDecryptsSeventeenChunks) {
  const std::string plain = Bytes(10 << 20, 4);
  FdFile f(dir_, Seal(ring_, plain, kDefaultSealChunkSize));
  auto r = SealedReader::Open(f.fd(), ring_);
  ASSERT_TRUE(r.ok());
  const uint64_t offset = (4 << 20) + (1 << 19) + 123;  // not chunk-aligned: 17 chunks
  Result<std::string> got = ReadRange(r->get(), offset, 1 << 20);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, plain.substr(offset, 1 << 20));
  EXPECT_EQ((*r)->chunks_decrypted(), 17u);
  Result<std::string> aligned = ReadRange(r->get(), 3 << 20, 1 << 20);
  ASSERT_TRUE(aligned.ok());
  EXPECT_EQ((*r)->chunks_decrypted(), 17u + 16u);
}

TEST_F(SealedBlobTest, EveryFlippedBitIsCorruptionOfTheChunkOrHeaderThatHoldsIt) {
  const std::string plain = Bytes(2 * kTiny + 8, 5);
  const std::string good = Seal(ring_, plain);
  ASSERT_EQ(good.size(), kSealHeaderSize + 3 * kChunkOnDisk - 8);
  for (size_t pos = 0; pos < good.size(); ++pos) {
    SCOPED_TRACE("byte " + std::to_string(pos));
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ (1 << (pos % 8)));
    FdFile f(dir_, bad);
    auto r = SealedReader::Open(f.fd(), ring_);
    if (pos < kSealHeaderSize) {
      EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
      continue;
    }
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const uint64_t damaged = (pos - kSealHeaderSize) / kChunkOnDisk;
    for (uint64_t chunk = 0; chunk < 3; ++chunk) {
      Status s = ReadChunk(r->get(), chunk);
      if (chunk == damaged) {
        EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
      } else {
        EXPECT_TRUE(s.ok()) << "chunk " << chunk << ": " << s.ToString();
      }
    }
    EXPECT_EQ((*r)->Verify().code(), StatusCode::kCorruption);
  }
}

TEST_F(SealedBlobTest, FailedChunkLeavesNoUnauthenticatedPlaintextInTheBuffer) {
  const std::string plain = Bytes(2 * kTiny, 6);
  std::string bad = Seal(ring_, plain);
  bad[kSealHeaderSize + 3] = static_cast<char>(
      bad[kSealHeaderSize + 3] ^ 1);  // chunk 0's ciphertext: decrypts to plausible bytes, then fails
  FdFile f(dir_, bad);
  auto r = SealedReader::Open(f.fd(), ring_);
  ASSERT_TRUE(r.ok());
  std::string buf(kTiny, 'x');
  EXPECT_EQ((*r)->ReadPlain(0, buf.data(), kTiny).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(buf, std::string(kTiny, '\0'));
}

TEST_F(SealedBlobTest, TruncationAtEveryLengthAndExtensionAreCorruption) {
  const std::string good = Seal(ring_, Bytes(2 * kTiny + 8, 7));
  for (size_t len = 0; len < good.size(); ++len) {
    FdFile f(dir_, good.substr(0, len));
    EXPECT_EQ(SealedReader::Open(f.fd(), ring_).status().code(), StatusCode::kCorruption) << "length " << len;
  }
  FdFile longer(dir_, good + "x");
  EXPECT_EQ(SealedReader::Open(longer.fd(), ring_).status().code(), StatusCode::kCorruption);
}

TEST_F(SealedBlobTest, CutAtAChunkBoundaryWithAForgedHeaderIsCaughtByTheLastFlag) {
  const std::string plain = Bytes(2 * kTiny + 8, 8);
  std::string cut = Seal(ring_, plain).substr(0, kSealHeaderSize + 2 * kChunkOnDisk);
  ForgePlainSize(&cut, 2 * kTiny);
  FdFile f(dir_, cut);
  auto r = SealedReader::Open(f.fd(), ring_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Result<std::string> first = ReadRange(r->get(), 0, kTiny);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, plain.substr(0, kTiny));  // genuine bytes of the original
  EXPECT_EQ(ReadChunk(r->get(), 1).code(), StatusCode::kCorruption);
}

TEST_F(SealedBlobTest, ExtensionByAChunkSealedAsLastElsewhereIsCorruption) {
  // File A has 2 chunks; B has 3 under the same key. Append B's last chunk to A, forge A's size.
  const std::string a = Seal(ring_, Bytes(2 * kTiny, 9));
  const std::string b = Seal(ring_, Bytes(3 * kTiny, 10));
  std::string longer = a + b.substr(kSealHeaderSize + 2 * kChunkOnDisk);
  ForgePlainSize(&longer, 3 * kTiny);
  FdFile f(dir_, longer);
  auto r = SealedReader::Open(f.fd(), ring_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadChunk(r->get(), 1).code(), StatusCode::kCorruption);  // sealed last, now is not
  EXPECT_EQ(ReadChunk(r->get(), 2).code(), StatusCode::kCorruption);  // from another file
}

TEST_F(SealedBlobTest, SwappedChunksAreCorruption) {
  const std::string good = Seal(ring_, Bytes(3 * kTiny, 11));
  std::string bad = good;
  bad.replace(kSealHeaderSize, kChunkOnDisk, good, kSealHeaderSize + kChunkOnDisk, kChunkOnDisk);
  bad.replace(kSealHeaderSize + kChunkOnDisk, kChunkOnDisk, good, kSealHeaderSize, kChunkOnDisk);
  FdFile f(dir_, bad);
  auto r = SealedReader::Open(f.fd(), ring_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadChunk(r->get(), 0).code(), StatusCode::kCorruption);
  EXPECT_EQ(ReadChunk(r->get(), 1).code(), StatusCode::kCorruption);
  EXPECT_TRUE(ReadChunk(r->get(), 2).ok());
}

TEST_F(SealedBlobTest, ChunkMovedFromAnotherFileUnderTheSameKeyIsCorruption) {
  const std::string plain = Bytes(3 * kTiny, 12);
  const std::string a = Seal(ring_, plain);
  const std::string b = Seal(ring_, plain);  // same key, same content: only salt and prefix differ
  ASSERT_NE(a, b);
  std::string bad = a;
  bad.replace(kSealHeaderSize + kChunkOnDisk, kChunkOnDisk, b, kSealHeaderSize + kChunkOnDisk, kChunkOnDisk);
  FdFile f(dir_, bad);
  auto r = SealedReader::Open(f.fd(), ring_);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(ReadChunk(r->get(), 0).ok());
  EXPECT_EQ(ReadChunk(r->get(), 1).code(), StatusCode::kCorruption);
  EXPECT_TRUE(ReadChunk(r->get(), 2).ok());
}

TEST_F(SealedBlobTest, WrongKeyIsCorruptionEvenForAnEmptyFile) {
  Keyring other = Ring({{"a", 99}});  // same id, other bytes
  for (size_t size : {size_t{0}, size_t{40}}) {
    FdFile f(dir_, Seal(ring_, Bytes(size, 13)));
    auto r = SealedReader::Open(f.fd(), other);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (size > 0) {
      EXPECT_EQ(ReadChunk(r->get(), 0).code(), StatusCode::kCorruption);
    }
    EXPECT_EQ((*r)->Verify().code(), StatusCode::kCorruption);
  }
}

TEST_F(SealedBlobTest, UnknownKeyIdIsNotFoundAndNamesTheKey) {
  FdFile f(dir_, Seal(ring_, Bytes(40, 14)));
  auto r = SealedReader::Open(f.fd(), Ring({{"b", 1}}));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("'a'"), std::string::npos) << r.status().message();
}

TEST_F(SealedBlobTest, WriterRefusesBadOptionsAndKeepsTheSinkError) {
  auto ok_sink = [](std::string_view) { return Status::Ok(); };
  EXPECT_EQ(SealWriter::Create(ring_, ok_sink, SealOptions{0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SealWriter::Create(ring_, ok_sink, SealOptions{kMaxSealChunkSize + 1}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SealWriter::Create(Keyring(), ok_sink).status().code(), StatusCode::kFailedPrecondition);

  int calls = 0;
  auto w = SealWriter::Create(
      ring_, [&](std::string_view) { return ++calls == 1 ? Status::Ok() : Status::NoSpace("disk full"); },
      SealOptions{kTiny});
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE((*w)->Write(Bytes(kTiny, 1)).ok());  // buffered: may be the last chunk
  EXPECT_EQ((*w)->Write("x").code(), StatusCode::kNoSpace);
  EXPECT_EQ((*w)->Write("y").code(), StatusCode::kNoSpace);
  EXPECT_EQ((*w)->Finish().status().code(), StatusCode::kNoSpace);

  auto done = SealWriter::Create(ring_, ok_sink);
  ASSERT_TRUE(done.ok());
  ASSERT_TRUE((*done)->Finish().ok());
  EXPECT_FALSE((*done)->Write("late").ok());
  EXPECT_FALSE((*done)->Finish().ok());
}

// --- Keyring ---------------------------------------------------------------------------------------

TEST(KeyringTest, ParsesCommentsBlanksAndSpacesAndTheLastKeyIsCurrent) {
  const std::string ka = Bytes(32, 1);
  const std::string kb = Bytes(32, 2);
  auto ring = Keyring::Parse("# keys\n\n  old-2025 : " + Base64(ka) + "  \r\nnew.2026:" + Base64(kb) + "\n");
  ASSERT_TRUE(ring.ok()) << ring.status().ToString();
  EXPECT_EQ(ring->size(), 2u);
  EXPECT_EQ(ring->current_id(), "new.2026");
  ASSERT_NE(ring->Find("old-2025"), nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ring->Find("old-2025")->data()), 32), ka);
  EXPECT_EQ(ring->Find("nope"), nullptr);
}

TEST(KeyringTest, RefusesMalformedTextWithTheLineAndWithoutTheKey) {
  const std::string good = Base64(Bytes(32, 1));
  struct Case {
    std::string text;
    std::string want;  // in the message
  };
  const std::vector<Case> cases = {
      {"", "no key"},
      {"# only a comment\n", "no key"},
      {"a " + good, "line 1"},
      {"\n:" + good, "line 2: bad key id"},
      {"bad/id:" + good, "bad key id"},
      {std::string(33, 'k') + ":" + good, "bad key id"},
      {"a:" + Base64(Bytes(31, 1)), "exactly 32 bytes"},
      {"a:" + Base64(Bytes(33, 1)), "exactly 32 bytes"},
      {"a:" + Base64(Bytes(48, 1)), "exactly 32 bytes"},
      {"a:" + good.substr(0, 43), "exactly 32 bytes"},
      {"a:" + std::string(43, '!') + "=", "exactly 32 bytes"},
      {"a:", "exactly 32 bytes"},
      {"a:" + good + "\nb:" + good + "\na:" + good, "line 3: duplicate key id 'a'"},
  };
  for (const Case& c : cases) {
    auto ring = Keyring::Parse(c.text);
    EXPECT_EQ(ring.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(ring.status().message().find(c.want), std::string::npos) << ring.status().message();
    EXPECT_EQ(ring.status().message().find(good), std::string::npos) << "key material in: " << c.text;
  }
}

TEST(KeyringTest, LoadFileRefusesAFileOthersCanReach) {
  TempDir dir;
  const std::string path = dir.Sub("keys");
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fprintf(f, "k1:%s\n", Base64(Bytes(32, 1)).c_str());
  std::fclose(f);
  for (mode_t mode : std::initializer_list<mode_t>{0644, 0640, 0604, 0660, 0602}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto ring = Keyring::LoadFile(path);
    EXPECT_EQ(ring.status().code(), StatusCode::kFailedPrecondition) << std::oct << mode;
    EXPECT_NE(ring.status().message().find(path), std::string::npos);
  }
  for (mode_t mode : std::initializer_list<mode_t>{0600, 0400}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto ring = Keyring::LoadFile(path);
    ASSERT_TRUE(ring.ok()) << ring.status().ToString();
    EXPECT_EQ(ring->current_id(), "k1");
  }
  EXPECT_EQ(Keyring::LoadFile(dir.Sub("missing")).status().code(), StatusCode::kNotFound);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
  EXPECT_EQ(Keyring::LoadFile(dir.path()).status().code(), StatusCode::kInvalidArgument);

  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  f = std::fopen(path.c_str(), "a");
  std::fprintf(f, "k1:%s\n", Base64(Bytes(32, 2)).c_str());
  std::fclose(f);
  auto dup = Keyring::LoadFile(path);
  EXPECT_EQ(dup.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dup.status().message().find(path + ": keyring line 2: duplicate"), std::string::npos)
      << dup.status().message();
}

TEST(KeyringTest, LoadFileFollowsTheSymlinksOfAMountedSecret) {
  // A Kubernetes Secret volume: keys -> ..data/keys, ..data -> a timestamped directory.
  TempDir dir;
  std::filesystem::create_directory(dir.Sub("..2026_12_07"));
  const std::string real = dir.Sub("..2026_12_07/keys");
  FILE* f = std::fopen(real.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fprintf(f, "k1:%s\n", Base64(Bytes(32, 1)).c_str());
  std::fclose(f);
  ASSERT_EQ(::chmod(real.c_str(), 0400), 0);
  std::filesystem::create_directory_symlink("..2026_12_07", dir.Sub("..data"));
  std::filesystem::create_symlink("..data/keys", dir.Sub("keys"));
  auto ring = Keyring::LoadFile(dir.Sub("keys"));
  ASSERT_TRUE(ring.ok()) << ring.status().ToString();
  EXPECT_EQ(ring->current_id(), "k1");
}

TEST(KeyringTest, AddRefusesBadAndDuplicateIds) {
  Keyring ring;
  EXPECT_EQ(ring.Add("", KeyFromSeed(1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ring.Add("a b", KeyFromSeed(1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ring.Add(std::string(kMaxKeyIdSize + 1, 'k'), KeyFromSeed(1)).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(ring.Add(std::string(kMaxKeyIdSize, 'k'), KeyFromSeed(1)).ok());
  EXPECT_EQ(ring.Add(std::string(kMaxKeyIdSize, 'k'), KeyFromSeed(2)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ring.size(), 1u);
}

// --- Reseal ----------------------------------------------------------------------------------------

TEST_F(SealedBlobTest, ResealMovesAFileToTheCurrentKey) {
  const Keyring only_a = Ring({{"a", 1}});
  const Keyring both = Ring({{"a", 1}, {"b", 2}});  // b is current
  const Keyring only_b = Ring({{"b", 2}});
  for (size_t size : {size_t{0}, size_t{1}, size_t{kTiny}, size_t{5 * kTiny + 3}, size_t{3 << 20}}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string plain = Bytes(size, 15 + size);
    FdFile old_file(dir_, Seal(only_a, plain, size > 1000 ? kDefaultSealChunkSize : kTiny));
    FdFile new_file(dir_, std::string(size + 500, 'z'));  // a longer leftover: cut to size
    auto result = Reseal(old_file.fd(), new_file.fd(), both);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->key_id, "b");
    EXPECT_EQ(result->plain_size, size);
    EXPECT_EQ(result->sha256, Sha256Hex(plain));
    EXPECT_EQ(new_file.Contents().size(), SealedFileSize(size, kDefaultSealChunkSize));

    for (const Keyring* ring : {&both, &only_b}) {
      auto r = SealedReader::Open(new_file.fd(), *ring);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ((*r)->key_id(), "b");
      Result<std::string> got = ReadRange(r->get(), 0, size);
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(*got, plain);
      EXPECT_TRUE((*r)->Verify().ok());
    }
    auto old_with_b = SealedReader::Open(old_file.fd(), only_b);
    EXPECT_EQ(old_with_b.status().code(), StatusCode::kNotFound);
    auto old_with_both = SealedReader::Open(old_file.fd(), both);
    ASSERT_TRUE(old_with_both.ok());
    EXPECT_EQ((*old_with_both)->key_id(), "a");
  }
}

TEST_F(SealedBlobTest, ResealOfADamagedFileFails) {
  const Keyring both = Ring({{"a", 1}, {"b", 2}});
  for (size_t size : {size_t{0}, size_t{40}}) {
    std::string bad = Seal(ring_, Bytes(size, 16));
    bad.back() = static_cast<char>(bad.back() ^ 0x80);  // the last tag
    FdFile old_file(dir_, bad);
    FdFile new_file(dir_, "");
    EXPECT_EQ(Reseal(old_file.fd(), new_file.fd(), both).status().code(), StatusCode::kCorruption);
  }
}

}  // namespace
}  // namespace dispotify::replication
