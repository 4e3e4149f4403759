// SnapshotStore on disk.
//
// ON-DISK FORMAT (versions 1 and 2)
// A snapshot is two files in the snapshot directory; the payload is a file of its own so that
// the state machine can restore from PayloadPath() directly (e.g. open it as a database):
//   snapshot-<index, 20 digits>-<term>.payload  the payload, byte for byte
//   snapshot-<index, 20 digits>-<term>.snap     the header; its rename is the commit point
// Temporary files, deleted on open: receiving.tmp (payload received from the leader),
// creating-<n>.tmp (payload written by a local SnapshotWriter), *.snap.tmp (header being written).
//
// .snap (little-endian):
//   magic           8 bytes "DSPFYSNP"
//   version         u32     1 or 2
//   meta_length     u32     bytes of `meta`
//   meta            SnapshotMeta: index u64 | term u64 | member_count u32 |
//                   member_count x (node_id u64 | voter u8 | address_length u32 | address bytes
//                                   [version 2: | node_uuid_length u32 | node_uuid bytes])
//   payload_length  u64     size of the .payload file
//   payload_crc     u32     CRC-32C of the whole payload
//   header_crc      u32     CRC-32C of everything before it in the .snap file
//
// Version 2 adds each member's incarnation (consensus/types.h, "Incarnations"); it is written only
// when some member has one, so a configuration without incarnations stays readable by servers
// that know version 1 only. A version 1 header reads as incarnations unknown ("").
//
// Commit (the same for a local snapshot and a received one): fdatasync the payload temp file,
// rename it to .payload, fsync the directory, write the .snap through temp + fdatasync + rename +
// directory fsync, then delete every other snapshot (.snap first, then its .payload).
//
// Open: delete temp files; the newest .snap whose header checks out, whose name agrees with its
// meta and whose payload has the recorded length and CRC is the latest; damaged ones are reported
// and skipped; older snapshots and payloads without a .snap (left by a crash) are deleted.

#include "node/storage/snapshot_store.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include "common/crc32c.h"
#include "common/encoding.h"
#include "common/logging.h"

namespace dispotify::storage {
namespace {

using consensus::Member;
using consensus::SnapshotMeta;
using encoding::Decoder;
using encoding::GetU32;
using encoding::PutU32;
using encoding::PutU64;
using encoding::PutU8;

constexpr char kMagic[8] = {'D', 'S', 'P', 'F', 'Y', 'S', 'N', 'P'};
constexpr uint32_t kVersion1 = 1;
constexpr uint32_t kVersion2 = 2;  // + node_uuid per member
constexpr std::string_view kPrefix = "snapshot-";
constexpr std::string_view kSnapSuffix = ".snap";
constexpr std::string_view kPayloadSuffix = ".payload";
constexpr char kReceivingName[] = "receiving.tmp";
constexpr size_t kVerifyChunk = 1 << 20;

std::string BaseName(LogIndex index, Term term) {
  return std::string(kPrefix) + encoding::Pad20(index.value()) + "-" + std::to_string(term.value());
}

// Parses "snapshot-<20 digits>-<term><suffix>".
bool ParseName(std::string_view name, std::string_view suffix, LogIndex* index, Term* term) {
  if (!name.starts_with(kPrefix) || !name.ends_with(suffix)) return false;
  name.remove_prefix(kPrefix.size());
  name.remove_suffix(suffix.size());
  if (name.size() < 22 || name[20] != '-') return false;
  uint64_t i = 0;
  uint64_t t = 0;
  if (!encoding::ParseU64(name.substr(0, 20), &i) || !encoding::ParseU64(name.substr(21), &t)) return false;
  *index = LogIndex(i);
  *term = Term(t);
  return true;
}

uint32_t VersionFor(const SnapshotMeta& meta) {
  for (const auto& [id, m] : meta.conf.members) {
    if (!m.node_uuid.empty()) return kVersion2;
  }
  return kVersion1;
}

std::string EncodeMeta(const SnapshotMeta& meta, uint32_t version) {
  std::string out;
  PutU64(&out, meta.index.value());
  PutU64(&out, meta.term.value());
  PutU32(&out, static_cast<uint32_t>(meta.conf.members.size()));
  for (const auto& [id, m] : meta.conf.members) {
    PutU64(&out, id.value());
    PutU8(&out, m.voter ? 1 : 0);
    PutU32(&out, static_cast<uint32_t>(m.address.size()));
    out += m.address;
    if (version >= kVersion2) {
      PutU32(&out, static_cast<uint32_t>(m.node_uuid.size()));
      out += m.node_uuid;
    }
  }
  return out;
}

bool DecodeMeta(std::string_view data, uint32_t version, SnapshotMeta* meta) {
  Decoder d(data);
  uint64_t index = 0;
  uint64_t term = 0;
  uint32_t count = 0;
  if (!d.GetU64(&index) || !d.GetU64(&term) || !d.GetU32(&count)) return false;
  meta->index = LogIndex(index);
  meta->term = Term(term);
  meta->conf.members.clear();
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t id = 0;
    uint8_t voter = 0;
    uint32_t len = 0;
    std::string_view address;
    if (!d.GetU64(&id) || !d.GetU8(&voter) || !d.GetU32(&len) || !d.GetBytes(len, &address) || voter > 1) {
      return false;
    }
    std::string_view uuid;
    if (version >= kVersion2) {
      uint32_t uuid_len = 0;
      if (!d.GetU32(&uuid_len) || !d.GetBytes(uuid_len, &uuid)) return false;
    }
    if (!meta->conf.members.emplace(NodeId(id), Member{std::string(address), voter == 1, std::string(uuid)})
             .second)
      return false;
  }
  return d.remaining() == 0;
}

std::string EncodeHeader(const SnapshotMeta& meta, uint64_t payload_length, uint32_t payload_crc) {
  const uint32_t version = VersionFor(meta);
  const std::string m = EncodeMeta(meta, version);
  std::string h(kMagic, sizeof(kMagic));
  PutU32(&h, version);
  PutU32(&h, static_cast<uint32_t>(m.size()));
  h += m;
  PutU64(&h, payload_length);
  PutU32(&h, payload_crc);
  PutU32(&h, crc32c::Value(h));
  return h;
}

struct Header {
  SnapshotMeta meta;
  uint64_t payload_length = 0;
  uint32_t payload_crc = 0;
};

// "" when `data` is a good header, otherwise what is wrong with it.
std::string DecodeHeader(std::string_view data, Header* h) {
  if (data.size() < 8 + 4 + 4 + 8 + 4 + 4) return "too short";
  if (std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0) return "bad magic";
  if (crc32c::Value(data.data(), data.size() - 4) != GetU32(data.data() + data.size() - 4))
    return "checksum mismatch";
  Decoder d(data.substr(sizeof(kMagic)));
  uint32_t version = 0;
  uint32_t meta_len = 0;
  std::string_view meta;
  (void)d.GetU32(&version);
  if (version != kVersion1 && version != kVersion2) return "unsupported version " + std::to_string(version);
  if (!d.GetU32(&meta_len) || !d.GetBytes(meta_len, &meta) || !DecodeMeta(meta, version, &h->meta))
    return "bad meta";
  if (!d.GetU64(&h->payload_length) || !d.GetU32(&h->payload_crc) || d.remaining() != 4) return "bad length";
  return "";
}

class FileSnapshotStore;

class FileSnapshotWriter final : public SnapshotWriter {
 public:
  FileSnapshotWriter(FileSnapshotStore* store, FileSystem* fs, SnapshotMeta meta, std::string tmp,
                     std::unique_ptr<File> file)
      : store_(store), fs_(fs), meta_(std::move(meta)), tmp_(std::move(tmp)), file_(std::move(file)) {}
  ~FileSnapshotWriter() override;
  FileSnapshotWriter(const FileSnapshotWriter&) = delete;
  FileSnapshotWriter& operator=(const FileSnapshotWriter&) = delete;

  Status Write(std::string_view data) override {
    if (!error_.ok()) return error_;
    if (file_ == nullptr) return Status::FailedPrecondition("snapshot writer already committed");
    Status s = file_->Append(data);
    if (!s.ok()) {
      error_ = s;
      return s;
    }
    crc_ = crc32c::Extend(crc_, data.data(), data.size());
    size_ += data.size();
    return Status::Ok();
  }

  Status Commit() override;

 private:
  FileSnapshotStore* store_;
  FileSystem* fs_;
  SnapshotMeta meta_;
  std::string tmp_;
  std::unique_ptr<File> file_;  // null once committed (or handed to the store)
  uint64_t size_ = 0;
  uint32_t crc_ = 0;
  Status error_;
};

class FileSnapshotStore final : public SnapshotStore {
 public:
  FileSnapshotStore(FileSystem& fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}

  Status Recover();

  std::optional<SnapshotMeta> Latest() const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!latest_) return std::nullopt;
    return latest_->meta;
  }

  Result<std::unique_ptr<SnapshotWriter>> Create(const SnapshotMeta& meta) override {
    std::string tmp;
    {
      std::lock_guard<std::mutex> lock(mu_);
      tmp = JoinPath(dir_, "creating-" + std::to_string(++create_seq_) + ".tmp");
    }
    auto file = fs_.Open(tmp, OpenMode::kCreateTruncate);
    if (!file.ok()) return file.status();
    return std::unique_ptr<SnapshotWriter>(
        std::make_unique<FileSnapshotWriter>(this, &fs_, meta, tmp, std::move(file).value()));
  }

  Status WriteChunk(const SnapshotMeta& meta, uint64_t offset, std::string_view data, bool done) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (offset == 0) {
      AbandonReceivingLocked();
      const std::string tmp = JoinPath(dir_, kReceivingName);
      auto file = fs_.Open(tmp, OpenMode::kCreateTruncate);
      if (!file.ok()) return file.status();
      receiving_ = Receiving{meta, tmp, std::move(file).value(), 0, 0};
    } else if (!receiving_) {
      return Status::InvalidArgument("snapshot chunk at offset " + std::to_string(offset) +
                                     " but no snapshot is being received; restart from offset 0");
    } else if (receiving_->meta != meta) {
      return Status::InvalidArgument("snapshot chunk for index " + std::to_string(meta.index.value()) +
                                     " while receiving index " +
                                     std::to_string(receiving_->meta.index.value()));
    } else if (offset != receiving_->size) {
      return Status::InvalidArgument("snapshot chunk at offset " + std::to_string(offset) + ", expected " +
                                     std::to_string(receiving_->size));
    }
    if (!data.empty()) {
      Status s = receiving_->file->Append(data);
      if (!s.ok()) {
        AbandonReceivingLocked();
        return s;
      }
      receiving_->crc = crc32c::Extend(receiving_->crc, data.data(), data.size());
      receiving_->size += data.size();
    }
    if (!done) return Status::Ok();

    Receiving r = std::move(*receiving_);
    receiving_.reset();
    auto size = r.file->Size();
    if (!size.ok() || *size != r.size) {
      r.file.reset();
      (void)fs_.Remove(r.tmp);
      return size.ok() ? Status::IoError("received snapshot has " + std::to_string(*size) +
                                         " bytes on disk, " + std::to_string(r.size) + " received")
                       : size.status();
    }
    return CommitLocked(r.meta, std::move(r.file), r.tmp, r.size, r.crc);
  }

  Result<uint64_t> PayloadSize(LogIndex index) const override {
    std::lock_guard<std::mutex> lock(mu_);
    DISPOTIFY_RETURN_IF_ERROR(CheckLatestLocked(index));
    return latest_->payload_length;
  }

  Result<std::string> ReadChunk(LogIndex index, uint64_t offset, uint64_t max_bytes) const override {
    std::lock_guard<std::mutex> lock(mu_);
    DISPOTIFY_RETURN_IF_ERROR(CheckLatestLocked(index));
    if (offset > latest_->payload_length) {
      return Status::InvalidArgument("offset " + std::to_string(offset) + " past the payload's " +
                                     std::to_string(latest_->payload_length) + " bytes");
    }
    auto file = fs_.Open(latest_->payload_path, OpenMode::kRead);
    if (!file.ok()) return file.status();
    std::string out(std::min(max_bytes, latest_->payload_length - offset), '\0');
    auto n = (*file)->PRead(offset, out.size(), out.data());
    if (!n.ok()) return n.status();
    if (*n != out.size())
      return Status::Corruption(latest_->payload_path + ": shorter than its recorded length");
    return out;
  }

  Result<std::string> PayloadPath(LogIndex index) const override {
    std::lock_guard<std::mutex> lock(mu_);
    DISPOTIFY_RETURN_IF_ERROR(CheckLatestLocked(index));
    return latest_->payload_path;
  }

  // Called by FileSnapshotWriter::Commit.
  Status Commit(const SnapshotMeta& meta, std::unique_ptr<File> file, const std::string& tmp, uint64_t size,
                uint32_t crc) {
    std::lock_guard<std::mutex> lock(mu_);
    return CommitLocked(meta, std::move(file), tmp, size, crc);
  }

 private:
  struct Stored {
    SnapshotMeta meta;
    std::string snap_path;
    std::string payload_path;
    uint64_t payload_length = 0;
  };
  struct Receiving {
    SnapshotMeta meta;
    std::string tmp;
    std::unique_ptr<File> file;
    uint64_t size = 0;
    uint32_t crc = 0;
  };

  // Checks the .snap at `snap_path` and its payload; "" when good, otherwise what is wrong.
  std::string Validate(const std::string& snap_path, LogIndex index, Term term, Stored* out);

  // --- Must hold mu_. ---
  Status CheckLatestLocked(LogIndex index) const {
    if (!latest_) return Status::NotFound("no snapshot");
    if (index != latest_->meta.index) {
      return Status::NotFound("snapshot " + std::to_string(index.value()) + " is not the latest (" +
                              std::to_string(latest_->meta.index.value()) + ")");
    }
    return Status::Ok();
  }
  void AbandonReceivingLocked() {
    if (!receiving_) return;
    receiving_->file.reset();
    (void)fs_.Remove(receiving_->tmp);
    receiving_.reset();
  }
  Status CommitLocked(const SnapshotMeta& meta, std::unique_ptr<File> file, const std::string& tmp,
                      uint64_t size, uint32_t crc);
  // Deletes every snapshot file but those of `keep` (best effort: a failure only leaves garbage).
  void DeleteOthersLocked(const std::string& keep_base);

  FileSystem& fs_;
  const std::string dir_;
  mutable std::mutex mu_;
  std::optional<Stored> latest_;
  std::optional<Receiving> receiving_;
  uint64_t create_seq_ = 0;
};

FileSnapshotWriter::~FileSnapshotWriter() {
  if (file_ != nullptr) {
    file_.reset();
    (void)fs_->Remove(tmp_);
  }
}

Status FileSnapshotWriter::Commit() {
  if (!error_.ok()) return error_;
  if (file_ == nullptr) return Status::FailedPrecondition("snapshot writer already committed");
  return store_->Commit(meta_, std::move(file_), tmp_, size_, crc_);
}

std::string FileSnapshotStore::Validate(const std::string& snap_path, LogIndex index, Term term,
                                        Stored* out) {
  auto data = ReadFileToString(fs_, snap_path);
  if (!data.ok()) return data.status().ToString();
  Header h;
  std::string reason = DecodeHeader(*data, &h);
  if (!reason.empty()) return reason;
  if (h.meta.index != index || h.meta.term != term) return "meta disagrees with the file name";
  const std::string payload_path = JoinPath(dir_, BaseName(index, term) + std::string(kPayloadSuffix));
  auto file = fs_.Open(payload_path, OpenMode::kRead);
  if (!file.ok()) return "payload: " + file.status().ToString();
  auto size = (*file)->Size();
  if (!size.ok()) return "payload: " + size.status().ToString();
  if (*size != h.payload_length) {
    return "payload has " + std::to_string(*size) + " bytes, header says " + std::to_string(h.payload_length);
  }
  uint32_t crc = 0;
  std::string buf(kVerifyChunk, '\0');
  for (uint64_t off = 0; off < *size;) {
    auto n = (*file)->PRead(off, buf.size(), buf.data());
    if (!n.ok()) return "payload: " + n.status().ToString();
    if (*n == 0) return "payload shorter than its size";
    crc = crc32c::Extend(crc, buf.data(), *n);
    off += *n;
  }
  if (crc != h.payload_crc) return "payload checksum mismatch";
  *out = Stored{h.meta, snap_path, payload_path, h.payload_length};
  return "";
}

Status FileSnapshotStore::Recover() {
  std::lock_guard<std::mutex> lock(mu_);
  DISPOTIFY_RETURN_IF_ERROR(fs_.CreateDirs(dir_));
  auto names = fs_.ListDir(dir_);
  if (!names.ok()) return names.status();
  struct Candidate {
    LogIndex index;
    Term term;
    std::string name;
  };
  std::vector<Candidate> candidates;
  for (const std::string& name : *names) {
    LogIndex index;
    Term term;
    if (name.ends_with(".tmp")) {
      DLOG_INFO << "removing left-over " << JoinPath(dir_, name);
      DISPOTIFY_RETURN_IF_ERROR(fs_.Remove(JoinPath(dir_, name)));
    } else if (ParseName(name, kSnapSuffix, &index, &term)) {
      candidates.push_back({index, term, name});
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.index > b.index; });
  for (const Candidate& c : candidates) {
    Stored l;
    std::string reason = Validate(JoinPath(dir_, c.name), c.index, c.term, &l);
    if (reason.empty()) {
      latest_ = std::move(l);
      break;
    }
    DLOG_ERROR << JoinPath(dir_, c.name) << " is damaged (" << reason << "); skipping it";
  }
  // Older snapshots and payloads without a header are left-overs of a crash during a commit.
  for (const std::string& name : *names) {
    LogIndex index;
    Term term;
    const bool snap = ParseName(name, kSnapSuffix, &index, &term);
    const bool payload = !snap && ParseName(name, kPayloadSuffix, &index, &term);
    if (!snap && !payload) continue;
    const bool older = latest_ && index < latest_->meta.index;
    const bool orphan =
        payload && !fs_.Exists(JoinPath(dir_, BaseName(index, term) + std::string(kSnapSuffix)));
    if (older || orphan) {
      DLOG_INFO << "removing left-over " << JoinPath(dir_, name);
      DISPOTIFY_RETURN_IF_ERROR(fs_.Remove(JoinPath(dir_, name)));
    }
  }
  return fs_.SyncDir(dir_);
}

Status FileSnapshotStore::CommitLocked(const SnapshotMeta& meta, std::unique_ptr<File> file,
                                       const std::string& tmp, uint64_t size, uint32_t crc) {
  auto discard = [&](Status s) {
    file.reset();
    (void)fs_.Remove(tmp);
    return s;
  };
  if (latest_ && meta.index <= latest_->meta.index) {
    if (meta.index == latest_->meta.index && meta.term == latest_->meta.term) {
      return discard(Status::Ok());  // the same snapshot (same index and term: same state); keep ours
    }
    return discard(Status::FailedPrecondition("snapshot at index " + std::to_string(meta.index.value()) +
                                              " is not newer than the latest one at " +
                                              std::to_string(latest_->meta.index.value())));
  }
  Status s = file->Sync();
  if (!s.ok()) return discard(s);
  file.reset();

  const std::string base = BaseName(meta.index, meta.term);
  const std::string payload_path = JoinPath(dir_, base + std::string(kPayloadSuffix));
  const std::string snap_path = JoinPath(dir_, base + std::string(kSnapSuffix));
  s = fs_.Rename(tmp, payload_path);
  if (!s.ok()) return discard(s);
  // The payload's name must be durable before the header that refers to it.
  s = fs_.SyncDir(dir_);
  if (s.ok()) s = WriteFileAtomically(fs_, snap_path, EncodeHeader(meta, size, crc));
  if (!s.ok()) {
    (void)fs_.Remove(payload_path);
    return s;
  }
  latest_ = Stored{meta, snap_path, payload_path, size};
  DLOG_INFO << "snapshot at index " << meta.index.value() << " term " << meta.term.value() << " committed ("
            << size << " bytes)";
  DeleteOthersLocked(base);
  return Status::Ok();
}

void FileSnapshotStore::DeleteOthersLocked(const std::string& keep_base) {
  auto names = fs_.ListDir(dir_);
  if (!names.ok()) return;
  std::vector<std::string> snaps;
  std::vector<std::string> payloads;
  for (const std::string& name : *names) {
    LogIndex index;
    Term term;
    if (name.starts_with(keep_base + ".")) continue;
    if (ParseName(name, kSnapSuffix, &index, &term)) snaps.push_back(name);
    if (ParseName(name, kPayloadSuffix, &index, &term)) payloads.push_back(name);
  }
  // Headers first, so that a header never outlives its payload.
  for (const auto* list : {&snaps, &payloads}) {
    for (const std::string& name : *list) {
      Status s = fs_.Remove(JoinPath(dir_, name));
      if (!s.ok()) DLOG_WARN << "could not delete old snapshot file: " << s.ToString();
    }
  }
  Status s = fs_.SyncDir(dir_);
  if (!s.ok()) DLOG_WARN << "could not sync " << dir_ << ": " << s.ToString();
}

}  // namespace

Result<std::unique_ptr<SnapshotStore>> OpenSnapshotStore(FileSystem& fs, const std::string& dir) {
  auto store = std::make_unique<FileSnapshotStore>(fs, dir);
  DISPOTIFY_RETURN_IF_ERROR(store->Recover());
  return std::unique_ptr<SnapshotStore>(std::move(store));
}

}  // namespace dispotify::storage
