#pragma once
// Sealed blobs: the encrypted-at-rest form of a blob's content (AES-256-GCM through OpenSSL EVP),
// cut into chunks that each carry their own tag, so a Range request decrypts only the chunks it
// serves. This file defines the format and the pure tools over it (writer, reader, keyring,
// re-sealing); it does not know where blobs live (blob_store.h) or how they are served.
//
// ON-DISK FORMAT (version 1; integers little-endian, common/encoding.h)
//
//   header   96 bytes, at offset 0:
//     offset 0    magic          8 bytes "DSPFYENC"
//            8    version        u32  1
//            12   header_size    u32  96 (where chunk 0 starts)
//            16   chunk_size     u32  plaintext bytes per chunk, 1..kMaxChunkSize (default 64 KiB)
//            20   key_id_size    u32  1..kMaxKeyIdSize
//            24   key_id         32 bytes, zero padded: the name of the keyring key
//            56   salt           16 random bytes (RAND_bytes), per file: input of the file key
//            72   nonce_prefix   8 random bytes (RAND_bytes), per file
//            80   plain_size     u64  bytes of plaintext
//            88   reserved       u32  0
//            92   header_crc     u32  CRC-32C of bytes [0, 92)
//   chunk*   for i in [0, n): ciphertext of plaintext bytes [i*chunk_size, min((i+1)*chunk_size,
//            plain_size)) followed by its 16-byte GCM tag. n = max(1, ceil(plain_size /
//            chunk_size)): an empty file still has one (empty) chunk, so its key and its end are
//            authenticated too. Chunk i starts at header_size + i * (chunk_size + 16); the file is
//            exactly header_size + plain_size + 16 * n bytes long.
//
// Keys. The keyring key named by key_id is never used directly: each file is sealed under
//   file_key = HKDF-SHA256(ikm = keyring key, salt = salt, info = "dispotify sealed blob v1")
// and chunk i under nonce = nonce_prefix || u32 i (12 bytes, the GCM-native size) with
//   AAD = header bytes [0, 80) || u32 i || u8 last (1 for chunk n-1, else 0).
//
// Why nonces never repeat under a key: within one file, chunk indices are distinct (the writer
// refuses more than 2^32 chunks). Across files, two files share a file key only if their 128-bit
// salts collide (for N files, probability about N^2 / 2^129: 2^-65 after 2^32 files), and even
// then their nonce prefixes must collide as well. A random 8-byte prefix alone, under a key
// shared by every file, would give only N^2 / 2^65 (one in two after 2^32 files, one in 2^25
// after a million): the salt is what makes the bound negligible for any realistic store. A file
// key seals one file: at most 2^32 chunks (distinct nonces by construction) of at most 16 MiB,
// each far below GCM's 64 GiB per-message limit.
//
// What the AAD and the header catch:
//  - the header CRC: any damaged header byte (kCorruption at Open, before any key is touched);
//  - the file length: a truncated or extended file (kCorruption at Open);
//  - the header in the AAD: a chunk copied from another file (other salt, so other file key, and
//    other AAD), or a header whose chunk size, key id, salt or prefix was rewritten with a fresh CRC;
//  - the index in the nonce and AAD: chunks swapped or moved within the file;
//  - the last flag: a file cut at a chunk boundary whose plain_size and CRC were forged to match
//    (its new last chunk was sealed as "not last"), or extended with a chunk sealed as last.
// plain_size is not in the AAD because a streaming writer learns it only at the end; a forged
// plain_size must still agree with the file length and with the last flag of the last chunk, so
// the only thing it can achieve is the cut above, caught when the new last chunk is read.
// A read of chunks before a forged end returns genuine bytes of the original file.
//
// Write protocol (SealWriter): the writer first emits header_size zero bytes (no valid magic: an
// unfinished file is never mistaken for a sealed one), then the chunks as they fill; Finish()
// seals the last chunk and returns the final header, which the caller writes at offset 0
// (pwrite, File::PWrite) before syncing and renaming: the content length of an upload need not
// be known up front. This is blob_store.h's protocol already (its header is also written last).
//
// The project's SHA-256 integrity is defined over the plaintext; nothing here computes it except
// Reseal, which returns it so that a re-sealed file can be checked against the catalog before it
// replaces the old one.
//
// Errors: kCorruption for a damaged or forged header, a bad tag, a truncated or extended file;
// kNotFound for a key id the keyring does not hold; kInvalidArgument for bad input (a bad chunk
// size, a malformed keyring file); kIoError (Status::FromErrno) for failed system calls.
//
// Threads: a Keyring is immutable once built and may be shared. A SealWriter or a SealedReader is
// used by one thread at a time (each owns a cipher context and a chunk buffer).

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dispotify::replication {

inline constexpr std::string_view kSealMagic = "DSPFYENC";
inline constexpr uint32_t kSealVersion = 1;
inline constexpr uint32_t kSealHeaderSize = 96;
inline constexpr uint32_t kSealTagSize = 16;
inline constexpr uint32_t kDefaultSealChunkSize = 64 * 1024;
inline constexpr uint32_t kMaxSealChunkSize = 16 * 1024 * 1024;
inline constexpr size_t kSealKeySize = 32;
inline constexpr size_t kMaxKeyIdSize = 32;

// A 256-bit key, wiped (OPENSSL_cleanse) when destroyed or overwritten.
class SealKey {
 public:
  SealKey() = default;
  explicit SealKey(const std::array<uint8_t, kSealKeySize>& bytes) : bytes_(bytes) {}
  ~SealKey();
  SealKey(const SealKey& other) : bytes_(other.bytes_) {}
  SealKey& operator=(const SealKey& other);

  const uint8_t* data() const { return bytes_.data(); }

 private:
  std::array<uint8_t, kSealKeySize> bytes_{};
};

// Key id -> key, with one "current" key for new files; the others only read old files.
//
// Keyring file (also the content of a Kubernetes Secret mounted as a file): one key a line,
//   <id>:<base64 of exactly 32 bytes>
// ids of 1..32 characters of [A-Za-z0-9._-]; blank lines and lines starting with '#' are ignored;
// surrounding spaces are trimmed. The LAST key listed is the current one, so a rotation appends a
// line and keeps the old ones for as long as files sealed under them remain.
class Keyring {
 public:
  // Parses keyring text. kInvalidArgument (naming the line) for a malformed line, a bad id, a key
  // that is not base64 of 32 bytes, a duplicate id, or no key at all.
  static Result<Keyring> Parse(std::string_view text);
  // Reads and parses a keyring file; refuses (kFailedPrecondition) a file that group or others
  // may read or write (mode & 077), since it holds every key of the store.
  static Result<Keyring> LoadFile(const std::string& path);

  // Adds a key (kInvalidArgument for a bad or duplicate id); the last one added is current.
  Status Add(std::string_view id, const SealKey& key);

  // nullptr when the keyring holds no key of that id.
  const SealKey* Find(std::string_view id) const;
  const std::string& current_id() const { return current_id_; }
  size_t size() const { return keys_.size(); }

 private:
  std::map<std::string, SealKey, std::less<>> keys_;
  std::string current_id_;
};

// True for 1..kMaxKeyIdSize characters of [A-Za-z0-9._-].
bool IsValidKeyId(std::string_view id);

struct SealOptions {
  uint32_t chunk_size = kDefaultSealChunkSize;  // tests use tiny chunks to exercise boundaries
};

// The number of chunks of a sealed file of `plain_size` bytes, and its total size on disk.
uint64_t SealedChunkCount(uint64_t plain_size, uint32_t chunk_size);
uint64_t SealedFileSize(uint64_t plain_size, uint32_t chunk_size);

// Seals a stream of plaintext pushed in pieces of any size. See "Write protocol" above.
class SealWriter {
 public:
  // Receives the sealed bytes in file order, starting at offset 0 (the header placeholder). The
  // first error it returns is returned by that call and by every later one.
  using Sink = std::function<Status(std::string_view)>;

  // Seals under the keyring's current key (kFailedPrecondition for an empty keyring;
  // kInvalidArgument for a chunk size outside 1..kMaxSealChunkSize).
  static Result<std::unique_ptr<SealWriter>> Create(const Keyring& keyring, Sink sink,
                                                    const SealOptions& options = {});
  ~SealWriter();
  SealWriter(const SealWriter&) = delete;
  SealWriter& operator=(const SealWriter&) = delete;

  Status Write(std::string_view plain);
  // Seals the last chunk and returns the final header (kSealHeaderSize bytes) to write at offset
  // 0. No Write or Finish may follow.
  Result<std::string> Finish();

  uint64_t plain_size() const { return plain_size_; }
  const std::string& key_id() const { return key_id_; }

 private:
  struct Impl;
  SealWriter(Sink sink, std::unique_ptr<Impl> impl, std::string key_id);
  Status SealChunk(bool last);

  Sink sink_;
  std::unique_ptr<Impl> impl_;
  std::string key_id_;
  uint64_t plain_size_ = 0;
  uint32_t next_index_ = 0;
  bool finished_ = false;
  Status error_;
};

// Where a sealed file's bytes come from when they are not a whole file of their own (blob_store.h
// keeps them after its own header): `size` bytes, read at offsets [0, size) through `pread`, which
// fills up to n bytes and returns fewer only at the end.
struct SealedSource {
  std::function<Result<size_t>(uint64_t offset, size_t n, char* buf)> pread;
  uint64_t size = 0;
};

// Reads a sealed file through a file descriptor (pread; the reader neither owns nor closes it), or
// through a SealedSource, decrypting and authenticating only the chunks a read covers.
class SealedReader {
 public:
  // Checks the header (magic, version, CRC, sizes) and the file length (kCorruption), finds the
  // key (kNotFound when the keyring lacks key_id) and derives the file key. No chunk is read.
  static Result<std::unique_ptr<SealedReader>> Open(int fd, const Keyring& keyring);
  static Result<std::unique_ptr<SealedReader>> Open(SealedSource source, const Keyring& keyring);
  ~SealedReader();
  SealedReader(const SealedReader&) = delete;
  SealedReader& operator=(const SealedReader&) = delete;

  // Reads plaintext [offset, offset + len) into buf, clamped to plain_size() (0 at or past the
  // end, like pread). Each chunk covering the range is read and authenticated in full before any
  // of its bytes are copied out; a bad tag is kCorruption and nothing from that chunk is returned
  // (bytes of earlier chunks of the range may already be in buf).
  Result<size_t> ReadPlain(uint64_t offset, char* buf, size_t len);

  // Authenticates every chunk (for the scrubber; also the only check an empty file gets).
  Status Verify();

  uint64_t plain_size() const { return plain_size_; }
  const std::string& key_id() const { return key_id_; }
  uint32_t chunk_size() const { return chunk_size_; }
  // Chunks decrypted since Open (the Range tests and the benchmark count them).
  uint64_t chunks_decrypted() const { return chunks_decrypted_; }

 private:
  struct Impl;
  SealedReader(SealedSource source, std::unique_ptr<Impl> impl);
  // Decrypts chunk `index` into `out` (which holds ChunkPlainSize(index) bytes).
  Status DecryptChunk(uint64_t index, uint8_t* out);
  size_t ChunkPlainSize(uint64_t index) const;

  SealedSource source_;
  std::unique_ptr<Impl> impl_;
  std::string key_id_;
  uint32_t chunk_size_ = 0;
  uint64_t plain_size_ = 0;
  uint64_t chunk_count_ = 0;
  uint64_t chunks_decrypted_ = 0;
};

struct ResealResult {
  uint64_t plain_size = 0;
  std::string sha256;  // of the plaintext, 64 lowercase hex digits: check it before the swap
  std::string key_id;  // the key the new file is sealed under
};

// Re-seals the file behind `old_fd` under the keyring's current key into `new_fd` (written from
// offset 0 with pwrite, header last, then truncated to its exact size), for background rotation.
// Every chunk of the old file is authenticated on the way. The caller syncs new_fd, checks the
// returned SHA-256, renames, and discards new_fd's file on any error.
Result<ResealResult> Reseal(int old_fd, int new_fd, const Keyring& keyring, const SealOptions& options = {});

}  // namespace dispotify::replication
