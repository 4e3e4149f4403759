#include "node/replication/sealed_blob.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "common/crc32c.h"
#include "common/encoding.h"
#include "common/sha256.h"

namespace dispotify::replication {
namespace {

constexpr size_t kSaltSize = 16;
constexpr size_t kNoncePrefixSize = 8;
constexpr size_t kNonceSize = 12;
// Header fields (see the layout in the header file).
constexpr size_t kOffVersion = 8;
constexpr size_t kOffHeaderSize = 12;
constexpr size_t kOffChunkSize = 16;
constexpr size_t kOffKeyIdSize = 20;
constexpr size_t kOffKeyId = 24;
constexpr size_t kOffSalt = 56;
constexpr size_t kOffNoncePrefix = 72;
constexpr size_t kOffPlainSize = 80;  // also the end of the bytes the AAD covers
constexpr size_t kOffReserved = 88;
constexpr size_t kOffCrc = 92;
constexpr size_t kAadSize = kOffPlainSize + 4 + 1;
constexpr uint64_t kMaxChunks = uint64_t{1} << 32;
constexpr std::string_view kHkdfInfo = "dispotify sealed blob v1";

void Cleanse(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
}

// Both zero-length-safe and EINTR-safe; short reads only at the end of the file.
Result<size_t> PReadFull(int fd, uint64_t offset, void* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "pread sealed blob");
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

Status PWriteFull(int fd, uint64_t offset, std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t r = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "pwrite sealed blob");
    }
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

// The per-file key: HKDF-SHA256 of the keyring key with the file's salt (see the header file).
Result<SealKey> DeriveFileKey(const SealKey& master, const uint8_t* salt) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return Status::FailedPrecondition("OpenSSL has no HKDF");
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return Status::FailedPrecondition("EVP_KDF_CTX_new failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(master.data()),
                                        kSealKeySize),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt), kSaltSize),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(kHkdfInfo.data()),
                                        kHkdfInfo.size()),
      OSSL_PARAM_construct_end(),
  };
  std::array<uint8_t, kSealKeySize> out{};
  int ok = EVP_KDF_derive(ctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  SealKey key(out);
  OPENSSL_cleanse(out.data(), out.size());
  if (ok != 1) return Status::FailedPrecondition("HKDF derivation failed");
  return key;
}

// An AES-256-GCM context keyed once; each chunk only sets its nonce.
class GcmContext {
 public:
  GcmContext() : ctx_(EVP_CIPHER_CTX_new()) {}
  ~GcmContext() { EVP_CIPHER_CTX_free(ctx_); }  // also wipes the expanded key
  GcmContext(const GcmContext&) = delete;
  GcmContext& operator=(const GcmContext&) = delete;

  Status Init(const SealKey& key, bool encrypt) {
    if (ctx_ == nullptr) return Status::FailedPrecondition("EVP_CIPHER_CTX_new failed");
    if (EVP_CipherInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, key.data(), nullptr, encrypt ? 1 : 0) != 1) {
      return Status::FailedPrecondition("AES-256-GCM initialisation failed");
    }
    return Status::Ok();
  }

  // Encrypts in[0, n) to out[0, n) and writes the tag to tag[0, 16).
  bool Seal(const uint8_t* nonce, const uint8_t* aad, size_t aad_size, const uint8_t* in, size_t n,
            uint8_t* out, uint8_t* tag) {
    int len = 0;
    if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, 1) != 1) return false;
    if (EVP_CipherUpdate(ctx_, nullptr, &len, aad, static_cast<int>(aad_size)) != 1) return false;
    if (n > 0 && EVP_CipherUpdate(ctx_, out, &len, in, static_cast<int>(n)) != 1) return false;
    if (EVP_CipherFinal_ex(ctx_, out + n, &len) != 1) return false;
    return EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, kSealTagSize, tag) == 1;
  }

  // Decrypts in[0, n) to out[0, n); false when the tag does not authenticate them.
  bool Open(const uint8_t* nonce, const uint8_t* aad, size_t aad_size, const uint8_t* in, size_t n,
            uint8_t* out, const uint8_t* tag) {
    int len = 0;
    if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, 0) != 1) return false;
    if (EVP_CipherUpdate(ctx_, nullptr, &len, aad, static_cast<int>(aad_size)) != 1) return false;
    if (n > 0 && EVP_CipherUpdate(ctx_, out, &len, in, static_cast<int>(n)) != 1) return false;
    if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, kSealTagSize, const_cast<uint8_t*>(tag)) != 1)
      return false;
    return EVP_CipherFinal_ex(ctx_, out + n, &len) == 1;
  }

 private:
  EVP_CIPHER_CTX* ctx_;
};

std::string BuildHeader(uint32_t chunk_size, std::string_view key_id, const uint8_t* salt,
                        const uint8_t* prefix, uint64_t plain_size) {
  std::string h;
  h.reserve(kSealHeaderSize);
  h.append(kSealMagic);
  encoding::PutU32(&h, kSealVersion);
  encoding::PutU32(&h, kSealHeaderSize);
  encoding::PutU32(&h, chunk_size);
  encoding::PutU32(&h, static_cast<uint32_t>(key_id.size()));
  h.append(key_id);
  h.append(kMaxKeyIdSize - key_id.size(), '\0');
  h.append(reinterpret_cast<const char*>(salt), kSaltSize);
  h.append(reinterpret_cast<const char*>(prefix), kNoncePrefixSize);
  encoding::PutU64(&h, plain_size);
  encoding::PutU32(&h, 0);
  encoding::PutU32(&h, crc32c::Value(h.data(), h.size()));
  return h;
}

// The per-chunk nonce and AAD (see the header file).
struct ChunkParams {
  uint8_t nonce[kNonceSize];
  uint8_t aad[kAadSize];

  ChunkParams(const uint8_t* header_prefix, uint32_t index, bool last) {
    std::memcpy(nonce, header_prefix + kOffNoncePrefix, kNoncePrefixSize);
    std::memcpy(aad, header_prefix, kOffPlainSize);
    for (size_t i = 0; i < 4; ++i) {
      auto b = static_cast<uint8_t>((index >> (8 * i)) & 0xFF);
      nonce[kNoncePrefixSize + i] = b;
      aad[kOffPlainSize + i] = b;
    }
    aad[kOffPlainSize + 4] = last ? 1 : 0;
  }
};

bool IsKeyIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

// --- SealKey, Keyring ------------------------------------------------------------------------------

SealKey::~SealKey() {
  OPENSSL_cleanse(bytes_.data(), bytes_.size());
}

SealKey& SealKey::operator=(const SealKey& other) {
  if (this != &other) bytes_ = other.bytes_;
  return *this;
}

bool IsValidKeyId(std::string_view id) {
  if (id.empty() || id.size() > kMaxKeyIdSize) return false;
  for (char c : id) {
    if (!IsKeyIdChar(c)) return false;
  }
  return true;
}

Status Keyring::Add(std::string_view id, const SealKey& key) {
  if (!IsValidKeyId(id)) {
    return Status::InvalidArgument("bad key id '" + std::string(id) + "': want 1..32 of [A-Za-z0-9._-]");
  }
  if (keys_.count(id) != 0) return Status::InvalidArgument("duplicate key id '" + std::string(id) + "'");
  keys_.emplace(std::string(id), key);
  current_id_ = std::string(id);
  return Status::Ok();
}

const SealKey* Keyring::Find(std::string_view id) const {
  auto it = keys_.find(id);
  return it == keys_.end() ? nullptr : &it->second;
}

Result<Keyring> Keyring::Parse(std::string_view text) {
  Keyring ring;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t eol = text.find('\n');
    std::string_view line = Trim(text.substr(0, eol));
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = "keyring line " + std::to_string(line_no) + ": ";
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Status::InvalidArgument(where + "want <id>:<base64 key>");
    std::string_view id = Trim(line.substr(0, colon));
    std::string_view b64 = Trim(line.substr(colon + 1));
    if (!IsValidKeyId(id)) {
      return Status::InvalidArgument(where + "bad key id '" + std::string(id) +
                                     "': want 1..32 of [A-Za-z0-9._-]");
    }
    if (ring.Find(id) != nullptr)
      return Status::InvalidArgument(where + "duplicate key id '" + std::string(id) + "'");
    // EVP_DecodeBlock counts '=' padding as zero bytes and accepts any multiple of 4 characters.
    size_t pad = 0;
    while (pad < b64.size() && pad < 2 && b64[b64.size() - 1 - pad] == '=') ++pad;
    std::string decoded(b64.size() / 4 * 3 + 3, '\0');
    int n = b64.size() % 4 != 0 ? -1
                                : EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                                  reinterpret_cast<const unsigned char*>(b64.data()),
                                                  static_cast<int>(b64.size()));
    if (n < 0 || static_cast<size_t>(n) - pad != kSealKeySize) {
      Cleanse(&decoded);
      return Status::InvalidArgument(where + "key '" + std::string(id) + "' is not the base64 of exactly " +
                                     std::to_string(kSealKeySize) + " bytes");
    }
    std::array<uint8_t, kSealKeySize> bytes{};
    std::memcpy(bytes.data(), decoded.data(), kSealKeySize);
    Cleanse(&decoded);
    SealKey key(bytes);
    OPENSSL_cleanse(bytes.data(), bytes.size());
    DISPOTIFY_RETURN_IF_ERROR(ring.Add(id, key));
  }
  if (ring.size() == 0) return Status::InvalidArgument("keyring holds no key");
  return ring;
}

Result<Keyring> Keyring::LoadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open keyring file " + path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = Status::FromErrno(errno, "stat keyring file " + path);
    ::close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument("keyring " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::FailedPrecondition("keyring file " + path + " has mode " + mode +
                                      ": group and others must have no access (chmod 600; for a "
                                      "Kubernetes Secret, defaultMode: 0400)");
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      Status s = Status::FromErrno(errno, "read keyring file " + path);
      OPENSSL_cleanse(buf, sizeof(buf));
      Cleanse(&text);
      ::close(fd);
      return s;
    }
    if (r == 0) break;
    text.append(buf, static_cast<size_t>(r));
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  ::close(fd);
  Result<Keyring> ring = Parse(text);
  Cleanse(&text);
  if (!ring.ok()) return Status::InvalidArgument(path + ": " + ring.status().message());
  return ring;
}

uint64_t SealedChunkCount(uint64_t plain_size, uint32_t chunk_size) {
  if (plain_size == 0) return 1;
  return (plain_size - 1) / chunk_size + 1;
}

uint64_t SealedFileSize(uint64_t plain_size, uint32_t chunk_size) {
  return kSealHeaderSize + plain_size + kSealTagSize * SealedChunkCount(plain_size, chunk_size);
}

// --- SealWriter ------------------------------------------------------------------------------------

struct SealWriter::Impl {
  GcmContext gcm;
  uint32_t chunk_size = 0;
  uint8_t salt[kSaltSize] = {};
  uint8_t prefix[kNoncePrefixSize] = {};
  std::string header_prefix;   // header bytes [0, 80): fixed from the start
  std::vector<uint8_t> plain;  // the chunk being filled
  size_t fill = 0;
  std::vector<uint8_t> sealed;  // ciphertext + tag of one chunk

  ~Impl() { OPENSSL_cleanse(plain.data(), plain.size()); }
};

SealWriter::SealWriter(Sink sink, std::unique_ptr<Impl> impl, std::string key_id)
    : sink_(std::move(sink)), impl_(std::move(impl)), key_id_(std::move(key_id)) {}

SealWriter::~SealWriter() = default;

Result<std::unique_ptr<SealWriter>> SealWriter::Create(const Keyring& keyring, Sink sink,
                                                       const SealOptions& options) {
  if (options.chunk_size == 0 || options.chunk_size > kMaxSealChunkSize) {
    return Status::InvalidArgument("seal chunk size " + std::to_string(options.chunk_size) + " outside 1.." +
                                   std::to_string(kMaxSealChunkSize));
  }
  const SealKey* master = keyring.Find(keyring.current_id());
  if (master == nullptr) return Status::FailedPrecondition("keyring holds no key to seal with");
  auto impl = std::make_unique<Impl>();
  impl->chunk_size = options.chunk_size;
  if (RAND_bytes(impl->salt, kSaltSize) != 1 || RAND_bytes(impl->prefix, kNoncePrefixSize) != 1) {
    return Status::FailedPrecondition("RAND_bytes failed: no randomness for the salt and nonce prefix");
  }
  Result<SealKey> file_key = DeriveFileKey(*master, impl->salt);
  if (!file_key.ok()) return file_key.status();
  DISPOTIFY_RETURN_IF_ERROR(impl->gcm.Init(*file_key, /*encrypt=*/true));
  impl->header_prefix = BuildHeader(options.chunk_size, keyring.current_id(), impl->salt, impl->prefix, 0)
                            .substr(0, kOffPlainSize);
  impl->plain.resize(options.chunk_size);
  impl->sealed.resize(size_t{options.chunk_size} + kSealTagSize);
  std::unique_ptr<SealWriter> w(new SealWriter(std::move(sink), std::move(impl), keyring.current_id()));
  w->error_ = w->sink_(std::string(kSealHeaderSize, '\0'));
  if (!w->error_.ok()) return w->error_;
  return w;
}

Status SealWriter::SealChunk(bool last) {
  Impl& im = *impl_;
  if (!last && next_index_ == std::numeric_limits<uint32_t>::max()) {
    return Status::InvalidArgument("plaintext exceeds 2^32 chunks of " + std::to_string(im.chunk_size) +
                                   " bytes");
  }
  ChunkParams p(reinterpret_cast<const uint8_t*>(im.header_prefix.data()), next_index_, last);
  if (!im.gcm.Seal(p.nonce, p.aad, sizeof(p.aad), im.plain.data(), im.fill, im.sealed.data(),
                   im.sealed.data() + im.fill)) {
    return Status::FailedPrecondition("AES-256-GCM encryption failed");
  }
  Status s = sink_(std::string_view(reinterpret_cast<const char*>(im.sealed.data()), im.fill + kSealTagSize));
  OPENSSL_cleanse(im.plain.data(), im.fill);
  im.fill = 0;
  ++next_index_;
  return s;
}

Status SealWriter::Write(std::string_view plain) {
  if (!error_.ok()) return error_;
  if (finished_) return Status::FailedPrecondition("SealWriter::Write after Finish");
  Impl& im = *impl_;
  while (!plain.empty()) {
    // A full chunk is sealed only once more data arrives: until then it may be the last one.
    if (im.fill == im.chunk_size) {
      error_ = SealChunk(/*last=*/false);
      if (!error_.ok()) return error_;
    }
    size_t n = std::min(plain.size(), size_t{im.chunk_size} - im.fill);
    std::memcpy(im.plain.data() + im.fill, plain.data(), n);
    im.fill += n;
    plain_size_ += n;
    plain.remove_prefix(n);
  }
  return Status::Ok();
}

Result<std::string> SealWriter::Finish() {
  if (!error_.ok()) return error_;
  if (finished_) return Status::FailedPrecondition("SealWriter::Finish called twice");
  finished_ = true;
  error_ = SealChunk(/*last=*/true);
  if (!error_.ok()) return error_;
  const Impl& im = *impl_;
  return BuildHeader(im.chunk_size, key_id_, im.salt, im.prefix, plain_size_);
}

// --- SealedReader ----------------------------------------------------------------------------------

struct SealedReader::Impl {
  GcmContext gcm;
  std::string header_prefix;
  std::vector<uint8_t> sealed;  // ciphertext + tag of one chunk
  std::vector<uint8_t> plain;   // one chunk, for reads that cover it in part

  ~Impl() { OPENSSL_cleanse(plain.data(), plain.size()); }
};

SealedReader::SealedReader(SealedSource source, std::unique_ptr<Impl> impl)
    : source_(std::move(source)), impl_(std::move(impl)) {}

SealedReader::~SealedReader() = default;

Result<std::unique_ptr<SealedReader>> SealedReader::Open(int fd, const Keyring& keyring) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "fstat sealed blob");
  SealedSource source;
  source.pread = [fd](uint64_t offset, size_t n, char* buf) { return PReadFull(fd, offset, buf, n); };
  source.size = static_cast<uint64_t>(st.st_size);
  return Open(std::move(source), keyring);
}

Result<std::unique_ptr<SealedReader>> SealedReader::Open(SealedSource source, const Keyring& keyring) {
  const uint64_t file_size = source.size;
  char h[kSealHeaderSize];
  Result<size_t> got = source.pread(0, sizeof(h), h);
  if (!got.ok()) return got.status();
  if (*got < kSealHeaderSize) {
    return Status::Corruption("sealed blob of " + std::to_string(file_size) +
                              " bytes is shorter than its header");
  }
  if (crc32c::Value(h, kOffCrc) != encoding::GetU32(h + kOffCrc)) {
    return Status::Corruption("sealed blob header fails its CRC");
  }
  if (std::string_view(h, kSealMagic.size()) != kSealMagic)
    return Status::Corruption("not a sealed blob (magic)");
  if (encoding::GetU32(h + kOffVersion) != kSealVersion) {
    return Status::Corruption("sealed blob version " + std::to_string(encoding::GetU32(h + kOffVersion)) +
                              " is not supported");
  }
  if (encoding::GetU32(h + kOffHeaderSize) != kSealHeaderSize)
    return Status::Corruption("sealed blob header size");
  const uint32_t chunk_size = encoding::GetU32(h + kOffChunkSize);
  if (chunk_size == 0 || chunk_size > kMaxSealChunkSize) {
    return Status::Corruption("sealed blob chunk size " + std::to_string(chunk_size));
  }
  const uint32_t id_size = encoding::GetU32(h + kOffKeyIdSize);
  if (id_size == 0 || id_size > kMaxKeyIdSize) return Status::Corruption("sealed blob key id size");
  std::string key_id(h + kOffKeyId, id_size);
  for (size_t i = id_size; i < kMaxKeyIdSize; ++i) {
    if (h[kOffKeyId + i] != 0) return Status::Corruption("sealed blob key id padding");
  }
  if (!IsValidKeyId(key_id)) return Status::Corruption("sealed blob key id is malformed");
  if (encoding::GetU32(h + kOffReserved) != 0) return Status::Corruption("sealed blob reserved field");
  const uint64_t plain_size = encoding::GetU64(h + kOffPlainSize);
  if (plain_size > (kMaxChunks * chunk_size)) return Status::Corruption("sealed blob plain size too large");
  if (file_size != SealedFileSize(plain_size, chunk_size)) {
    return Status::Corruption("sealed blob is " + std::to_string(file_size) + " bytes, its header says " +
                              std::to_string(SealedFileSize(plain_size, chunk_size)) +
                              " (truncated or extended)");
  }
  const SealKey* master = keyring.Find(key_id);
  if (master == nullptr) {
    return Status::NotFound("blob is sealed with key '" + key_id + "', which the keyring does not hold");
  }
  Result<SealKey> file_key = DeriveFileKey(*master, reinterpret_cast<const uint8_t*>(h + kOffSalt));
  if (!file_key.ok()) return file_key.status();
  auto impl = std::make_unique<Impl>();
  DISPOTIFY_RETURN_IF_ERROR(impl->gcm.Init(*file_key, /*encrypt=*/false));
  impl->header_prefix.assign(h, kOffPlainSize);
  impl->sealed.resize(size_t{chunk_size} + kSealTagSize);
  std::unique_ptr<SealedReader> r(new SealedReader(std::move(source), std::move(impl)));
  r->key_id_ = std::move(key_id);
  r->chunk_size_ = chunk_size;
  r->plain_size_ = plain_size;
  r->chunk_count_ = SealedChunkCount(plain_size, chunk_size);
  return r;
}

size_t SealedReader::ChunkPlainSize(uint64_t index) const {
  uint64_t start = index * chunk_size_;
  return static_cast<size_t>(std::min<uint64_t>(chunk_size_, plain_size_ - start));
}

Status SealedReader::DecryptChunk(uint64_t index, uint8_t* out) {
  Impl& im = *impl_;
  const size_t n = ChunkPlainSize(index);
  const uint64_t at = kSealHeaderSize + index * (uint64_t{chunk_size_} + kSealTagSize);
  Result<size_t> got = source_.pread(at, n + kSealTagSize, reinterpret_cast<char*>(im.sealed.data()));
  if (!got.ok()) return got.status();
  if (*got != n + kSealTagSize) {
    return Status::Corruption("sealed blob chunk " + std::to_string(index) + " is cut short (file shrank)");
  }
  ChunkParams p(reinterpret_cast<const uint8_t*>(im.header_prefix.data()), static_cast<uint32_t>(index),
                index + 1 == chunk_count_);
  ++chunks_decrypted_;
  if (!im.gcm.Open(p.nonce, p.aad, sizeof(p.aad), im.sealed.data(), n, out, im.sealed.data() + n)) {
    // GCM decrypts before it checks the tag: never leave unauthenticated plaintext behind.
    OPENSSL_cleanse(out, n);
    return Status::Corruption(
        "sealed blob chunk " + std::to_string(index) + " of " + std::to_string(chunk_count_) +
        " fails authentication (damaged, moved from elsewhere, or wrong key '" + key_id_ + "')");
  }
  return Status::Ok();
}

Result<size_t> SealedReader::ReadPlain(uint64_t offset, char* buf, size_t len) {
  if (offset >= plain_size_ || len == 0) return size_t{0};
  len = static_cast<size_t>(std::min<uint64_t>(len, plain_size_ - offset));
  const uint64_t end = offset + len;
  Impl& im = *impl_;
  for (uint64_t index = offset / chunk_size_; index * chunk_size_ < end; ++index) {
    const uint64_t chunk_start = index * chunk_size_;
    const size_t n = ChunkPlainSize(index);
    const uint64_t from = std::max(offset, chunk_start);
    const uint64_t to = std::min<uint64_t>(end, chunk_start + n);
    char* dst = buf + (from - offset);
    if (from == chunk_start && to == chunk_start + n) {
      // The whole chunk is wanted: decrypt straight into the caller's buffer, no copy.
      DISPOTIFY_RETURN_IF_ERROR(DecryptChunk(index, reinterpret_cast<uint8_t*>(dst)));
    } else {
      if (im.plain.size() < chunk_size_) im.plain.resize(chunk_size_);
      DISPOTIFY_RETURN_IF_ERROR(DecryptChunk(index, im.plain.data()));
      std::memcpy(dst, im.plain.data() + (from - chunk_start), static_cast<size_t>(to - from));
    }
  }
  return len;
}

Status SealedReader::Verify() {
  Impl& im = *impl_;
  if (im.plain.size() < chunk_size_) im.plain.resize(chunk_size_);
  for (uint64_t index = 0; index < chunk_count_; ++index) {
    DISPOTIFY_RETURN_IF_ERROR(DecryptChunk(index, im.plain.data()));
  }
  OPENSSL_cleanse(im.plain.data(), im.plain.size());
  return Status::Ok();
}

// --- Reseal ----------------------------------------------------------------------------------------

Result<ResealResult> Reseal(int old_fd, int new_fd, const Keyring& keyring, const SealOptions& options) {
  Result<std::unique_ptr<SealedReader>> reader = SealedReader::Open(old_fd, keyring);
  if (!reader.ok()) return reader.status();
  uint64_t out_offset = 0;
  auto sink = [&](std::string_view bytes) -> Status {
    DISPOTIFY_RETURN_IF_ERROR(PWriteFull(new_fd, out_offset, bytes));
    out_offset += bytes.size();
    return Status::Ok();
  };
  Result<std::unique_ptr<SealWriter>> writer = SealWriter::Create(keyring, sink, options);
  if (!writer.ok()) return writer.status();
  Sha256 sha;
  // A whole number of the old file's chunks per read: each is decrypted in place, never twice.
  const size_t piece = std::max<size_t>((*reader)->chunk_size(),
                                        (1u << 20) / (*reader)->chunk_size() * (*reader)->chunk_size());
  std::vector<char> buf(piece);
  uint64_t offset = 0;
  while (offset < (*reader)->plain_size()) {
    Result<size_t> n = (*reader)->ReadPlain(offset, buf.data(), buf.size());
    if (!n.ok()) {
      OPENSSL_cleanse(buf.data(), buf.size());
      return n.status();
    }
    std::string_view got(buf.data(), *n);
    sha.Update(got);
    Status s = (*writer)->Write(got);
    if (!s.ok()) {
      OPENSSL_cleanse(buf.data(), buf.size());
      return s;
    }
    offset += *n;
  }
  OPENSSL_cleanse(buf.data(), buf.size());
  // An empty file's only chunk carries no bytes for ReadPlain to fetch; authenticate it anyway.
  if ((*reader)->plain_size() == 0) DISPOTIFY_RETURN_IF_ERROR((*reader)->Verify());
  Result<std::string> header = (*writer)->Finish();
  if (!header.ok()) return header.status();
  DISPOTIFY_RETURN_IF_ERROR(PWriteFull(new_fd, 0, *header));
  // new_fd may have held a longer file (a retried rotation reusing its temp file).
  if (::ftruncate(new_fd, static_cast<off_t>(out_offset)) != 0) {
    return Status::FromErrno(errno, "ftruncate resealed blob");
  }
  ResealResult result;
  result.plain_size = (*reader)->plain_size();
  result.sha256 = sha.FinalHex();
  result.key_id = (*writer)->key_id();
  return result;
}

}  // namespace dispotify::replication
