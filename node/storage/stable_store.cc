// StableStore on disk: two alternating slots, as LogCabin's SegmentedLog keeps its metadata.
//
// ON-DISK FORMAT (version 1)
//   <dir>/hardstate      8192 bytes: slot 0 at offset 0, slot 1 at offset 4096 (separate 4 KiB
//                        blocks, so that a torn write of one slot cannot damage the other)
//   <dir>/hardstate.tmp  the file being created on a fresh directory; deleted on open
// A slot, 48 bytes at the start of its block (the rest of the block is zero), little-endian:
//     magic    8 bytes "DSPFYHST"
//     version  u32     1
//     seq      u64     number of this save; lives in slot seq % 2
//     term     u64
//     vote     u64     node id, 0 for none
//     commit   u64
//     crc      u32     CRC-32C of the 44 bytes before it
// An all-zero slot is unused (only right after creation).
//
// Save writes the slot that does NOT hold the current state (seq + 1) with one pwrite, then
// fdatasync: one sync and no metadata change per save. A crash during the write damages only
// that slot, whose save never returned, and Open picks the other one. Creation (fresh directory)
// writes the whole file with seq 1 and a zero state through temp + fdatasync + rename + directory
// fsync, so the file either exists complete or not at all.
//
// Open: missing file -> zero state (created). Otherwise the valid slot with the higher seq wins; a
// damaged slot beside a valid one is an interrupted save (warning). No valid slot, or a file of
// the wrong size -> kCorruption: never guess a term or a vote. (Bit rot in the newest slot looks
// like an interrupted save and rolls back one save: the limitation LogCabin's metadata shares.)

#include "node/storage/stable_store.h"

#include <cstring>

#include "common/crc32c.h"
#include "common/encoding.h"
#include "common/logging.h"

namespace dispotify::storage {
namespace {

using consensus::HardState;
using encoding::GetU32;
using encoding::GetU64;
using encoding::PutU32;
using encoding::PutU64;

constexpr char kMagic[8] = {'D', 'S', 'P', 'F', 'Y', 'H', 'S', 'T'};
constexpr uint32_t kVersion = 1;
constexpr size_t kBlockSize = 4096;
constexpr size_t kFileSize = 2 * kBlockSize;
constexpr size_t kSlotSize = 48;
constexpr char kFileName[] = "hardstate";

std::string EncodeSlot(uint64_t seq, const HardState& hs) {
  std::string s(kMagic, sizeof(kMagic));
  PutU32(&s, kVersion);
  PutU64(&s, seq);
  PutU64(&s, hs.term.value());
  PutU64(&s, hs.vote.value());
  PutU64(&s, hs.commit.value());
  PutU32(&s, crc32c::Value(s));
  return s;
}

enum class SlotState { kUnused, kValid, kDamaged };

SlotState DecodeSlot(std::string_view s, uint64_t* seq, HardState* hs) {
  if (s.find_first_not_of('\0') == std::string_view::npos) return SlotState::kUnused;
  if (std::memcmp(s.data(), kMagic, sizeof(kMagic)) != 0) return SlotState::kDamaged;
  if (crc32c::Value(s.data(), kSlotSize - 4) != GetU32(s.data() + kSlotSize - 4)) return SlotState::kDamaged;
  if (GetU32(s.data() + 8) != kVersion) return SlotState::kDamaged;
  *seq = GetU64(s.data() + 12);
  hs->term = Term(GetU64(s.data() + 20));
  hs->vote = NodeId(GetU64(s.data() + 28));
  hs->commit = LogIndex(GetU64(s.data() + 36));
  return SlotState::kValid;
}

class FileStableStore final : public StableStore {
 public:
  FileStableStore(std::unique_ptr<File> file, uint64_t seq, HardState hs)
      : file_(std::move(file)), seq_(seq), hs_(hs) {}

  const HardState& Load() const override { return hs_; }

  Status Save(const HardState& hs) override {
    if (!broken_.ok()) return broken_;
    if (hs == hs_) return Status::Ok();  // already durable
    const uint64_t seq = seq_ + 1;
    Status s = file_->PWrite((seq % 2) * kBlockSize, EncodeSlot(seq, hs));
    if (s.ok()) s = file_->Sync();
    if (!s.ok()) {
      // The slot is in an unknown state: writing it again could leave neither slot valid if the
      // other write tears too. Refuse further saves; a restart reads whichever slot is good.
      DLOG_ERROR << "stable store " << file_->path() << " is unusable until reopened: " << s.ToString();
      broken_ = s;
      return s;
    }
    seq_ = seq;
    hs_ = hs;
    return Status::Ok();
  }

 private:
  std::unique_ptr<File> file_;
  uint64_t seq_;
  HardState hs_;
  Status broken_;
};

}  // namespace

Result<std::unique_ptr<StableStore>> OpenStableStore(FileSystem& fs, const std::string& dir) {
  DISPOTIFY_RETURN_IF_ERROR(fs.CreateDirs(dir));
  const std::string path = JoinPath(dir, kFileName);
  if (fs.Exists(path + ".tmp")) DISPOTIFY_RETURN_IF_ERROR(fs.Remove(path + ".tmp"));
  if (!fs.Exists(path)) {
    // Seq 1 lives in slot 1; slot 0 stays unused until the first save.
    std::string content(kFileSize, '\0');
    const std::string slot = EncodeSlot(1, HardState{});
    content.replace(kBlockSize, slot.size(), slot);
    DISPOTIFY_RETURN_IF_ERROR(WriteFileAtomically(fs, path, content));
  }

  auto file = fs.Open(path, OpenMode::kReadWrite);
  if (!file.ok()) return file.status();
  auto size = (*file)->Size();
  if (!size.ok()) return size.status();
  if (*size != kFileSize) {
    return Status::Corruption(path + ": " + std::to_string(*size) + " bytes, expected " +
                              std::to_string(kFileSize));
  }
  std::string buf(kFileSize, '\0');
  auto n = (*file)->PRead(0, kFileSize, buf.data());
  if (!n.ok()) return n.status();
  if (*n != kFileSize) return Status::Corruption(path + ": short read");

  uint64_t seq[2] = {0, 0};
  HardState hs[2];
  SlotState st[2];
  for (int i = 0; i < 2; ++i) {
    st[i] = DecodeSlot(std::string_view(buf).substr(i * kBlockSize, kSlotSize), &seq[i], &hs[i]);
    if (st[i] == SlotState::kValid && seq[i] % 2 != static_cast<uint64_t>(i)) st[i] = SlotState::kDamaged;
  }
  int best = -1;
  for (int i = 0; i < 2; ++i) {
    if (st[i] == SlotState::kValid && (best < 0 || seq[i] > seq[best])) best = i;
  }
  if (best < 0) return Status::Corruption(path + ": no valid slot; refusing to guess the term and vote");
  if (st[1 - best] == SlotState::kDamaged) {
    DLOG_WARN << path << ": slot " << (1 - best) << " is damaged (an interrupted save); using slot " << best
              << " (seq " << seq[best] << ")";
  }
  return std::unique_ptr<StableStore>(
      std::make_unique<FileStableStore>(std::move(file).value(), seq[best], hs[best]));
}

}  // namespace dispotify::storage
