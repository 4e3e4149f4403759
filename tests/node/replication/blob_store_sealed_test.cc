// The blob store with a keyring (encryption at rest, blob_store.h "Sealed blobs"): what reaches the
// disk, every read path over sealed blobs, old plaintext blobs, a store without a keyring, and the
// re-sealing pass of a key rotation.

#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "common/file_system.h"
#include "common/sha256.h"
#include "node/replication/blob_store.h"
#include "node/replication/sealed_blob.h"
#include "tests/mocks/temp_dir.h"
#include "tests/support/bytes.h"
#include "tests/support/plaintext_scan.h"

namespace dispotify::replication {
namespace {

using mocks::TempDir;
using testing_bytes::Bytes;

// Small chunks so that a few hundred KiB span many of them and every boundary case is hit.
constexpr uint32_t kChunk = 4096;

uint64_t Seed() {
  const char* s = std::getenv("DISPOTIFY_SEAL_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 10) : 20261207;
}

std::shared_ptr<const Keyring> Ring(std::initializer_list<std::pair<std::string, uint64_t>> keys) {
  auto ring = std::make_shared<Keyring>();
  for (const auto& [id, seed] : keys) {
    std::string b = Bytes(kSealKeySize, seed);
    std::array<uint8_t, kSealKeySize> bytes{};
    std::memcpy(bytes.data(), b.data(), kSealKeySize);
    if (!ring->Add(id, SealKey(bytes)).ok()) std::abort();
  }
  return ring;
}

class SealedBlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::printf("seed %llu (rerun with DISPOTIFY_SEAL_SEED)\n", static_cast<unsigned long long>(Seed()));
    Reopen(Ring({{"k1", 1}}));
  }

  // A restart of the node with `keyring` (nullptr: encryption off).
  void Reopen(std::shared_ptr<const Keyring> keyring) {
    store_.reset();
    BlobStoreOptions options;
    options.keyring = std::move(keyring);
    options.seal.chunk_size = kChunk;
    auto s = OpenBlobStore(DefaultFileSystem(), tmp_.path(), options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  Status Put(const std::string& id, const std::string& data) {
    auto w = store_->Create(id);
    if (!w.ok()) return w.status();
    // Uneven pieces: the SealWriter must not care how the content arrives.
    for (size_t at = 0; at < data.size();) {
      const size_t n = std::min<size_t>(data.size() - at, 1 + (at * 7919) % 70000);
      DISPOTIFY_RETURN_IF_ERROR((*w)->Append(std::string_view(data).substr(at, n)));
      at += n;
    }
    return (*w)->Commit(data.size(), Sha256Hex(data));
  }

  Result<std::string> Get(const std::string& id) {
    auto r = store_->Open(id);
    if (!r.ok()) return r.status();
    std::string out;
    Status s = (*r)->ReadAll([&](std::string_view b) {
      out.append(b);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  std::string BlobFile(const std::string& id) {
    const Sha256::Digest d = Sha256Digest(id);
    return tmp_.path() + "/blobs/" + ToHex(d.data(), 1) + "/" + id;
  }

  std::string Raw(const std::string& id) {
    auto raw = ReadFileToString(DefaultFileSystem(), BlobFile(id));
    EXPECT_TRUE(raw.ok()) << raw.status().ToString();
    return raw.ok() ? *raw : std::string();
  }

  void FlipByte(const std::string& id, uint64_t offset) {
    auto f = DefaultFileSystem().Open(BlobFile(id), OpenMode::kReadWrite);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    char c = 0;
    ASSERT_TRUE((*f)->PRead(offset, 1, &c).ok());
    c = static_cast<char>(c ^ 0x5A);
    ASSERT_TRUE((*f)->PWrite(offset, std::string_view(&c, 1)).ok());
  }

  TempDir tmp_;
  std::unique_ptr<BlobStore> store_;
};

// No 32-byte window of the content appears anywhere in the file.
::testing::AssertionResult HoldsNoPlaintext(const std::string& file, const std::string& plain) {
  if (auto at = testing_bytes::FindPlaintextRun(file, plain)) {
    return ::testing::AssertionFailure()
           << "the file holds plaintext bytes [" << *at << ", " << *at + 32 << ")";
  }
  return ::testing::AssertionSuccess();
}

TEST_F(SealedBlobStoreTest, FileOnDiskHoldsNoPlaintextAndReadsBack) {
  // Text-like content with repeats, the worst case for a leak to hide in.
  std::string plain;
  while (plain.size() < 200000)
    plain += "la la la, the chorus comes back " + std::to_string(plain.size() % 97);
  ASSERT_TRUE(Put("song.flac", plain).ok());
  const std::string raw = Raw("song.flac");
  EXPECT_EQ(raw.size(), BlobStore::kHeaderSize + SealedFileSize(plain.size(), kChunk));
  EXPECT_TRUE(HoldsNoPlaintext(raw, plain));
  auto r = store_->Open("song.flac");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)->sealed());
  EXPECT_EQ((*r)->key_id(), "k1");
  EXPECT_EQ((*r)->size(), plain.size());
  EXPECT_EQ((*r)->sha256(), Sha256Hex(plain)) << "integrity stays defined over the plaintext";
  EXPECT_EQ(*Get("song.flac"), plain);
  EXPECT_TRUE(store_->VerifyChecksum("song.flac").ok());
  EXPECT_TRUE(store_->OpenVerified("song.flac").ok());
}

TEST_F(SealedBlobStoreTest, ReadAtRandomRangesIsByteExact) {
  std::mt19937_64 rng(Seed());
  const std::string plain = Bytes(300000 + rng() % 10000, rng());
  ASSERT_TRUE(Put("r", plain).ok());
  auto r = store_->Open("r");
  ASSERT_TRUE(r.ok());
  for (int i = 0; i < 500; ++i) {
    const uint64_t offset = rng() % (plain.size() + 10);
    const size_t len = rng() % 3 == 0 ? rng() % 40 : rng() % (3 * kChunk);
    auto got = (*r)->ReadAt(offset, len);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const std::string want = offset >= plain.size() ? std::string() : plain.substr(offset, len);
    ASSERT_EQ(*got, want) << "offset " << offset << " len " << len;
    std::string buf(len, '\0');
    auto n = (*r)->ReadAt(offset, buf.data(), len);
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(buf.substr(0, *n), want);
  }
}

TEST_F(SealedBlobStoreTest, EmptyAndChunkSizedContents) {
  for (size_t n :
       {size_t{0}, size_t{1}, size_t{kChunk - 1}, size_t{kChunk}, size_t{kChunk + 1}, size_t{3 * kChunk}}) {
    const std::string id = "n" + std::to_string(n);
    const std::string plain = Bytes(n, n + 7);
    ASSERT_TRUE(Put(id, plain).ok()) << n;
    EXPECT_EQ(*Get(id), plain) << n;
    EXPECT_TRUE(store_->VerifyChecksum(id).ok()) << n;
  }
}

TEST_F(SealedBlobStoreTest, DamagedCiphertextIsDetected) {
  const std::string plain = Bytes(50000, 3);
  ASSERT_TRUE(Put("bad", plain).ok());
  // A byte inside chunk 2's ciphertext.
  const uint64_t at = BlobStore::kHeaderSize + kSealHeaderSize + 2 * (kChunk + kSealTagSize) + 100;
  FlipByte("bad", at);
  EXPECT_EQ(store_->VerifyChecksum("bad").code(), StatusCode::kCorruption);
  auto r = store_->Open("bad");
  ASSERT_TRUE(r.ok()) << "the header is intact";
  EXPECT_EQ((*r)->ReadAt(2 * kChunk + 5, 10).status().code(), StatusCode::kCorruption)
      << "a ranged read of the damaged chunk is refused, never served";
  EXPECT_EQ(*(*r)->ReadAt(0, 10), plain.substr(0, 10)) << "other chunks still read";
  // A rotation never re-seals damaged content into a fresh, valid-looking file.
  Reopen(Ring({{"k1", 1}, {"k2", 2}}));
  EXPECT_EQ(store_->Reseal("bad").status().code(), StatusCode::kCorruption);
  EXPECT_EQ((*store_->Open("bad"))->key_id(), "k1") << "left as it was, for the scrub to report";
  EXPECT_EQ(store_->VerifyChecksum("bad").code(), StatusCode::kCorruption);
}

TEST_F(SealedBlobStoreTest, PlaintextBlobsStillReadWithAKeyring) {
  Reopen(nullptr);
  const std::string plain = Bytes(70000, 4);
  ASSERT_TRUE(Put("old", plain).ok());
  EXPECT_NE(Raw("old").find(plain), std::string::npos) << "written before the keyring: plaintext";
  Reopen(Ring({{"k1", 1}}));
  auto r = store_->Open("old");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE((*r)->sealed());
  EXPECT_TRUE(store_->NeedsReseal(**r));
  EXPECT_EQ(*Get("old"), plain);
  EXPECT_EQ(*(*r)->ReadAt(12345, 100), plain.substr(12345, 100));
  EXPECT_TRUE(store_->VerifyChecksum("old").ok());
  // Re-committing the same content seals it; the plaintext copy is the same blob to Install.
  ASSERT_TRUE(Put("old", plain).ok());
  EXPECT_TRUE(HoldsNoPlaintext(Raw("old"), plain));
  EXPECT_EQ(*Get("old"), plain);
}

TEST_F(SealedBlobStoreTest, SealedBlobWithoutKeyringIsAClearErrorNotCorruption) {
  ASSERT_TRUE(Put("s", Bytes(1000, 5)).ok());
  Reopen(nullptr);
  auto r = store_->Open("s");
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("sealed blob but no keyring"), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(store_->VerifyChecksum("s").code(), StatusCode::kFailedPrecondition)
      << "the scrub must not report it";
  // A keyring without the key is no better, and says which key is missing.
  Reopen(Ring({{"other", 9}}));
  r = store_->Open("s");
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("'k1'"), std::string::npos) << r.status().ToString();
}

TEST_F(SealedBlobStoreTest, RotationReadsOldFilesAndResealMovesThemToTheNewKey) {
  Reopen(nullptr);
  const std::string p0 = Bytes(40000, 10);
  ASSERT_TRUE(Put("plain", p0).ok());
  Reopen(Ring({{"k1", 1}}));
  const std::string p1 = Bytes(90000, 11);
  const std::string p2 = Bytes(0, 12);
  ASSERT_TRUE(Put("one", p1).ok());
  ASSERT_TRUE(Put("empty", p2).ok());

  // Rotation: a new last key, the old one kept.
  Reopen(Ring({{"k1", 1}, {"k2", 2}}));
  EXPECT_EQ((*store_->Open("one"))->key_id(), "k1");
  EXPECT_EQ(*Get("one"), p1) << "old-key files stay readable until re-sealed";
  const std::string p3 = Bytes(33333, 13);
  ASSERT_TRUE(Put("two", p3).ok());
  EXPECT_EQ((*store_->Open("two"))->key_id(), "k2");

  for (const std::string id : {"plain", "one", "empty"}) {
    auto resealed = store_->Reseal(id);
    ASSERT_TRUE(resealed.ok()) << id << ": " << resealed.status().ToString();
    EXPECT_TRUE(*resealed) << id;
    auto again = store_->Reseal(id);
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(*again) << id << ": already under the current key";
  }
  EXPECT_FALSE(*store_->Reseal("two"));
  EXPECT_EQ(store_->Reseal("absent").status().code(), StatusCode::kNotFound);

  // The old key can go now: everything reads and verifies with k2 alone.
  Reopen(Ring({{"k2", 2}}));
  for (const auto& [id, plain] :
       {std::pair<std::string, std::string>{"plain", p0}, {"one", p1}, {"empty", p2}, {"two", p3}}) {
    auto r = store_->Open(id);
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
    EXPECT_EQ((*r)->key_id(), "k2") << id;
    EXPECT_EQ((*r)->sha256(), Sha256Hex(plain)) << id;
    EXPECT_EQ(*Get(id), plain) << id;
    EXPECT_TRUE(store_->VerifyChecksum(id).ok()) << id;
    EXPECT_TRUE(HoldsNoPlaintext(Raw(id), plain)) << id;
  }
  // No temp file is left behind.
  auto temps = DefaultFileSystem().ListDir(tmp_.path() + "/blobs/.tmp");
  ASSERT_TRUE(temps.ok());
  EXPECT_TRUE(temps->empty());
}

TEST_F(SealedBlobStoreTest, StatsCountContentBytesOfSealedBlobs) {
  ASSERT_TRUE(Put("a", Bytes(100000, 30)).ok());
  ASSERT_TRUE(Put("b", Bytes(5000, 31)).ok());
  EXPECT_EQ(store_->Stats()->bytes, 105000u) << "the plaintext's size, not the sealed file's";
  ASSERT_TRUE(Put("a", Bytes(100000, 30)).ok());  // re-committed: replaced, not added
  EXPECT_EQ(store_->Stats()->bytes, 105000u);
  ASSERT_TRUE(store_->Delete("a").ok());
  EXPECT_EQ(store_->Stats()->bytes, 5000u);
  EXPECT_EQ(store_->Delete("a").code(), StatusCode::kNotFound);
}

TEST_F(SealedBlobStoreTest, ResealLeavesADeletedBlobDeleted) {
  Reopen(nullptr);
  ASSERT_TRUE(Put("gone", Bytes(1000, 20)).ok());
  Reopen(Ring({{"k1", 1}}));
  ASSERT_TRUE(store_->Delete("gone").ok());
  EXPECT_EQ(store_->Reseal("gone").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_->Exists("gone"));
}

}  // namespace
}  // namespace dispotify::replication
