#pragma once
// The catalog dump: the whole state of a MetadataStore (songs, replicas, locks, settings) with
// the applied index, in one store-independent format. MetadataStore::Dump/Load and Raft
// snapshots of the catalog use it, so a dump taken on SQLite loads into PostgreSQL and back.
//
// Layout (all integers little-endian, common/encoding.h):
//
//   header   "DSPFYCAT" (8 bytes) | u32 version (= 1) | u64 applied index
//   record*  u8 kind | u32 payload length | payload
//   end      u8 kind (= 0xFF) | u32 length (= 8) | u64 number of records before it
//   trailer  u32 CRC-32C (common/crc32c.h) of every byte above (header through end record)
//
// A string is `u32 length | bytes`. Payloads by kind:
//   1 song     file_id, title, artist, album, file_name, content_type (strings) | u32 track |
//              u32 year | u64 duration_ms | u64 size_bytes | sha256 (string) | i64 created_at_ms
//              [ album_artist (string) | u32 disc | genre (string) | u8 compilation (0/1)
//                [ cover (string) ] ]
//              The bracketed group came with catalog schema 3; it is written only when a field
//              differs from its default (album_artist: the artist), so a dump of untagged songs is byte for
//              byte what version 1 wrote (older nodes still install it), and a song record without it loads
//              with the defaults (the store then derives album_artist from artist). album_id is not carried:
//              the store recomputes it. The inner group (catalog schema 4) is written only for
//              a song with a cover, after the outer one.
//   2 replica  file_id (string) | u64 node | u8 state | i64 updated_at_ms
//   3 lock     name, owner (strings) | i64 expires_at_ms | u64 token
//   4 setting  key, value (strings)
// (i64 is written as its two's-complement u64.) A payload must be consumed exactly; a record
// longer than kMaxDumpRecordBytes, an unknown kind, a bad replica state, bytes after the
// trailer, a short file or a CRC mismatch make the dump corrupt (Status::Corruption).
//
// Records come in no particular order, but writers emit songs, then replicas, then locks, then
// settings. The CRC covers the whole dump and is checked only when the reader reaches the end:
// a consumer must treat every record as tentative until Next() has reported the end (e.g. load
// everything in one transaction and commit only then).

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/ids.h"
#include "common/status.h"
#include "node/catalog/types.h"

namespace dispotify::catalog {

inline constexpr std::string_view kDumpMagic = "DSPFYCAT";
inline constexpr uint32_t kDumpVersion = 1;
inline constexpr uint32_t kMaxDumpRecordBytes = 64u << 20;

enum class DumpRecordKind : uint8_t {
  kSong = 1,
  kReplica = 2,
  kLock = 3,
  kSetting = 4,
  kEnd = 0xFF,
};

struct DumpSetting {
  std::string key;
  std::string value;
  bool operator==(const DumpSetting&) const = default;
};

using DumpRecord = std::variant<Song, Replica, Lock, DumpSetting>;

// Encodes a dump into a byte sink, buffering internally (the sink sees chunks of ~64 KiB).
// Call Begin once, then any number of Add/AddSetting, then Finish. The first error returned by
// the sink is returned by that call and by every later one.
class DumpWriter {
 public:
  using Sink = std::function<Status(std::string_view)>;
  explicit DumpWriter(Sink sink);

  Status Begin(LogIndex applied_index);
  Status Add(const Song& song);
  Status Add(const Replica& replica);
  Status Add(const Lock& lock);
  Status AddSetting(std::string_view key, std::string_view value);
  // Writes the end record and the CRC, and flushes everything to the sink.
  Status Finish();

 private:
  Status AddRecord(DumpRecordKind kind, std::string_view payload);
  Status Flush();

  Sink sink_;
  std::string buffer_;
  std::string payload_;
  uint32_t crc_ = 0;
  uint64_t records_ = 0;
  enum class State : uint8_t { kNew, kOpen, kFinished, kFailed } state_ = State::kNew;
  Status error_;
};

// Reads a dump file sequentially with bounded memory.
//   auto reader = DumpReader::Open(path);           // header checked
//   while (true) {
//     auto next = (*reader)->Next();                // Result<std::optional<DumpRecord>>
//     if (!next.ok()) ...;                          // Corruption / IoError: abandon everything
//     if (!next->has_value()) break;                // end reached, CRC verified
//     ... std::visit on **next ...
//   }
class DumpReader {
 public:
  ~DumpReader();
  DumpReader(const DumpReader&) = delete;
  DumpReader& operator=(const DumpReader&) = delete;

  static Result<std::unique_ptr<DumpReader>> Open(const std::string& path);

  LogIndex applied_index() const { return applied_index_; }
  // The next record; std::nullopt once the end record and the CRC have been verified (and on
  // every call after that).
  Result<std::optional<DumpRecord>> Next();

 private:
  DumpReader(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  // Reads exactly n bytes into *out (and into the running CRC); Corruption on a short read.
  Status ReadExact(size_t n, std::string* out, bool checksum = true);

  std::FILE* file_;
  std::string path_;
  LogIndex applied_index_;
  uint32_t crc_ = 0;
  uint64_t records_ = 0;
  bool done_ = false;
  bool failed_ = false;
};

// Encodes/decodes one record's payload (exposed for tests and for stores that batch records).
void EncodeDumpRecord(const DumpRecord& record, std::string* out_payload);
Result<DumpRecord> DecodeDumpRecord(DumpRecordKind kind, std::string_view payload);

}  // namespace dispotify::catalog
