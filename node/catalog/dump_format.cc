#include "node/catalog/dump_format.h"

#include <cerrno>
#include <utility>

#include "common/crc32c.h"
#include "common/encoding.h"

namespace dispotify::catalog {

namespace {

constexpr size_t kFlushBytes = 64 << 10;
constexpr size_t kHeaderBytes = 8 + 4 + 8;

void PutString(std::string* out, std::string_view s) {
  encoding::PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

void PutI64(std::string* out, int64_t v) {
  encoding::PutU64(out, static_cast<uint64_t>(v));
}

bool GetString(encoding::Decoder* d, std::string* out) {
  uint32_t n = 0;
  std::string_view bytes;
  if (!d->GetU32(&n) || !d->GetBytes(n, &bytes)) return false;
  out->assign(bytes);
  return true;
}

bool GetI64(encoding::Decoder* d, int64_t* v) {
  uint64_t u = 0;
  if (!d->GetU64(&u)) return false;
  *v = static_cast<int64_t>(u);
  return true;
}

}  // namespace

void EncodeDumpRecord(const DumpRecord& record, std::string* out) {
  out->clear();
  if (const auto* s = std::get_if<Song>(&record)) {
    PutString(out, s->file_id);
    PutString(out, s->title);
    PutString(out, s->artist);
    PutString(out, s->album);
    PutString(out, s->file_name);
    PutString(out, s->content_type);
    encoding::PutU32(out, s->track);
    encoding::PutU32(out, s->year);
    encoding::PutU64(out, s->duration_ms);
    encoding::PutU64(out, s->size_bytes);
    PutString(out, s->sha256);
    PutI64(out, s->created_at_ms);
    // Optional (see the header): a song without library tags is written as version 1 wrote it,
    // an album_artist equal to the artist included (a load derives it back from the artist).
    if (s->album_artist != s->artist || s->disc != 0 || !s->genre.empty() || s->compilation ||
        !s->cover.empty()) {
      PutString(out, s->album_artist);
      encoding::PutU32(out, s->disc);
      PutString(out, s->genre);
      encoding::PutU8(out, s->compilation ? 1 : 0);
    }
    if (!s->cover.empty()) PutString(out, s->cover);
  } else if (const auto* r = std::get_if<Replica>(&record)) {
    PutString(out, r->file_id);
    encoding::PutU64(out, r->node.value());
    encoding::PutU8(out, static_cast<uint8_t>(r->state));
    PutI64(out, r->updated_at_ms);
  } else if (const auto* l = std::get_if<Lock>(&record)) {
    PutString(out, l->name);
    PutString(out, l->owner);
    PutI64(out, l->expires_at_ms);
    encoding::PutU64(out, l->token);
  } else {
    const auto& kv = std::get<DumpSetting>(record);
    PutString(out, kv.key);
    PutString(out, kv.value);
  }
}

Result<DumpRecord> DecodeDumpRecord(DumpRecordKind kind, std::string_view payload) {
  encoding::Decoder d(payload);
  bool ok = false;
  DumpRecord record;
  switch (kind) {
    case DumpRecordKind::kSong: {
      Song s;
      ok = GetString(&d, &s.file_id) && GetString(&d, &s.title) && GetString(&d, &s.artist) &&
           GetString(&d, &s.album) && GetString(&d, &s.file_name) && GetString(&d, &s.content_type) &&
           d.GetU32(&s.track) && d.GetU32(&s.year) && d.GetU64(&s.duration_ms) && d.GetU64(&s.size_bytes) &&
           GetString(&d, &s.sha256) && GetI64(&d, &s.created_at_ms);
      if (ok && d.remaining() > 0) {
        uint8_t compilation = 0;
        ok = GetString(&d, &s.album_artist) && d.GetU32(&s.disc) && GetString(&d, &s.genre) &&
             d.GetU8(&compilation) && compilation <= 1;
        s.compilation = compilation == 1;
      }
      if (ok && d.remaining() > 0) ok = GetString(&d, &s.cover);
      record = std::move(s);
      break;
    }
    case DumpRecordKind::kReplica: {
      Replica r;
      uint64_t node = 0;
      uint8_t state = 0;
      ok = GetString(&d, &r.file_id) && d.GetU64(&node) && d.GetU8(&state) && GetI64(&d, &r.updated_at_ms);
      if (ok && state > static_cast<uint8_t>(ReplicaState::kMissing)) {
        return Status::Corruption("dump: unknown replica state " + std::to_string(state));
      }
      r.node = NodeId(node);
      r.state = static_cast<ReplicaState>(state);
      record = std::move(r);
      break;
    }
    case DumpRecordKind::kLock: {
      Lock l;
      ok = GetString(&d, &l.name) && GetString(&d, &l.owner) && GetI64(&d, &l.expires_at_ms) &&
           d.GetU64(&l.token);
      record = std::move(l);
      break;
    }
    case DumpRecordKind::kSetting: {
      DumpSetting kv;
      ok = GetString(&d, &kv.key) && GetString(&d, &kv.value);
      record = std::move(kv);
      break;
    }
    case DumpRecordKind::kEnd: break;
  }
  if (!ok)
    return Status::Corruption("dump: malformed record of kind " + std::to_string(static_cast<int>(kind)));
  if (d.remaining() != 0) return Status::Corruption("dump: trailing bytes in a record");
  return record;
}

// --- DumpWriter ----------------------------------------------------------------------------------

DumpWriter::DumpWriter(Sink sink) : sink_(std::move(sink)) {}

Status DumpWriter::Flush() {
  if (buffer_.empty()) return Status::Ok();
  Status st = sink_(buffer_);
  buffer_.clear();
  if (!st.ok()) {
    state_ = State::kFailed;
    error_ = st;
  }
  return st;
}

Status DumpWriter::Begin(LogIndex applied_index) {
  if (state_ == State::kFailed) return error_;
  if (state_ != State::kNew) return Status::FailedPrecondition("dump: Begin called twice");
  std::string header(kDumpMagic);
  encoding::PutU32(&header, kDumpVersion);
  encoding::PutU64(&header, applied_index.value());
  crc_ = crc32c::Extend(0, header.data(), header.size());
  buffer_ = std::move(header);
  state_ = State::kOpen;
  return Status::Ok();
}

Status DumpWriter::AddRecord(DumpRecordKind kind, std::string_view payload) {
  if (state_ == State::kFailed) return error_;
  if (state_ != State::kOpen) return Status::FailedPrecondition("dump: record outside Begin..Finish");
  if (payload.size() > kMaxDumpRecordBytes) return Status::InvalidArgument("dump: record too large");
  std::string head;
  encoding::PutU8(&head, static_cast<uint8_t>(kind));
  encoding::PutU32(&head, static_cast<uint32_t>(payload.size()));
  crc_ = crc32c::Extend(crc_, head.data(), head.size());
  crc_ = crc32c::Extend(crc_, payload.data(), payload.size());
  buffer_ += head;
  buffer_ += payload;
  if (kind != DumpRecordKind::kEnd) ++records_;
  if (buffer_.size() >= kFlushBytes) return Flush();
  return Status::Ok();
}

Status DumpWriter::Add(const Song& song) {
  EncodeDumpRecord(DumpRecord(song), &payload_);
  return AddRecord(DumpRecordKind::kSong, payload_);
}

Status DumpWriter::Add(const Replica& replica) {
  EncodeDumpRecord(DumpRecord(replica), &payload_);
  return AddRecord(DumpRecordKind::kReplica, payload_);
}

Status DumpWriter::Add(const Lock& lock) {
  EncodeDumpRecord(DumpRecord(lock), &payload_);
  return AddRecord(DumpRecordKind::kLock, payload_);
}

Status DumpWriter::AddSetting(std::string_view key, std::string_view value) {
  EncodeDumpRecord(DumpRecord(DumpSetting{std::string(key), std::string(value)}), &payload_);
  return AddRecord(DumpRecordKind::kSetting, payload_);
}

Status DumpWriter::Finish() {
  std::string count;
  encoding::PutU64(&count, records_);
  DISPOTIFY_RETURN_IF_ERROR(AddRecord(DumpRecordKind::kEnd, count));
  encoding::PutU32(&buffer_, crc_);
  state_ = State::kFinished;
  return Flush();
}

// --- DumpReader ----------------------------------------------------------------------------------

DumpReader::~DumpReader() {
  if (file_ != nullptr) std::fclose(file_);
}

Result<std::unique_ptr<DumpReader>> DumpReader::Open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rbe");
  if (f == nullptr) return Status::FromErrno(errno, "open dump " + path);
  std::unique_ptr<DumpReader> reader(new DumpReader(f, path));
  std::string header;
  DISPOTIFY_RETURN_IF_ERROR(reader->ReadExact(kHeaderBytes, &header));
  if (std::string_view(header).substr(0, kDumpMagic.size()) != kDumpMagic) {
    return Status::Corruption("dump " + path + ": bad magic");
  }
  const uint32_t version = encoding::GetU32(header.data() + 8);
  if (version != kDumpVersion) {
    return Status::Corruption("dump " + path + ": unsupported version " + std::to_string(version));
  }
  reader->applied_index_ = LogIndex(encoding::GetU64(header.data() + 12));
  return reader;
}

Status DumpReader::ReadExact(size_t n, std::string* out, bool checksum) {
  out->resize(n);
  const size_t got = n == 0 ? 0 : std::fread(out->data(), 1, n, file_);
  if (got != n) {
    failed_ = true;
    if (std::ferror(file_) != 0) return Status::IoError("dump " + path_ + ": read error");
    return Status::Corruption("dump " + path_ + ": truncated");
  }
  if (checksum) crc_ = crc32c::Extend(crc_, out->data(), n);
  return Status::Ok();
}

Result<std::optional<DumpRecord>> DumpReader::Next() {
  if (failed_) return Status::Corruption("dump " + path_ + ": read after an error");
  if (done_) return std::optional<DumpRecord>();
  std::string head;
  DISPOTIFY_RETURN_IF_ERROR(ReadExact(5, &head));
  const auto kind = static_cast<DumpRecordKind>(static_cast<uint8_t>(head[0]));
  const uint32_t length = encoding::GetU32(head.data() + 1);
  if (length > kMaxDumpRecordBytes) {
    failed_ = true;
    return Status::Corruption("dump " + path_ + ": record length " + std::to_string(length) + " too large");
  }
  std::string payload;
  switch (kind) {
    case DumpRecordKind::kSong:
    case DumpRecordKind::kReplica:
    case DumpRecordKind::kLock:
    case DumpRecordKind::kSetting: {
      DISPOTIFY_RETURN_IF_ERROR(ReadExact(length, &payload));
      Result<DumpRecord> record = DecodeDumpRecord(kind, payload);
      if (!record.ok()) {
        failed_ = true;
        return Status::Corruption("dump " + path_ + ": " + record.status().message());
      }
      ++records_;
      return std::optional<DumpRecord>(std::move(record).value());
    }
    case DumpRecordKind::kEnd: {
      if (length != 8) break;
      DISPOTIFY_RETURN_IF_ERROR(ReadExact(8, &payload));
      const uint32_t expected = crc_;
      std::string trailer;
      DISPOTIFY_RETURN_IF_ERROR(ReadExact(4, &trailer, /*checksum=*/false));
      if (encoding::GetU32(trailer.data()) != expected) {
        failed_ = true;
        return Status::Corruption("dump " + path_ + ": checksum mismatch");
      }
      if (encoding::GetU64(payload.data()) != records_) {
        failed_ = true;
        return Status::Corruption("dump " + path_ + ": record count mismatch");
      }
      if (std::fgetc(file_) != EOF) {
        failed_ = true;
        return Status::Corruption("dump " + path_ + ": bytes after the end");
      }
      done_ = true;
      return std::optional<DumpRecord>();
    }
  }
  failed_ = true;
  return Status::Corruption("dump " + path_ + ": unknown record kind " +
                            std::to_string(static_cast<int>(static_cast<uint8_t>(head[0]))));
}

}  // namespace dispotify::catalog
