#pragma once
// The node's local store of audio files ("blobs"), one file per file_id, each checked against
// its SHA-256 when written and when read.
//
// ON-DISK FORMAT (version 1)
// Under the store's root directory:
//   blobs/<shard>/<file_id>         a committed blob. <shard> is the first byte of
//                                   SHA-256(file_id) as 2 lowercase hex digits, so that no
//                                   directory holds more than ~1/256 of the files; shard
//                                   directories are created on demand.
//   blobs/.tmp/<n>-<file_id>.tmp    a blob being written (n: a per-process counter). Everything
//                                   in blobs/.tmp is deleted when the store is opened.
// A blob file is a 256-byte header followed by the content byte for byte, so that the content
// can be sent with sendfile(2) from offset kHeaderSize. Header (integers little-endian):
//   offset 0    magic          8 bytes "DSPFYBLB"
//          8    version        u32  1
//          12   header_size    u32  256 (where the content starts)
//          16   flags          u32  0, or kBlobFlagSealed (1): encrypted at rest, see below. A
//                                   reader that does not know a flag refuses the blob.
//          20   file_id_size   u32  1..128
//          24   content_size   u64
//          32   sha256         32 bytes: SHA-256 of the content
//          64   file_id        128 bytes, zero padded (a blob moved under another name is caught)
//          192  zeros          up to offset 252
//          252  header_crc     u32  CRC-32C of bytes [0, 252)
// Sealed blobs (flags = kBlobFlagSealed; written when the store has a keyring): the 256-byte
// header is followed not by the content but by a sealed file of it, exactly as sealed_blob.h
// defines (its own 96-byte header at file offset 256, then the AES-256-GCM chunks), and the file is
// 256 + SealedFileSize(content_size, chunk_size) bytes long (checked by SealedReader::Open, since
// the chunk size lives in the sealed header). content_size and sha256 stay those of the plaintext,
// so the catalog's SHA-256, the transfers between peers (plaintext over gRPC; each node seals with
// its own keyring) and the scrub mean the same thing whether a copy is sealed or not, and a
// plaintext blob and a sealed one of the same content are the same blob to Install. Keeping the
// sealed file intact after the blob header (rather than merging the headers) reuses the sealed
// format, its reader and its tests unchanged; the blob header is not in the GCM AAD, but it carries
// its own CRC and file id, and a sealed region moved under another blob header decrypts to content
// that fails that header's SHA-256 on the next full read or scrub, as a swapped plaintext would.
// Version stays 1: plaintext blobs are byte-identical to before and keep reading; a sealed blob
// met by a store without a keyring is kFailedPrecondition ("sealed blob but no keyring"), not
// kCorruption, so it is never reported as a bad copy. A blob sealed under a key the keyring lacks
// is kFailedPrecondition too. Re-sealing (Reseal below) rewrites a blob under the keyring's current
// key through a temp file and the same rename, so a reader always sees one whole version.
//
// The file id lives in the header rather than in a sidecar file so that a blob is one file and
// its commit is one rename (and because '.' is a legal id character, a sidecar suffix could
// collide with another id).
//
// Write protocol (BlobWriter): the temp file starts with 256 zero bytes (no valid magic: a temp
// file is never mistaken for a blob); the content is appended through a fixed-size buffer while
// its SHA-256 is computed; Commit checks size and SHA-256 against the expected ones, writes the
// header at offset 0, fdatasyncs the temp file, renames it to blobs/<shard>/<file_id> (the commit
// point) and fsyncs the shard directory (and blobs/ when the shard directory was just created).
// Any failure before the rename (mismatch, ENOSPC, EIO) deletes the temp file: nothing becomes
// visible. A crash before the directory fsync may lose the blob, never expose a partial one.
//
// Integrity on read ("verified on every read"):
//  - Open() checks the header (magic, CRC, file id) and that the file's length is exactly
//    header + content_size; a torn or truncated blob is kCorruption.
//  - A full sequential read (BlobReader::ReadNext / ReadAll, VerifyChecksum) hashes as it goes
//    and compares at the end. The piece that reaches the end is withheld when the digest
//    mismatches: the call returns kCorruption instead, so a consumer that relays pieces never
//    sees a complete stream of bad bytes, and must treat the kCorruption as a failed transfer.
//  - Ranged reads (BlobReader::ReadAt, sendfile from path()/data_offset()) cannot be verified
//    without reading the whole blob; they are covered by the periodic scrub (VerifyChecksum) and
//    by every full read, which report corrupt copies for repair. A sealed blob's ranged read is
//    authenticated chunk by chunk (GCM) all the same: a damaged byte is kCorruption, not sent.
//
// Ids never escape the directory: every call validates the file id with catalog::IsValidFileId
// (1..128 of [A-Za-z0-9._-], not "." or "..") and returns kInvalidArgument before any disk access.
//
// Threads: BlobStore is thread-safe. A BlobWriter or a BlobReader is used by one thread at a time
// (BlobReader::ReadAt may run concurrently with anything). Writers and readers must not outlive
// the store. One BlobStore per root directory.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_system.h"
#include "common/sha256.h"
#include "common/status.h"
#include "node/replication/sealed_blob.h"

namespace dispotify::replication {

class BlobStore;

// The blob header's flags (see the format above).
inline constexpr uint32_t kBlobFlagSealed = 1;

struct BlobWriteOptions {
  std::optional<uint64_t> expected_size;
  std::optional<std::string> expected_sha256;  // 64 hex digits, either case
  // Replace an existing blob whose content differs (otherwise Commit returns kAlreadyExists).
  bool overwrite = false;
  // An upload's lease (catalog lock name and fencing token; 0: none). The commit asks the store's
  // fence (SetFence) whether that lease is still the id's current one, and renames only then, so
  // an upload that lost its lease (its node paused past the TTL) never replaces the copy of the
  // upload that took the lease over.
  std::string fence_name;
  uint64_t fence_token = 0;
};

// Streams one blob into a temp file; see the write protocol above. Destruction without a
// successful Commit aborts (deletes the temp file).
class BlobWriter {
 public:
  // The most content bytes a writer holds in memory, whatever the size of the blob.
  static constexpr size_t kBufferSize = 256 * 1024;

  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  // Appends content. More bytes than expected_size fails at once with kCorruption. After any
  // failure the temp file is gone and every later call returns the same error.
  Status Append(std::string_view data);
  // Verifies size and SHA-256 and makes the blob visible and durable. A blob with this id that
  // already exists with the same SHA-256 is replaced by the new, verified copy (so re-committing
  // is idempotent and also heals a damaged copy); with another SHA-256 it is kAlreadyExists
  // unless options.overwrite. Mismatch: kCorruption; full disk: kNoSpace. Nothing is visible on
  // failure, except after a failed directory fsync (the rename happened; durability unknown).
  Status Commit();
  // Commit() that also checks `size` and `sha256` (64 hex digits, either case), for a writer that
  // learns them only after the content (an upload's trailer). They are checked in addition to the
  // expectations given to Create; a malformed `sha256` fails with kInvalidArgument (and aborts).
  Status Commit(uint64_t size, std::string_view sha256);
  // Deletes the temp file; no-op after Commit or a failure.
  void Abort();

  uint64_t bytes_written() const { return written_; }
  // Lowercase hex SHA-256 of the content; set by a successful Commit.
  const std::string& sha256() const { return sha256_; }
  // High-water mark of the bytes buffered in memory (never above kBufferSize).
  size_t peak_buffered_bytes() const { return peak_buffered_; }

 private:
  friend class BlobStore;
  enum class State : uint8_t { kOpen, kCommitted, kFailed };

  BlobWriter(BlobStore* store, std::string file_id, std::string tmp_path, std::unique_ptr<File> file,
             BlobWriteOptions options);
  // Bytes for the file after its header (the content, or the sealed content), through buffer_.
  Status Store(std::string_view data);
  Status Flush();
  // Both Commit()s: checks the expectations of Create and, when given, the late ones.
  Status CommitChecked(std::optional<uint64_t> size, std::optional<std::string_view> sha256);
  // Enters kFailed with `s`: closes and deletes the temp file. Returns `s`.
  Status Fail(Status s);

  BlobStore* const store_;
  const std::string file_id_;
  const std::string tmp_path_;
  std::unique_ptr<File> file_;
  const BlobWriteOptions options_;
  State state_ = State::kOpen;
  Status error_;  // in kFailed
  Sha256 hasher_;
  std::unique_ptr<SealWriter> seal_;  // set when the store has a keyring: the content goes through it
  std::unique_ptr<char[]> buffer_;    // kBufferSize bytes (ciphertext when sealed)
  size_t buffered_ = 0;
  size_t peak_buffered_ = 0;
  uint64_t written_ = 0;
  uint64_t next_space_check_;  // written_ at which Append asks the store for space again
  std::string sha256_;
};

// An open blob. The file stays readable even if the blob is deleted or replaced meanwhile.
class BlobReader {
 public:
  static constexpr size_t kChunkSize = 1024 * 1024;

  BlobReader(const BlobReader&) = delete;
  BlobReader& operator=(const BlobReader&) = delete;

  const std::string& file_id() const { return file_id_; }
  // Content size and lowercase hex SHA-256, from the header.
  uint64_t size() const { return size_; }
  const std::string& sha256() const { return sha256_hex_; }

  // Up to `max` content bytes at `offset` (fewer at the end). NOT verified: see the header
  // comment (a sealed blob's chunks are authenticated). Safe to call concurrently with anything.
  Result<std::string> ReadAt(uint64_t offset, size_t max) const;
  // The same into the caller's buffer (the streaming path: a sealed blob's whole chunks are
  // decrypted straight into `buf`, no copy). Returns the bytes read, 0 at or past the end.
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t max) const;

  // Encrypted at rest: path()/data_offset() then hold ciphertext and must not be sent as they are.
  bool sealed() const { return sealed_ != nullptr; }
  // The keyring key a sealed blob is sealed under ("" for a plaintext blob).
  const std::string& key_id() const { return key_id_; }
  // Plaintext bytes per sealed chunk (0 for a plaintext blob): reads aligned to it decrypt each
  // chunk once and copy nothing.
  uint32_t seal_chunk_size() const { return sealed_ ? sealed_->chunk_size() : 0; }

  // Verified sequential read: the next up to `max` bytes into `buf`, from the start of the
  // content; 0 when the whole content has been delivered and matched its SHA-256. The call that
  // reaches the end returns kCorruption instead of its bytes when the digest does not match.
  Result<size_t> ReadNext(char* buf, size_t max);
  // Every byte through ReadNext, in pieces of up to kChunkSize, to `sink` (an error from the sink
  // stops the read and is returned). OK only when the whole content matched its SHA-256.
  Status ReadAll(const std::function<Status(std::string_view)>& sink);

  // For sendfile(2): the blob file and where its content starts. Bytes sent this way are not
  // verified (as ReadAt). Plaintext blobs only (!sealed()).
  const std::string& path() const { return file_->path(); }
  uint64_t data_offset() const { return data_offset_; }

 private:
  friend class BlobStore;
  BlobReader(std::unique_ptr<File> file, std::string file_id, uint64_t size, Sha256::Digest digest,
             uint64_t data_offset);
  // Content bytes [offset, offset + n) into buf (n within the content); sealed or not.
  Status ReadContent(uint64_t offset, size_t n, char* buf) const;

  std::unique_ptr<File> file_;
  // A sealed blob's decryptor (reads file_, so declared after it). It is single-threaded: ReadAt
  // may run concurrently, hence the mutex.
  std::unique_ptr<SealedReader> sealed_;
  std::string key_id_;
  mutable std::mutex sealed_mu_;
  const std::string file_id_;
  const uint64_t size_;
  const Sha256::Digest digest_;
  const std::string sha256_hex_;
  const uint64_t data_offset_;
  // The sequential read.
  Sha256 hasher_;
  uint64_t next_ = 0;
  bool verified_ = false;
  Status error_;
};

struct BlobStoreOptions {
  // Free space the store never writes into: a blob is refused with kNoSpace when the file system
  // would have less than this left, so that the metadata store and the Raft log (usually on the
  // same disk) can still write when the blobs have filled it.
  uint64_t reserved_bytes = 0;
  // Encryption at rest: with a keyring every new blob is sealed under its current key, and sealed
  // blobs can be read; without one, new blobs are plaintext and sealed ones refused.
  std::shared_ptr<const Keyring> keyring;
  SealOptions seal;
};

struct BlobStoreStats {
  uint64_t files = 0;
  uint64_t bytes = 0;           // content bytes of the committed blobs
  uint64_t free_bytes = 0;      // available to the node on the file system (statvfs f_bavail)
  uint64_t total_bytes = 0;     // size of the file system
  uint64_t reserved_bytes = 0;  // BlobStoreOptions::reserved_bytes
  // Encryption at rest. Files by seal state as of the last census (the scrubber's inventory pass
  // reads every header; the store does not at open, to keep start-up one directory walk).
  uint64_t sealed_files = 0;          // sealed under the keyring's current key
  uint64_t reseal_pending_files = 0;  // plaintext or an older key, while a keyring is set
  uint64_t reseals = 0;               // blobs rewritten by Reseal since the store opened
};

struct BlobPage {
  std::vector<std::string> file_ids;
  std::string next_after;  // pass as `after` for the next page; empty when the listing is done
};

class BlobStore {
 public:
  static constexpr size_t kHeaderSize = 256;
  // OK when the lease `name` still has fencing token `token` (a linearizable check).
  using Fence = std::function<Status(const std::string& name, uint64_t token)>;

  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;

  // Starts writing blob `file_id`. kInvalidArgument for a bad id or a malformed expected_sha256;
  // kNoSpace when the free space minus the reserve is less than expected_size (or is none at
  // all). A writer re-checks every kSpaceCheckBytes it writes and fails with kNoSpace when the
  // reserve is reached.
  static constexpr uint64_t kSpaceCheckBytes = 16ull << 20;
  Result<std::unique_ptr<BlobWriter>> Create(std::string_view file_id, BlobWriteOptions options = {});

  // kNotFound when absent; kCorruption for a damaged header or a wrong length.
  Result<std::unique_ptr<BlobReader>> Open(std::string_view file_id);

  // Re-hashes the whole blob (the scrub): OK, kCorruption, kNotFound or an I/O error.
  Status VerifyChecksum(std::string_view file_id);

  // Opens a blob that is known good: re-hashed now unless it was already verified since it last
  // changed on disk (same inode, size, mtime and ctime; the last kVerifiedEntries verifications
  // are remembered). For serving ranged and sendfile(2) reads, which cannot verify themselves:
  // a copy modified behind the store's back is re-hashed (and refused) before any byte goes out;
  // silent decay that leaves the file's times alone is the scrub's to find.
  static constexpr size_t kVerifiedEntries = 100000;
  Result<std::unique_ptr<BlobReader>> OpenVerified(std::string_view file_id);

  // True when `reader`'s blob is not sealed under the keyring's current key (a plaintext blob or
  // an older key) while the store has a keyring: Reseal would rewrite it.
  bool NeedsReseal(const BlobReader& reader) const;
  // Rewrites the blob sealed under the keyring's current key (rotation, and sealing blobs written
  // before the keyring was configured): the plaintext is read (authenticating every chunk) through
  // a SealWriter into a temp file while its SHA-256 is computed; only when it matches the header
  // is the temp file synced and renamed over the blob, under the same lock as Install and Delete
  // and only if the blob still has that SHA-256 (a blob deleted or replaced meanwhile is left
  // alone). Returns true when it rewrote the blob, false when there was nothing to do.
  // kCorruption when the old copy fails its check (nothing replaced: the scrub reports it).
  Result<bool> Reseal(std::string_view file_id);
  // The inventory's count of blobs by seal state, for Stats.
  void RecordSealCensus(uint64_t sealed_files, uint64_t reseal_pending_files);
  bool has_keyring() const { return options_.keyring != nullptr; }

  // Removes the blob durably (directory fsynced). kNotFound when absent.
  Status Delete(std::string_view file_id);

  // Installs the check of fenced commits (BlobWriteOptions::fence_token); without one, fenced
  // commits are not checked. Set once, before writers are created.
  void SetFence(Fence fence) { fence_ = std::move(fence); }

  // False for an invalid id.
  bool Exists(std::string_view file_id);

  // Up to `limit` ids (1..10000) of committed blobs after `after` ("" for the first page), in the
  // store's order: by shard (first byte of SHA-256(file_id)), then by id. The order is stable,
  // so paging with next_after visits every blob that exists throughout the listing exactly once;
  // it is not the catalog's file_id order.
  Result<BlobPage> List(std::string_view after, size_t limit);

  Result<BlobStoreStats> Stats();

  const std::string& root() const { return root_; }

 private:
  friend class BlobWriter;
  friend Result<std::unique_ptr<BlobStore>> OpenBlobStore(FileSystem& fs, const std::string& root,
                                                          BlobStoreOptions options);

  BlobStore(FileSystem& fs, std::string root, BlobStoreOptions options);
  // OK when `more_bytes` can still be written without going into the reserve; else kNoSpace.
  Status CheckSpace(std::string_view file_id, uint64_t more_bytes);
  // Attaches the decryptor to a reader of a sealed blob (see the format above for its errors).
  Status OpenSealed(BlobReader* reader) const;
  // Creates the directories, deletes temp files, counts the blobs.
  Status Init();
  std::string ShardDir(std::string_view file_id) const;
  std::string BlobPath(std::string_view file_id) const;
  // A blob's content size when its header cannot be read: its length after the blob header.
  uint64_t ContentBytesOnDisk(const std::string& path);
  // Deletes a temp file, logging (not returning) a failure: temp files are also swept on open.
  void RemoveTemp(const std::string& tmp_path);
  // The commit point of BlobWriter::Commit: `tmp_path` is complete, verified and synced.
  Status Install(const std::string& tmp_path, const std::string& file_id, uint64_t size,
                 const Sha256::Digest& digest, bool overwrite);

  FileSystem& fs_;
  const std::string root_;
  const BlobStoreOptions options_;
  const std::string blobs_dir_;
  const std::string tmp_dir_;
  std::atomic<uint64_t> next_temp_{0};

  struct FileStamp {
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0, ctime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  Fence fence_;
  // Fenced commits of one id check their lease and rename under the same stripe, so a commit
  // whose check passed renames before any later holder's check runs.
  std::array<std::mutex, 64> fence_stripes_;
  std::mutex& FenceStripe(const std::string& file_id) {
    return fence_stripes_[std::hash<std::string>{}(file_id) % fence_stripes_.size()];
  }
  std::mutex verified_mu_;
  std::map<std::string, FileStamp, std::less<>> verified_;  // guarded by verified_mu_

  // Serialises installs and deletes (check existing -> rename -> fsync dir); guards the counters.
  std::mutex mu_;
  uint64_t files_ = 0;
  uint64_t bytes_ = 0;
  uint64_t sealed_files_ = 0;
  uint64_t reseal_pending_files_ = 0;
  uint64_t reseals_ = 0;
};

// Opens (creating if needed) the blob store under `root`.
Result<std::unique_ptr<BlobStore>> OpenBlobStore(FileSystem& fs, const std::string& root,
                                                 BlobStoreOptions options = {});

}  // namespace dispotify::replication
