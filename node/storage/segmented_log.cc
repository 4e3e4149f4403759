#include "node/storage/segmented_log.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/encoding.h"
#include "common/logging.h"

namespace dispotify::storage {

using consensus::Entry;
using consensus::EntryType;
using encoding::GetU32;
using encoding::GetU64;
using encoding::PutU32;
using encoding::PutU64;
using encoding::PutU8;

namespace segmented_log {

namespace {
constexpr std::string_view kPrefix = "log-";
constexpr std::string_view kSuffix = ".seg";
constexpr std::string_view kTmpSuffix = ".tmp";
}  // namespace

std::string SegmentFileName(LogIndex first) {
  return std::string(kPrefix) + encoding::Pad20(first.value()) + std::string(kSuffix);
}

bool ParseSegmentFileName(std::string_view name, LogIndex* first) {
  if (name.size() != kPrefix.size() + 20 + kSuffix.size()) return false;
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return false;
  uint64_t v = 0;
  if (!encoding::ParseU64(name.substr(kPrefix.size(), 20), &v)) return false;
  *first = LogIndex(v);
  return true;
}

}  // namespace segmented_log

namespace {

using segmented_log::kFormatVersion;
using segmented_log::kHeaderSize;
using segmented_log::kMagic;
using segmented_log::kRecordHeaderSize;

std::string EncodeHeader(LogIndex first, uint64_t generation) {
  std::string h(kMagic, sizeof(kMagic));
  PutU32(&h, kFormatVersion);
  PutU64(&h, first.value());
  PutU64(&h, generation);
  PutU32(&h, crc32c::Value(h));
  return h;
}

struct Header {
  LogIndex first;
  uint64_t generation = 0;
};

Status DecodeHeader(const std::string& path, std::string_view h, Header* out) {
  if (h.size() < kHeaderSize) return Status::Corruption(path + ": short segment header");
  if (std::memcmp(h.data(), kMagic, sizeof(kMagic)) != 0) return Status::Corruption(path + ": bad magic");
  if (crc32c::Value(h.data(), kHeaderSize - 4) != GetU32(h.data() + kHeaderSize - 4)) {
    return Status::Corruption(path + ": segment header checksum mismatch");
  }
  const uint32_t version = GetU32(h.data() + 8);
  if (version != kFormatVersion) {
    return Status::Corruption(path + ": unsupported segment format version " + std::to_string(version));
  }
  out->first = LogIndex(GetU64(h.data() + 12));
  out->generation = GetU64(h.data() + 20);
  return Status::Ok();
}

// Appends the record of `e` to `buf`.
void EncodeRecord(const Entry& e, std::string* buf) {
  const size_t start = buf->size();
  PutU32(buf, static_cast<uint32_t>(e.data.size()));
  PutU32(buf, 0);  // crc, filled in below
  PutU64(buf, e.term.value());
  PutU64(buf, e.index.value());
  PutU8(buf, static_cast<uint8_t>(e.type));
  buf->append(e.data);
  char* rec = buf->data() + start;
  const uint32_t crc = crc32c::Value(rec + 8, buf->size() - start - 8);
  for (int i = 0; i < 4; ++i) rec[4 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
}

bool KnownType(uint8_t t) {
  return t <= static_cast<uint8_t>(EntryType::kConfChange);
}

// A record parsed from a buffer, not yet checked against its expected index.
struct RawRecord {
  uint32_t length = 0;
  Term term;
  LogIndex index;
  uint8_t type = 0;
  std::string_view data;
};

// Parses the record at the start of `buf`; returns a reason when it is damaged, "" when it is good.
std::string ParseRecord(std::string_view buf, RawRecord* r) {
  if (buf.size() < kRecordHeaderSize) return "short record header";
  r->length = GetU32(buf.data());
  if (r->length > buf.size() - kRecordHeaderSize) return "record extends past the end of the file";
  const uint32_t crc = GetU32(buf.data() + 4);
  if (crc32c::Value(buf.data() + 8, kRecordHeaderSize - 8 + r->length) != crc) return "checksum mismatch";
  r->term = Term(GetU64(buf.data() + 8));
  r->index = LogIndex(GetU64(buf.data() + 16));
  r->type = static_cast<uint8_t>(buf[24]);
  r->data = buf.substr(kRecordHeaderSize, r->length);
  if (!KnownType(r->type)) return "unknown entry type " + std::to_string(r->type);
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Opening and recovery

Result<std::unique_ptr<LogStore>> OpenSegmentedLog(FileSystem& fs, const std::string& dir,
                                                   LogStoreOptions options) {
  auto log = SegmentedLog::Open(fs, dir, options);
  if (!log.ok()) return log.status();
  return std::unique_ptr<LogStore>(std::move(log).value());
}

SegmentedLog::SegmentedLog(FileSystem& fs, std::string dir, LogStoreOptions options)
    : fs_(fs), dir_(std::move(dir)), options_(options) {}

Result<std::unique_ptr<SegmentedLog>> SegmentedLog::Open(FileSystem& fs, const std::string& dir,
                                                         LogStoreOptions options) {
  std::unique_ptr<SegmentedLog> log(new SegmentedLog(fs, dir, options));
  Status s = log->Recover();
  if (!s.ok()) return s;
  return log;
}

Status SegmentedLog::Recover() {
  std::lock_guard<std::mutex> lock(mu_);  // for the Locked helpers; uncontended
  DISPOTIFY_RETURN_IF_ERROR(fs_.CreateDirs(dir_));
  auto names = fs_.ListDir(dir_);
  if (!names.ok()) return names.status();

  bool dir_changed = false;
  std::vector<std::pair<Segment, Header>> found;
  for (const std::string& name : *names) {
    LogIndex first;
    if (name.ends_with(".seg.tmp")) {
      DLOG_INFO << "removing left-over " << JoinPath(dir_, name);
      DISPOTIFY_RETURN_IF_ERROR(fs_.Remove(JoinPath(dir_, name)));
      dir_changed = true;
      continue;
    }
    if (!segmented_log::ParseSegmentFileName(name, &first)) continue;
    Segment seg;
    seg.first = first;
    seg.path = JoinPath(dir_, name);
    auto file = fs_.Open(seg.path, OpenMode::kReadWrite);
    if (!file.ok()) return file.status();
    seg.file = std::move(file).value();
    char hbuf[kHeaderSize];
    auto n = seg.file->PRead(0, kHeaderSize, hbuf);
    if (!n.ok()) return n.status();
    Header h;
    DISPOTIFY_RETURN_IF_ERROR(DecodeHeader(seg.path, std::string_view(hbuf, *n), &h));
    if (h.first != first) {
      return Status::Corruption(seg.path + ": header says first index " + std::to_string(h.first.value()));
    }
    found.emplace_back(std::move(seg), h);
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first.first < b.first.first; });

  for (const auto& [seg, h] : found) generation_ = std::max(generation_, h.generation);
  for (auto& [seg, h] : found) {
    if (h.generation < generation_) {
      // An interrupted Reset: the new generation's segment was committed, these were not removed.
      DLOG_WARN << "removing " << seg.path << " of generation " << h.generation
                << " (interrupted reset to generation " << generation_ << ")";
      DISPOTIFY_RETURN_IF_ERROR(fs_.Remove(seg.path));
      dir_changed = true;
      continue;
    }
    segments_.push_back(std::move(seg));
  }
  if (dir_changed) DISPOTIFY_RETURN_IF_ERROR(fs_.SyncDir(dir_));

  Term prev_term;
  for (size_t i = 0; i < segments_.size(); ++i) {
    Segment& seg = segments_[i];
    if (i > 0) {
      const Segment& prev = segments_[i - 1];
      if (seg.first != prev.last().next()) {
        return Status::Corruption(seg.path + " starts at index " + std::to_string(seg.first.value()) +
                                  " but " + prev.path + " ends at " + std::to_string(prev.last().value()) +
                                  " (a gap or an overlap in the log)");
      }
    }
    DISPOTIFY_RETURN_IF_ERROR(ScanSegment(&seg, i + 1 == segments_.size(), &prev_term));
  }
  last_term_ = prev_term;

  if (segments_.empty()) {
    generation_ = std::max<uint64_t>(generation_, 1);
    auto seg = CreateSegmentLocked(LogIndex(1), generation_);
    if (!seg.ok()) return seg.status();
    segments_.push_back(std::move(seg).value());
    DISPOTIFY_RETURN_IF_ERROR(fs_.SyncDir(dir_));
  }
  DLOG_DEBUG << "opened log " << dir_ << ": " << segments_.size() << " segment(s), entries ["
             << FirstIndexLocked().value() << ", " << LastIndexLocked().value() << "]";
  return Status::Ok();
}

Status SegmentedLog::ScanSegment(Segment* seg, bool is_last, Term* prev_term) {
  auto size = seg->file->Size();
  if (!size.ok()) return size.status();
  std::string buf(*size, '\0');
  auto n = seg->file->PRead(0, buf.size(), buf.data());
  if (!n.ok()) return n.status();
  buf.resize(*n);

  uint64_t offset = kHeaderSize;
  LogIndex expected = seg->first;
  while (offset < buf.size()) {
    RawRecord r;
    std::string reason = ParseRecord(std::string_view(buf).substr(offset), &r);
    if (reason.empty() && r.index != expected) {
      reason = "index " + std::to_string(r.index.value()) + " where " + std::to_string(expected.value()) +
               " was expected";
    }
    if (reason.empty() && r.term < *prev_term) {
      reason = "term " + std::to_string(r.term.value()) + " after term " + std::to_string(prev_term->value());
    }
    if (!reason.empty()) {
      if (!is_last) {
        return Status::Corruption(seg->path + ": bad record at offset " + std::to_string(offset) + " (" +
                                  reason + ") in a closed segment");
      }
      DLOG_WARN << seg->path << ": truncating " << (buf.size() - offset) << " byte(s) at offset " << offset
                << ", from index " << expected.value() << " (" << reason
                << "): the torn tail of an unsynced write";
      DISPOTIFY_RETURN_IF_ERROR(seg->file->Truncate(offset));
      DISPOTIFY_RETURN_IF_ERROR(seg->file->Sync());
      buf.resize(offset);
      break;
    }
    seg->offsets.push_back(offset);
    offset += kRecordHeaderSize + r.length;
    expected = expected.next();
    *prev_term = r.term;
  }
  seg->size = offset;
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Queries

LogIndex SegmentedLog::first_index() const {
  std::lock_guard<std::mutex> lock(mu_);
  return FirstIndexLocked();
}

LogIndex SegmentedLog::last_index() const {
  std::lock_guard<std::mutex> lock(mu_);
  return LastIndexLocked();
}

size_t SegmentedLog::segment_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return segments_.size();
}

Result<std::vector<Entry>> SegmentedLog::Read(LogIndex from, LogIndex to) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!broken_.ok()) return broken_;
  std::vector<Entry> out;
  if (from > to) return out;
  if (from < FirstIndexLocked()) {
    return Status::Compacted("log index " + std::to_string(from.value()) + " is before the first index " +
                             std::to_string(FirstIndexLocked().value()));
  }
  if (to > LastIndexLocked()) {
    return Status::InvalidArgument("log index " + std::to_string(to.value()) + " is past the last index " +
                                   std::to_string(LastIndexLocked().value()));
  }
  out.reserve(to.value() - from.value() + 1);
  // The first segment that may hold `from`: the last one whose first index is <= from.
  auto it = std::upper_bound(segments_.begin(), segments_.end(), from,
                             [](LogIndex i, const Segment& s) { return i < s.first; });
  --it;
  for (; it != segments_.end() && it->first <= to; ++it) {
    if (it->count() == 0) continue;
    LogIndex a = std::max(from, it->first);
    LogIndex b = std::min(to, it->last());
    DISPOTIFY_RETURN_IF_ERROR(ReadRangeLocked(*it, a, b, &out));
  }
  return out;
}

Status SegmentedLog::ReadRangeLocked(const Segment& seg, LogIndex from, LogIndex to,
                                     std::vector<Entry>* out) const {
  const size_t a = from.value() - seg.first.value();
  const size_t b = to.value() - seg.first.value();
  const uint64_t begin = seg.offsets[a];
  const uint64_t end = seg.record_end(b);
  std::string buf(end - begin, '\0');
  auto n = seg.file->PRead(begin, buf.size(), buf.data());
  if (!n.ok()) return n.status();
  if (*n != buf.size()) return Status::Corruption(seg.path + ": file shorter than its records");
  for (size_t i = a; i <= b; ++i) {
    const uint64_t off = seg.offsets[i] - begin;
    const uint64_t len = seg.record_end(i) - seg.offsets[i];
    RawRecord r;
    std::string reason = ParseRecord(std::string_view(buf).substr(off, len), &r);
    const LogIndex expected(seg.first.value() + i);
    if (reason.empty() && (r.index != expected || kRecordHeaderSize + r.length != len))
      reason = "record moved";
    if (!reason.empty()) {
      return Status::Corruption(seg.path + ": record of index " + std::to_string(expected.value()) +
                                " at offset " + std::to_string(seg.offsets[i]) + " is damaged (" + reason +
                                ")");
    }
    out->push_back(Entry{r.term, r.index, static_cast<EntryType>(r.type), std::string(r.data)});
  }
  return Status::Ok();
}

Result<Term> SegmentedLog::ReadTermLocked(LogIndex index) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), index,
                             [](LogIndex i, const Segment& s) { return i < s.first; });
  DISPOTIFY_CHECK(it != segments_.begin(), "ReadTermLocked: index before the log");
  --it;
  std::vector<Entry> one;
  DISPOTIFY_RETURN_IF_ERROR(ReadRangeLocked(*it, index, index, &one));
  return one.front().term;
}

// ---------------------------------------------------------------------------------------------
// Writes

Status SegmentedLog::Fail(Status s) {
  DLOG_ERROR << "log " << dir_ << " is unusable until reopened: " << s.ToString();
  broken_ = s;
  return s;
}

Result<SegmentedLog::Segment> SegmentedLog::CreateSegmentLocked(LogIndex first, uint64_t generation) {
  Segment seg;
  seg.first = first;
  seg.path = JoinPath(dir_, segmented_log::SegmentFileName(first));
  const std::string tmp = seg.path + ".tmp";
  {
    auto file = fs_.Open(tmp, OpenMode::kCreateTruncate);
    if (!file.ok()) return file.status();
    DISPOTIFY_RETURN_IF_ERROR((*file)->Append(EncodeHeader(first, generation)));
    DISPOTIFY_RETURN_IF_ERROR((*file)->Sync());
  }
  DISPOTIFY_RETURN_IF_ERROR(fs_.Rename(tmp, seg.path));
  auto file = fs_.Open(seg.path, OpenMode::kReadWrite);
  if (!file.ok()) return file.status();
  seg.file = std::move(file).value();
  seg.size = kHeaderSize;
  return seg;
}

Status SegmentedLog::RollOverLocked() {
  // The closed segment must be complete on disk before a later one can exist: recovery treats any
  // damage in a closed segment as corruption.
  DISPOTIFY_RETURN_IF_ERROR(segments_.back().file->Sync());
  auto seg = CreateSegmentLocked(LastIndexLocked().next(), generation_);
  if (!seg.ok()) return seg.status();
  segments_.push_back(std::move(seg).value());
  dir_dirty_ = true;
  return Status::Ok();
}

Status SegmentedLog::TruncateSuffixLocked(LogIndex from) {
  // Later segments go first, newest first, each removal durable before the next, so that a crash
  // leaves contiguous segments. A segment that starts at `from` stays, emptied.
  while (segments_.back().first > from) {
    DISPOTIFY_RETURN_IF_ERROR(fs_.Remove(segments_.back().path));
    DISPOTIFY_RETURN_IF_ERROR(fs_.SyncDir(dir_));
    segments_.pop_back();
  }
  Segment& seg = segments_.back();
  const size_t keep = from.value() - seg.first.value();
  if (keep < seg.count()) {
    const uint64_t new_size = seg.offsets[keep];
    DISPOTIFY_RETURN_IF_ERROR(seg.file->Truncate(new_size));
    // Durable before new records go where the old ones were.
    DISPOTIFY_RETURN_IF_ERROR(seg.file->Sync());
    seg.offsets.resize(keep);
    seg.size = new_size;
  }
  return Status::Ok();
}

Status SegmentedLog::Append(const std::vector<Entry>& entries) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!broken_.ok()) return broken_;
  if (entries.empty()) return Status::Ok();

  const LogIndex start = entries.front().index;
  if (start < FirstIndexLocked() || start > LastIndexLocked().next()) {
    return Status::InvalidArgument("append at index " + std::to_string(start.value()) + " outside [" +
                                   std::to_string(FirstIndexLocked().value()) + ", " +
                                   std::to_string(LastIndexLocked().next().value()) + "]");
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].data.size() > UINT32_MAX) {
      return Status::InvalidArgument("entry " + std::to_string(entries[i].index.value()) +
                                     " has more than 4 GiB");
    }
    if (i == 0) continue;
    if (entries[i].index != entries[i - 1].index.next()) {
      return Status::InvalidArgument("append of non-contiguous entries at index " +
                                     std::to_string(entries[i].index.value()));
    }
    if (entries[i].term < entries[i - 1].term) {
      return Status::InvalidArgument("append with a decreasing term at index " +
                                     std::to_string(entries[i].index.value()));
    }
  }

  // Terms never decrease along a log (recovery relies on it to spot stale records).
  Term prev_term = last_term_;
  if (start <= LastIndexLocked()) {
    if (start == FirstIndexLocked()) {
      prev_term = Term();  // the entry before is compacted: unknown
    } else {
      auto t = ReadTermLocked(start.prev());
      if (!t.ok()) return t.status();
      prev_term = *t;
    }
  }
  if (entries.front().term < prev_term) {
    return Status::InvalidArgument("append of term " + std::to_string(entries.front().term.value()) +
                                   " after term " + std::to_string(prev_term.value()));
  }
  if (start <= LastIndexLocked()) {
    Status s = TruncateSuffixLocked(start);
    if (!s.ok()) return Fail(s);
    last_term_ = prev_term;
  }
  if (segments_.back().size >= options_.segment_bytes && segments_.back().count() > 0) {
    Status s = RollOverLocked();
    if (!s.ok()) return Fail(s);
  }

  Segment& seg = segments_.back();
  size_t total = 0;
  for (const Entry& e : entries) total += kRecordHeaderSize + e.data.size();
  std::string buf;
  buf.reserve(total);
  std::vector<uint64_t> offsets;
  offsets.reserve(entries.size());
  for (const Entry& e : entries) {
    offsets.push_back(seg.size + buf.size());
    EncodeRecord(e, &buf);
  }
  Status s = seg.file->PWrite(seg.size, buf);
  if (!s.ok()) {
    // Best effort: cut what a short write left, so that a reopen sees the log as it was. The log is
    // unusable from now on either way.
    (void)seg.file->Truncate(seg.size);
    return Fail(s);
  }
  seg.offsets.insert(seg.offsets.end(), offsets.begin(), offsets.end());
  seg.size += buf.size();
  last_term_ = entries.back().term;
  data_dirty_ = true;
  return Status::Ok();
}

Status SegmentedLog::Sync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!broken_.ok()) return broken_;
  if (data_dirty_) {
    Status s = segments_.back().file->Sync();
    if (!s.ok()) return Fail(s);
    data_dirty_ = false;
  }
  if (dir_dirty_) {
    Status s = fs_.SyncDir(dir_);
    if (!s.ok()) return Fail(s);
    dir_dirty_ = false;
  }
  return Status::Ok();
}

Status SegmentedLog::CompactPrefix(LogIndex upto) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!broken_.ok()) return broken_;
  // Oldest first, each removal durable before the next: a crash leaves contiguous segments.
  while (segments_.size() > 1 && segments_.front().last() <= upto) {
    Status s = fs_.Remove(segments_.front().path);
    if (s.ok()) s = fs_.SyncDir(dir_);
    if (!s.ok()) return Fail(s);
    segments_.pop_front();
  }
  return Status::Ok();
}

Status SegmentedLog::Reset(LogIndex next_index) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!broken_.ok()) return broken_;
  if (next_index == LogIndex()) return Status::InvalidArgument("Reset: log indexes start at 1");
  // The new generation's segment is the commit point: once its rename is durable, recovery deletes
  // every older segment, whether or not the removals below happened.
  auto seg = CreateSegmentLocked(next_index, generation_ + 1);
  if (!seg.ok()) return Fail(seg.status());
  Status s = fs_.SyncDir(dir_);
  if (!s.ok()) return Fail(s);
  ++generation_;
  std::deque<Segment> old;
  old.swap(segments_);
  segments_.push_back(std::move(seg).value());
  for (const Segment& o : old) {
    if (o.path == segments_.back().path) continue;  // replaced by the rename
    s = fs_.Remove(o.path);
    if (!s.ok()) return Fail(s);
  }
  s = fs_.SyncDir(dir_);
  if (!s.ok()) return Fail(s);
  last_term_ = Term();
  data_dirty_ = false;
  dir_dirty_ = false;
  return Status::Ok();
}

void SegmentedLog::CheckInvariants() const {
  std::lock_guard<std::mutex> lock(mu_);
  DISPOTIFY_CHECK(!segments_.empty(), "the log has no segment");
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& s = segments_[i];
    DISPOTIFY_CHECK(s.file != nullptr, "segment without a file");
    DISPOTIFY_CHECK(s.size >= kHeaderSize, "segment smaller than its header");
    if (i + 1 < segments_.size()) {
      DISPOTIFY_CHECK(s.count() > 0, "empty closed segment");
      DISPOTIFY_CHECK(segments_[i + 1].first == s.last().next(), "segments not contiguous");
    }
    uint64_t prev = 0;
    for (uint64_t off : s.offsets) {
      DISPOTIFY_CHECK(off >= kHeaderSize && off >= prev, "record offsets out of order");
      prev = off + kRecordHeaderSize;
    }
    DISPOTIFY_CHECK(s.offsets.empty() || s.size >= s.offsets.back() + kRecordHeaderSize,
                    "size before last record");
    if (broken_.ok()) {
      auto size = s.file->Size();
      DISPOTIFY_CHECK(size.ok() && *size == s.size, "file size differs from the in-memory size");
    }
  }
}

}  // namespace dispotify::storage
