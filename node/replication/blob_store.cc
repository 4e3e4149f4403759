// BlobStore on disk; the format and the protocols are documented in blob_store.h.

#include "node/replication/blob_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/crc32c.h"
#include "common/encoding.h"
#include "common/logging.h"
#include "node/catalog/types.h"

namespace dispotify::replication {
namespace {

using encoding::GetU32;
using encoding::GetU64;
using encoding::PutU32;
using encoding::PutU64;

constexpr char kMagic[8] = {'D', 'S', 'P', 'F', 'Y', 'B', 'L', 'B'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = BlobStore::kHeaderSize;
constexpr size_t kMaxIdSize = catalog::kMaxFileIdSize;  // the header stores ids in a fixed field
constexpr size_t kIdOffset = 64;
constexpr size_t kCrcOffset = 252;
constexpr std::string_view kTmpDirName = ".tmp";
constexpr size_t kMaxListLimit = 10000;

static_assert(kIdOffset + kMaxIdSize <= kCrcOffset && kCrcOffset + 4 == kHeaderSize);

struct Header {
  uint32_t flags = 0;
  uint64_t size = 0;
  Sha256::Digest digest{};
  std::string file_id;
};

std::string EncodeHeader(std::string_view file_id, uint64_t size, const Sha256::Digest& digest,
                         uint32_t flags) {
  std::string h(kMagic, sizeof(kMagic));
  PutU32(&h, kVersion);
  PutU32(&h, static_cast<uint32_t>(kHeaderSize));
  PutU32(&h, flags);
  PutU32(&h, static_cast<uint32_t>(file_id.size()));
  PutU64(&h, size);
  h.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  h += file_id;
  h.resize(kCrcOffset, '\0');
  PutU32(&h, crc32c::Value(h));
  return h;
}

// kCorruption for a damaged header; kFailedPrecondition for one this code cannot read.
Status DecodeHeader(std::string_view data, const std::string& path, Header* h) {
  if (data.size() != kHeaderSize) return Status::Corruption(path + ": shorter than a blob header");
  if (std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0) return Status::Corruption(path + ": bad magic");
  if (crc32c::Value(data.data(), kCrcOffset) != GetU32(data.data() + kCrcOffset))
    return Status::Corruption(path + ": header checksum mismatch");
  const char* p = data.data();
  const uint32_t version = GetU32(p + 8);
  const uint32_t header_size = GetU32(p + 12);
  const uint32_t flags = GetU32(p + 16);
  const uint32_t id_size = GetU32(p + 20);
  if (version != kVersion || header_size != kHeaderSize || (flags & ~kBlobFlagSealed) != 0) {
    return Status::FailedPrecondition(path + ": unsupported blob format (version " + std::to_string(version) +
                                      ", flags " + std::to_string(flags) + ")");
  }
  if (id_size == 0 || id_size > kMaxIdSize) return Status::Corruption(path + ": bad file id size");
  h->flags = flags;
  h->size = GetU64(p + 24);
  std::memcpy(h->digest.data(), p + 32, h->digest.size());
  h->file_id.assign(p + kIdOffset, id_size);
  return Status::Ok();
}

// Reads and checks the header of an open blob file, and that the file has the recorded length.
Status ReadHeader(const File& file, Header* h) {
  std::string buf(kHeaderSize, '\0');
  auto n = file.PRead(0, buf.size(), buf.data());
  if (!n.ok()) return n.status();
  buf.resize(*n);
  DISPOTIFY_RETURN_IF_ERROR(DecodeHeader(buf, file.path(), h));
  auto length = file.Size();
  if (!length.ok()) return length.status();
  if ((h->flags & kBlobFlagSealed) != 0) {
    // The exact length depends on the sealed header's chunk size: SealedReader::Open checks it.
    if (*length < kHeaderSize + kSealHeaderSize)
      return Status::Corruption(file.path() + ": sealed blob cut short");
    return Status::Ok();
  }
  if (*length != kHeaderSize + h->size) {
    return Status::Corruption(file.path() + ": length " + std::to_string(*length) + ", header says " +
                              std::to_string(kHeaderSize + h->size));
  }
  return Status::Ok();
}

std::string ShardName(std::string_view file_id) {
  const Sha256::Digest d = Sha256Digest(file_id);
  return ToHex(d.data(), 1);
}

bool IsShardName(std::string_view name) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  return name.size() == 2 && hex(name[0]) && hex(name[1]);
}

Status InvalidId(std::string_view file_id) {
  // The id may hold anything (NUL, control bytes): say what is wrong, not the id itself.
  return Status::InvalidArgument("invalid file id (" + std::to_string(file_id.size()) +
                                 " bytes): 1..128 characters of [A-Za-z0-9._-], not . or ..");
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

// --- BlobWriter ---------------------------------------------------------------------------------

BlobWriter::BlobWriter(BlobStore* store, std::string file_id, std::string tmp_path,
                       std::unique_ptr<File> file, BlobWriteOptions options)
    : store_(store),
      file_id_(std::move(file_id)),
      tmp_path_(std::move(tmp_path)),
      file_(std::move(file)),
      options_(std::move(options)),
      buffer_(std::make_unique<char[]>(kBufferSize)),
      next_space_check_(BlobStore::kSpaceCheckBytes) {}

BlobWriter::~BlobWriter() {
  Abort();
}

Status BlobWriter::Append(std::string_view data) {
  if (state_ != State::kOpen) {
    return state_ == State::kFailed ? error_ : Status::FailedPrecondition("blob " + file_id_ + " committed");
  }
  if (data.empty()) return Status::Ok();
  if (options_.expected_size && written_ + data.size() > *options_.expected_size) {
    return Fail(Status::Corruption("blob " + file_id_ + ": more than the expected " +
                                   std::to_string(*options_.expected_size) + " bytes"));
  }
  hasher_.Update(data);
  written_ += data.size();
  if (written_ >= next_space_check_) {
    // Other writers (and the metadata store) share the disk: Create's check is not enough.
    next_space_check_ = written_ + BlobStore::kSpaceCheckBytes;
    const uint64_t still_expected = options_.expected_size ? *options_.expected_size - written_ : 0;
    Status s = store_->CheckSpace(file_id_, still_expected);
    if (!s.ok()) return Fail(std::move(s));
  }
  if (seal_) {
    // The SealWriter hands whole sealed chunks to Store (its sink).
    Status s = seal_->Write(data);
    return s.ok() || state_ == State::kFailed ? s : Fail(std::move(s));
  }
  return Store(data);
}

Status BlobWriter::Store(std::string_view data) {
  if (state_ != State::kOpen)
    return state_ == State::kFailed ? error_ : Status::FailedPrecondition("committed");
  if (buffered_ + data.size() > kBufferSize) {
    DISPOTIFY_RETURN_IF_ERROR(Flush());
    if (data.size() >= kBufferSize) {  // large pieces go straight from the caller's memory
      Status s = file_->Append(data);
      return s.ok() ? s : Fail(std::move(s));
    }
  }
  std::memcpy(buffer_.get() + buffered_, data.data(), data.size());
  buffered_ += data.size();
  peak_buffered_ = std::max(peak_buffered_, buffered_);
  return buffered_ == kBufferSize ? Flush() : Status::Ok();
}

Status BlobWriter::Flush() {
  if (buffered_ == 0) return Status::Ok();
  Status s = file_->Append(std::string_view(buffer_.get(), buffered_));
  buffered_ = 0;
  return s.ok() ? s : Fail(std::move(s));
}

Status BlobWriter::Commit() {
  return CommitChecked(std::nullopt, std::nullopt);
}

Status BlobWriter::Commit(uint64_t size, std::string_view sha256) {
  if (state_ == State::kOpen && !IsSha256Hex(sha256)) {
    return Fail(Status::InvalidArgument("blob " + file_id_ + ": SHA-256 to commit is not 64 hex digits"));
  }
  return CommitChecked(size, sha256);
}

Status BlobWriter::CommitChecked(std::optional<uint64_t> size, std::optional<std::string_view> sha256) {
  if (state_ != State::kOpen) {
    return state_ == State::kFailed ? error_ : Status::FailedPrecondition("blob " + file_id_ + " committed");
  }
  std::string seal_header;
  if (seal_) {
    auto header = seal_->Finish();  // seals the last chunk into the buffer
    if (!header.ok()) return state_ == State::kFailed ? error_ : Fail(header.status());
    seal_header = std::move(header).value();
  }
  DISPOTIFY_RETURN_IF_ERROR(Flush());
  for (const std::optional<uint64_t>& want : {options_.expected_size, size}) {
    if (want && written_ != *want) {
      return Fail(Status::Corruption("blob " + file_id_ + ": " + std::to_string(written_) +
                                     " bytes, expected " + std::to_string(*want)));
    }
  }
  const Sha256::Digest digest = hasher_.Final();
  std::string hex = ToHex(digest);
  std::optional<std::string_view> expected_sha256;
  if (options_.expected_sha256) expected_sha256 = *options_.expected_sha256;
  for (const std::optional<std::string_view>& want : {expected_sha256, sha256}) {
    if (want && ToLower(*want) != hex) {
      return Fail(
          Status::Corruption("blob " + file_id_ + ": SHA-256 " + hex + ", expected " + ToLower(*want)));
    }
  }
  Status s = Status::Ok();
  if (seal_) s = file_->PWrite(kHeaderSize, seal_header);
  if (s.ok()) s = file_->PWrite(0, EncodeHeader(file_id_, written_, digest, seal_ ? kBlobFlagSealed : 0));
  if (s.ok()) s = file_->Sync();
  if (!s.ok()) return Fail(std::move(s));
  file_.reset();
  if (options_.fence_token != 0 && store_->fence_) {
    std::lock_guard fence_lock(store_->FenceStripe(file_id_));
    s = store_->fence_(options_.fence_name, options_.fence_token);
    if (s.ok()) s = store_->Install(tmp_path_, file_id_, written_, digest, options_.overwrite);
  } else {
    s = store_->Install(tmp_path_, file_id_, written_, digest, options_.overwrite);
  }
  if (!s.ok()) return Fail(std::move(s));
  sha256_ = std::move(hex);
  state_ = State::kCommitted;
  return Status::Ok();
}

void BlobWriter::Abort() {
  if (state_ != State::kOpen) return;
  (void)Fail(Status::Aborted("blob " + file_id_ + ": write aborted"));
}

Status BlobWriter::Fail(Status s) {
  state_ = State::kFailed;
  error_ = s;
  file_.reset();
  buffered_ = 0;
  store_->RemoveTemp(tmp_path_);
  return s;
}

// --- BlobReader ---------------------------------------------------------------------------------

BlobReader::BlobReader(std::unique_ptr<File> file, std::string file_id, uint64_t size, Sha256::Digest digest,
                       uint64_t data_offset)
    : file_(std::move(file)),
      file_id_(std::move(file_id)),
      size_(size),
      digest_(digest),
      sha256_hex_(ToHex(digest)),
      data_offset_(data_offset) {}

Status BlobReader::ReadContent(uint64_t offset, size_t n, char* buf) const {
  if (sealed_) {
    std::lock_guard lock(sealed_mu_);
    auto got = sealed_->ReadPlain(offset, buf, n);
    if (!got.ok())
      return Status::FromCode(got.status().code(), "blob " + file_id_ + ": " + got.status().message());
    if (*got != n) return Status::Corruption(file_->path() + ": sealed content shorter than its header says");
    return Status::Ok();
  }
  auto got = file_->PRead(data_offset_ + offset, n, buf);
  if (!got.ok()) return got.status();
  if (*got != n) return Status::Corruption(file_->path() + ": shorter than its header says");
  return Status::Ok();
}

Result<std::string> BlobReader::ReadAt(uint64_t offset, size_t max) const {
  if (offset >= size_) return std::string();
  const auto n = static_cast<size_t>(std::min<uint64_t>(max, size_ - offset));
  std::string out(n, '\0');
  DISPOTIFY_RETURN_IF_ERROR(ReadContent(offset, n, out.data()));
  return out;
}

Result<size_t> BlobReader::ReadAt(uint64_t offset, char* buf, size_t max) const {
  if (offset >= size_) return size_t{0};
  const auto n = static_cast<size_t>(std::min<uint64_t>(max, size_ - offset));
  DISPOTIFY_RETURN_IF_ERROR(ReadContent(offset, n, buf));
  return n;
}

Result<size_t> BlobReader::ReadNext(char* buf, size_t max) {
  if (!error_.ok()) return error_;
  if (verified_) return size_t{0};
  if (max == 0) return Status::InvalidArgument("ReadNext: max is 0");
  const auto n = static_cast<size_t>(std::min<uint64_t>(max, size_ - next_));
  if (Status s = ReadContent(next_, n, buf); !s.ok()) return error_ = s;
  if (sealed_ && size_ == 0) {
    // An empty sealed blob's only chunk holds no byte for ReadPlain to fetch: authenticate it.
    std::lock_guard lock(sealed_mu_);
    if (Status s = sealed_->Verify(); !s.ok()) return error_ = s;
  }
  hasher_.Update(std::string_view(buf, n));
  next_ += n;
  if (next_ == size_) {
    if (hasher_.Final() != digest_) {
      return error_ = Status::Corruption("blob " + file_id_ + ": content does not match its SHA-256 " +
                                         sha256_hex_);
    }
    verified_ = true;
  }
  return n;
}

Status BlobReader::ReadAll(const std::function<Status(std::string_view)>& sink) {
  const auto chunk = static_cast<size_t>(std::min<uint64_t>(kChunkSize, std::max<uint64_t>(size_, 1)));
  std::unique_ptr<char[]> buf = std::make_unique<char[]>(chunk);
  while (true) {
    auto n = ReadNext(buf.get(), chunk);
    if (!n.ok()) return n.status();
    if (*n == 0) return Status::Ok();
    DISPOTIFY_RETURN_IF_ERROR(sink(std::string_view(buf.get(), *n)));
  }
}

// --- BlobStore ----------------------------------------------------------------------------------

BlobStore::BlobStore(FileSystem& fs, std::string root, BlobStoreOptions options)
    : fs_(fs),
      root_(std::move(root)),
      options_(options),
      blobs_dir_(JoinPath(root_, "blobs")),
      tmp_dir_(JoinPath(blobs_dir_, kTmpDirName)) {}

std::string BlobStore::ShardDir(std::string_view file_id) const {
  return JoinPath(blobs_dir_, ShardName(file_id));
}

std::string BlobStore::BlobPath(std::string_view file_id) const {
  return JoinPath(ShardDir(file_id), file_id);
}

Status BlobStore::Init() {
  DISPOTIFY_RETURN_IF_ERROR(fs_.CreateDirs(tmp_dir_));
  DISPOTIFY_RETURN_IF_ERROR(fs_.SyncDir(blobs_dir_));
  DISPOTIFY_RETURN_IF_ERROR(fs_.SyncDir(root_));

  auto temps = fs_.ListDir(tmp_dir_);
  if (!temps.ok()) return temps.status();
  for (const std::string& name : *temps) DISPOTIFY_RETURN_IF_ERROR(fs_.Remove(JoinPath(tmp_dir_, name)));

  auto shards = fs_.ListDir(blobs_dir_);
  if (!shards.ok()) return shards.status();
  for (const std::string& shard : *shards) {
    if (shard == kTmpDirName) continue;
    const std::string dir = JoinPath(blobs_dir_, shard);
    if (!IsShardName(shard) || !fs_.IsDirectory(dir)) {
      DLOG_WARN << "blob store: ignoring unexpected entry " << dir;
      continue;
    }
    auto names = fs_.ListDir(dir);
    if (!names.ok()) return names.status();
    for (const std::string& name : *names) {
      const std::string path = JoinPath(dir, name);
      if (!catalog::IsValidFileId(name) || ShardName(name) != shard) {
        DLOG_WARN << "blob store: ignoring unexpected entry " << path;
        continue;
      }
      auto size = fs_.FileSize(path);
      if (!size.ok()) return size.status();
      ++files_;
      // A stat per file, no header read: a sealed blob counts its chunk tags and sealed header too
      // (about 0.03% more than its content) until the store is reopened after it is deleted.
      bytes_ += *size >= kHeaderSize ? *size - kHeaderSize : 0;  // a torn one shows up on Open
    }
  }
  DLOG_INFO << "blob store " << root_ << ": " << files_ << " blobs, " << bytes_ << " bytes; removed "
            << temps->size() << " temp files";
  return Status::Ok();
}

uint64_t BlobStore::ContentBytesOnDisk(const std::string& path) {
  auto size = fs_.FileSize(path);
  return size.ok() && *size >= kHeaderSize ? *size - kHeaderSize : 0;
}

void BlobStore::RemoveTemp(const std::string& tmp_path) {
  Status s = fs_.Remove(tmp_path);
  if (!s.ok() && s.code() != StatusCode::kNotFound) {
    DLOG_WARN << "blob store: could not delete temp file (deleted on next open): " << s.ToString();
  }
}

Result<std::unique_ptr<BlobWriter>> BlobStore::Create(std::string_view file_id, BlobWriteOptions options) {
  if (!catalog::IsValidFileId(file_id)) return InvalidId(file_id);
  if (options.expected_sha256 && !IsSha256Hex(*options.expected_sha256))
    return Status::InvalidArgument("expected SHA-256 is not 64 hex digits");
  DISPOTIFY_RETURN_IF_ERROR(CheckSpace(file_id, options.expected_size.value_or(0)));
  const std::string tmp_path =
      JoinPath(tmp_dir_, std::to_string(next_temp_.fetch_add(1, std::memory_order_relaxed)) + "-" +
                             std::string(file_id) + ".tmp");
  auto file = fs_.Open(tmp_path, OpenMode::kCreateTruncate);
  if (!file.ok()) return file.status();
  // A zero header: no valid magic until Commit writes the real one.
  Status s = (*file)->Append(std::string(kHeaderSize, '\0'));
  if (!s.ok()) {
    file->reset();
    RemoveTemp(tmp_path);
    return s;
  }
  std::unique_ptr<BlobWriter> writer(
      new BlobWriter(this, std::string(file_id), tmp_path, std::move(file).value(), std::move(options)));
  if (options_.keyring) {
    BlobWriter* w = writer.get();
    auto seal = SealWriter::Create(
        *options_.keyring, [w](std::string_view sealed) { return w->Store(sealed); }, options_.seal);
    if (!seal.ok()) return writer->Fail(seal.status());
    writer->seal_ = std::move(seal).value();
  }
  return writer;
}

Status BlobStore::Install(const std::string& tmp_path, const std::string& file_id, uint64_t size,
                          const Sha256::Digest& digest, bool overwrite) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string shard_dir = ShardDir(file_id);
  const std::string path = JoinPath(shard_dir, file_id);
  bool replacing = false;
  uint64_t replaced_bytes = 0;
  if (fs_.Exists(path)) {
    Header old;
    Status hs;
    {
      auto file = fs_.Open(path, OpenMode::kRead);
      hs = file.ok() ? ReadHeader(**file, &old) : file.status();
    }
    if (hs.ok() && old.file_id != file_id) hs = Status::Corruption(path + ": header names " + old.file_id);
    if (hs.ok() && old.digest != digest && !overwrite) {
      return Status::AlreadyExists("blob " + file_id + " exists with SHA-256 " + ToHex(old.digest));
    }
    if (!hs.ok()) {
      if (hs.code() != StatusCode::kCorruption && !overwrite) return hs;
      DLOG_WARN << "blob store: replacing unreadable blob: " << hs.ToString();
    }
    replacing = true;
    replaced_bytes = hs.ok() ? old.size : ContentBytesOnDisk(path);
  } else if (!fs_.IsDirectory(shard_dir)) {
    DISPOTIFY_RETURN_IF_ERROR(fs_.CreateDirs(shard_dir));
    DISPOTIFY_RETURN_IF_ERROR(fs_.SyncDir(blobs_dir_));
  }
  DISPOTIFY_RETURN_IF_ERROR(fs_.Rename(tmp_path, path));
  if (replacing) {
    bytes_ -= std::min(bytes_, replaced_bytes);
  } else {
    ++files_;
  }
  bytes_ += size;
  return fs_.SyncDir(shard_dir);
}

Result<std::unique_ptr<BlobReader>> BlobStore::Open(std::string_view file_id) {
  if (!catalog::IsValidFileId(file_id)) return InvalidId(file_id);
  auto file = fs_.Open(BlobPath(file_id), OpenMode::kRead);
  if (!file.ok()) return file.status();
  Header h;
  DISPOTIFY_RETURN_IF_ERROR(ReadHeader(**file, &h));
  if (h.file_id != file_id) return Status::Corruption((*file)->path() + ": header names " + h.file_id);
  std::unique_ptr<BlobReader> reader(
      new BlobReader(std::move(file).value(), std::string(file_id), h.size, h.digest, kHeaderSize));
  if ((h.flags & kBlobFlagSealed) != 0) DISPOTIFY_RETURN_IF_ERROR(OpenSealed(reader.get()));
  return reader;
}

Status BlobStore::OpenSealed(BlobReader* reader) const {
  const std::string& path = reader->file_->path();
  if (!options_.keyring) {
    // Not kCorruption: the copy is fine, this node cannot read it (and must not report it bad).
    return Status::FailedPrecondition(path + ": sealed blob but no keyring (set encryption_keyring_file)");
  }
  auto length = reader->file_->Size();
  if (!length.ok()) return length.status();
  const File* file = reader->file_.get();
  SealedSource source;
  source.pread = [file](uint64_t offset, size_t n, char* buf) {
    return file->PRead(kHeaderSize + offset, n, buf);
  };
  source.size = *length - kHeaderSize;
  auto sealed = SealedReader::Open(std::move(source), *options_.keyring);
  if (!sealed.ok()) {
    // kNotFound would read as "no such blob" to every caller.
    if (sealed.status().code() == StatusCode::kNotFound)
      return Status::FailedPrecondition(path + ": " + sealed.status().message());
    return Status::FromCode(sealed.status().code(), path + ": " + sealed.status().message());
  }
  if ((*sealed)->plain_size() != reader->size_) {
    return Status::Corruption(path + ": sealed content of " + std::to_string((*sealed)->plain_size()) +
                              " bytes, header says " + std::to_string(reader->size_));
  }
  reader->key_id_ = (*sealed)->key_id();
  reader->sealed_ = std::move(sealed).value();
  return Status::Ok();
}

bool BlobStore::NeedsReseal(const BlobReader& reader) const {
  return options_.keyring && (!reader.sealed() || reader.key_id() != options_.keyring->current_id());
}

Result<bool> BlobStore::Reseal(std::string_view file_id) {
  auto reader = Open(file_id);
  if (!reader.ok()) return reader.status();
  if (!NeedsReseal(**reader)) return false;
  BlobReader& r = **reader;
  const std::string tmp_path =
      JoinPath(tmp_dir_, std::to_string(next_temp_.fetch_add(1, std::memory_order_relaxed)) + "-" +
                             std::string(file_id) + ".reseal.tmp");
  auto file = fs_.Open(tmp_path, OpenMode::kCreateTruncate);
  if (!file.ok()) return file.status();
  File* out = file->get();
  Status s = out->Append(std::string(kHeaderSize, '\0'));
  std::unique_ptr<SealWriter> seal;
  if (s.ok()) {
    auto created = SealWriter::Create(
        *options_.keyring, [out](std::string_view sealed) { return out->Append(sealed); }, options_.seal);
    if (created.ok()) {
      seal = std::move(created).value();
    } else {
      s = created.status();
    }
  }
  // ReadAll authenticates every old chunk and fails with kCorruption, before its last piece, when
  // the plaintext does not match the header's SHA-256: nothing unverified is ever sealed.
  if (s.ok()) s = r.ReadAll([&](std::string_view plain) { return seal->Write(plain); });
  if (s.ok()) {
    auto header = seal->Finish();
    s = header.ok() ? out->PWrite(kHeaderSize, *header) : header.status();
  }
  if (s.ok()) s = out->PWrite(0, EncodeHeader(r.file_id(), r.size(), r.digest_, kBlobFlagSealed));
  if (s.ok()) s = out->Sync();
  file->reset();
  if (!s.ok()) {
    RemoveTemp(tmp_path);
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  // Under mu_ no Install or Delete runs: the blob is replaced only if it still holds this content.
  const std::string shard_dir = ShardDir(file_id);
  const std::string path = JoinPath(shard_dir, file_id);
  Header now;
  Status hs;
  {
    auto current = fs_.Open(path, OpenMode::kRead);
    hs = current.ok() ? ReadHeader(**current, &now) : current.status();
  }
  if (!hs.ok() || now.digest != r.digest_ || now.file_id != r.file_id()) {
    RemoveTemp(tmp_path);
    return false;
  }
  DISPOTIFY_RETURN_IF_ERROR(fs_.Rename(tmp_path, path));
  ++reseals_;
  DISPOTIFY_RETURN_IF_ERROR(fs_.SyncDir(shard_dir));
  return true;
}

void BlobStore::RecordSealCensus(uint64_t sealed_files, uint64_t reseal_pending_files) {
  std::lock_guard<std::mutex> lock(mu_);
  sealed_files_ = sealed_files;
  reseal_pending_files_ = reseal_pending_files;
}

Status BlobStore::VerifyChecksum(std::string_view file_id) {
  auto reader = Open(file_id);
  if (!reader.ok()) return reader.status();
  return (*reader)->ReadAll([](std::string_view) { return Status::Ok(); });
}

Result<std::unique_ptr<BlobReader>> BlobStore::OpenVerified(std::string_view file_id) {
  auto reader = Open(file_id);
  if (!reader.ok()) return reader.status();
  auto stamp_of = [](const std::string& path) -> std::optional<FileStamp> {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return FileStamp{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                     static_cast<uint64_t>(st.st_size), st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                     st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
  };
  const std::string path = BlobPath(file_id);
  const auto before = stamp_of(path);
  if (before) {
    std::lock_guard lock(verified_mu_);
    auto it = verified_.find(file_id);
    if (it != verified_.end() && it->second == *before) return reader;
  }
  DISPOTIFY_RETURN_IF_ERROR(VerifyChecksum(file_id));
  // Remember it only if nothing changed while it was being hashed.
  if (const auto after = stamp_of(path); before && after && *before == *after) {
    std::lock_guard lock(verified_mu_);
    if (verified_.size() >= kVerifiedEntries) verified_.erase(verified_.begin());
    verified_[std::string(file_id)] = *after;
  }
  return reader;
}

Status BlobStore::Delete(std::string_view file_id) {
  if (!catalog::IsValidFileId(file_id)) return InvalidId(file_id);
  std::lock_guard<std::mutex> lock(mu_);
  const std::string shard_dir = ShardDir(file_id);
  const std::string path = JoinPath(shard_dir, file_id);
  if (!fs_.Exists(path)) return Status::NotFound(path + ": no such blob");
  uint64_t content = 0;
  {
    Header h;
    auto file = fs_.Open(path, OpenMode::kRead);
    if (!file.ok()) return file.status();
    content = ReadHeader(**file, &h).ok() ? h.size : ContentBytesOnDisk(path);
  }
  DISPOTIFY_RETURN_IF_ERROR(fs_.Remove(path));
  files_ -= std::min<uint64_t>(files_, 1);
  bytes_ -= std::min(bytes_, content);
  return fs_.SyncDir(shard_dir);
}

bool BlobStore::Exists(std::string_view file_id) {
  return catalog::IsValidFileId(file_id) && fs_.Exists(BlobPath(file_id));
}

Result<BlobPage> BlobStore::List(std::string_view after, size_t limit) {
  if (limit == 0 || limit > kMaxListLimit) return Status::InvalidArgument("List: limit must be 1..10000");
  if (!after.empty() && !catalog::IsValidFileId(after)) return InvalidId(after);
  const std::string first_shard = after.empty() ? std::string() : ShardName(after);
  auto shards = fs_.ListDir(blobs_dir_);
  if (!shards.ok()) return shards.status();
  BlobPage page;
  for (const std::string& shard : *shards) {  // sorted
    if (!IsShardName(shard) || shard < first_shard) continue;
    auto names = fs_.ListDir(JoinPath(blobs_dir_, shard));
    if (!names.ok()) return names.status();
    for (std::string& name : *names) {  // sorted
      if (shard == first_shard && name <= after) continue;
      if (!catalog::IsValidFileId(name) || ShardName(name) != shard) continue;
      if (page.file_ids.size() == limit) {
        page.next_after = page.file_ids.back();
        return page;
      }
      page.file_ids.push_back(std::move(name));
    }
  }
  return page;
}

Result<BlobStoreStats> BlobStore::Stats() {
  BlobStoreStats stats;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats.files = files_;
    stats.bytes = bytes_;
    stats.sealed_files = sealed_files_;
    stats.reseal_pending_files = reseal_pending_files_;
    stats.reseals = reseals_;
  }
  auto space = fs_.Space(root_);
  if (!space.ok()) return space.status();
  stats.free_bytes = space->free_bytes;
  stats.total_bytes = space->total_bytes;
  stats.reserved_bytes = options_.reserved_bytes;
  return stats;
}

Status BlobStore::CheckSpace(std::string_view file_id, uint64_t more_bytes) {
  auto space = fs_.Space(root_);
  if (!space.ok()) return space.status();
  // A write that lands exactly on the reserve is refused too: "nothing left above the reserve".
  if (space->free_bytes <= options_.reserved_bytes ||
      space->free_bytes - options_.reserved_bytes < more_bytes) {
    return Status::NoSpace("blob " + std::string(file_id) + ": " + std::to_string(space->free_bytes) +
                           " bytes free on the data disk, " + std::to_string(more_bytes) +
                           " more needed and " + std::to_string(options_.reserved_bytes) +
                           " kept in reserve");
  }
  return Status::Ok();
}

Result<std::unique_ptr<BlobStore>> OpenBlobStore(FileSystem& fs, const std::string& root,
                                                 BlobStoreOptions options) {
  std::unique_ptr<BlobStore> store(new BlobStore(fs, root, options));
  DISPOTIFY_RETURN_IF_ERROR(store->Init());
  return store;
}

}  // namespace dispotify::replication
