#include "node/kv/kv_state_machine.h"

#include <cstring>
#include <fstream>
#include <mutex>
#include <vector>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/encoding.h"

namespace dispotify::kv {
namespace {

constexpr char kSnapshotMagic[4] = {'D', 'K', 'V', 'S'};
constexpr uint8_t kSnapshotVersion = 1;
constexpr size_t kWriteBufferBytes = 256 << 10;

using encoding::Decoder;
using encoding::PutU32;
using encoding::PutU64;

std::string EncodeCommand(Op op, std::string_view key, std::string_view value) {
  std::string out;
  out.reserve(1 + 4 + key.size() + value.size());
  out.push_back(static_cast<char>(op));
  PutU32(&out, static_cast<uint32_t>(key.size()));
  out.append(key);
  out.append(value);
  return out;
}

}  // namespace

std::string EncodePut(std::string_view key, std::string_view value) {
  return EncodeCommand(Op::kPut, key, value);
}
std::string EncodeDelete(std::string_view key) {
  return EncodeCommand(Op::kDelete, key, {});
}

bool DecodeCommand(std::string_view data, Command* out) {
  Decoder r(data);
  uint8_t op = 0;
  uint32_t key_len = 0;
  if (!r.GetU8(&op) || !r.GetU32(&key_len) || !r.GetBytes(key_len, &out->key)) return false;
  out->value = r.rest();
  switch (static_cast<Op>(op)) {
    case Op::kPut: out->op = Op::kPut; return true;
    case Op::kDelete: out->op = Op::kDelete; return out->value.empty();
  }
  return false;
}

consensus::ApplyResult KvStateMachine::Apply(const consensus::Entry& entry) {
  DISPOTIFY_CHECK(entry.index.value() == applied_.load(std::memory_order_relaxed) + 1,
                  "entries must be applied in order, without gaps");
  consensus::ApplyResult result;
  if (entry.type == consensus::EntryType::kNormal) {
    Command cmd;
    if (!DecodeCommand(entry.data, &cmd)) {
      result.status = Status::InvalidArgument("malformed KV command");
    } else {
      std::unique_lock lock(mu_);
      if (cmd.op == Op::kPut) {
        auto it = data_.find(cmd.key);
        if (it == data_.end()) {
          data_.emplace(std::string(cmd.key), std::string(cmd.value));
        } else {
          it->second.assign(cmd.value);
        }
      } else {
        auto it = data_.find(cmd.key);
        if (it != data_.end()) data_.erase(it);
      }
    }
  }
  applied_.store(entry.index.value(), std::memory_order_release);
  return result;
}

Status KvStateMachine::SaveSnapshot(consensus::SnapshotSink& sink) {
  // Only the driver's thread mutates the map, and it is the caller: a shared lock keeps readers
  // going while the snapshot is written.
  std::shared_lock lock(mu_);
  std::string buf;
  buf.reserve(kWriteBufferBytes + 1024);
  buf.append(kSnapshotMagic, sizeof(kSnapshotMagic));
  buf.push_back(static_cast<char>(kSnapshotVersion));
  PutU64(&buf, applied_.load(std::memory_order_relaxed));
  PutU64(&buf, data_.size());
  uint32_t crc = 0;
  auto flush = [&]() -> Status {
    crc = crc32c::Extend(crc, buf.data(), buf.size());
    Status st = sink.Write(buf);
    buf.clear();
    return st;
  };
  for (const auto& [k, v] : data_) {
    PutU32(&buf, static_cast<uint32_t>(k.size()));
    buf.append(k);
    PutU32(&buf, static_cast<uint32_t>(v.size()));
    buf.append(v);
    if (buf.size() >= kWriteBufferBytes) DISPOTIFY_RETURN_IF_ERROR(flush());
  }
  DISPOTIFY_RETURN_IF_ERROR(flush());
  PutU32(&buf, crc);
  return sink.Write(buf);
}

Status KvStateMachine::Restore(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return Status::IoError("cannot open KV snapshot " + path);
  const std::streamoff size = in.tellg();
  if (size < 0) return Status::IoError("cannot size KV snapshot " + path);
  std::string content(static_cast<size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(content.data(), size)) return Status::IoError("cannot read KV snapshot " + path);
  if (content.size() < 4) return Status::Corruption("KV snapshot too short: " + path);

  std::string_view body(content.data(), content.size() - 4);
  Decoder trailer(std::string_view(content).substr(content.size() - 4));
  uint32_t want_crc = 0;
  (void)trailer.GetU32(&want_crc);
  if (crc32c::Extend(0, body.data(), body.size()) != want_crc) {
    return Status::Corruption("KV snapshot checksum mismatch: " + path);
  }
  Decoder r(body);
  std::string_view magic;
  uint8_t version = 0;
  uint64_t applied = 0;
  uint64_t count = 0;
  if (!r.GetBytes(4, &magic) || magic != std::string_view(kSnapshotMagic, 4) || !r.GetU8(&version) ||
      version != kSnapshotVersion || !r.GetU64(&applied) || !r.GetU64(&count)) {
    return Status::Corruption("KV snapshot header invalid: " + path);
  }
  std::map<std::string, std::string, std::less<>> data;
  for (uint64_t i = 0; i < count; ++i) {
    uint32_t kl = 0;
    uint32_t vl = 0;
    std::string_view k;
    std::string_view v;
    if (!r.GetU32(&kl) || !r.GetBytes(kl, &k) || !r.GetU32(&vl) || !r.GetBytes(vl, &v)) {
      return Status::Corruption("KV snapshot truncated: " + path);
    }
    data.emplace_hint(data.end(), std::string(k), std::string(v));
  }
  if (!r.rest().empty()) return Status::Corruption("KV snapshot has trailing bytes: " + path);

  std::unique_lock lock(mu_);
  data_ = std::move(data);
  applied_.store(applied, std::memory_order_release);
  return Status::Ok();
}

std::optional<std::string> KvStateMachine::Get(std::string_view key) const {
  std::shared_lock lock(mu_);
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

size_t KvStateMachine::size() const {
  std::shared_lock lock(mu_);
  return data_.size();
}

}  // namespace dispotify::kv
