#include "node/consensus/types.h"

#include "common/encoding.h"

namespace dispotify::consensus {
namespace {

using encoding::PutU32;
using encoding::PutU64;

constexpr uint8_t kConfChangeVersion1 = 1;
constexpr uint8_t kConfChangeVersion2 = 2;  // + node_uuid
constexpr size_t kConfChangeFixed = 1 + 1 + 8 + 4;

}  // namespace

std::string EncodeConfChange(const ConfChange& cc) {
  std::string out;
  const bool v2 = !cc.node_uuid.empty();
  out.reserve(kConfChangeFixed + cc.address.size() + (v2 ? 4 + cc.node_uuid.size() : 0));
  out.push_back(static_cast<char>(v2 ? kConfChangeVersion2 : kConfChangeVersion1));
  out.push_back(static_cast<char>(cc.type));
  PutU64(&out, cc.node.value());
  PutU32(&out, static_cast<uint32_t>(cc.address.size()));
  out += cc.address;
  if (v2) {
    PutU32(&out, static_cast<uint32_t>(cc.node_uuid.size()));
    out += cc.node_uuid;
  }
  return out;
}

bool DecodeConfChange(const std::string& data, ConfChange* out) {
  if (data.size() < kConfChangeFixed) return false;
  const auto version = static_cast<uint8_t>(data[0]);
  if (version != kConfChangeVersion1 && version != kConfChangeVersion2) return false;
  auto type = static_cast<uint8_t>(data[1]);
  if (type > static_cast<uint8_t>(ConfChangeType::kRemove)) return false;
  const uint64_t len = encoding::GetU32(data.data() + 10);
  if (data.size() < kConfChangeFixed + len) return false;
  std::string uuid;
  if (version == kConfChangeVersion1) {
    if (data.size() != kConfChangeFixed + len) return false;
  } else {
    const size_t at = kConfChangeFixed + len;
    if (data.size() < at + 4) return false;
    const uint64_t uuid_len = encoding::GetU32(data.data() + at);
    if (uuid_len == 0 || data.size() != at + 4 + uuid_len) return false;
    uuid = data.substr(at + 4);
  }
  out->type = static_cast<ConfChangeType>(type);
  out->node = NodeId(encoding::GetU64(data.data() + 2));
  out->address = data.substr(kConfChangeFixed, len);
  out->node_uuid = std::move(uuid);
  return out->node != kNoNode;
}

bool ApplyConfChange(const ConfChange& cc, ConfState* conf) {
  auto it = conf->members.find(cc.node);
  switch (cc.type) {
    case ConfChangeType::kAddLearner:
      if (it != conf->members.end()) return false;
      conf->members[cc.node] = Member{cc.address, /*voter=*/false, cc.node_uuid};
      return true;
    case ConfChangeType::kPromote:
      if (it == conf->members.end() || it->second.voter) return false;
      it->second.voter = true;
      return true;
    case ConfChangeType::kRemove:
      if (it == conf->members.end()) return false;
      conf->members.erase(it);
      return true;
  }
  return false;
}

const char* MessageTypeName(MessageType t) {
  switch (t) {
    case MessageType::kRequestVote: return "RequestVote";
    case MessageType::kRequestVoteResponse: return "RequestVoteResponse";
    case MessageType::kAppendEntries: return "AppendEntries";
    case MessageType::kAppendEntriesResponse: return "AppendEntriesResponse";
    case MessageType::kInstallSnapshot: return "InstallSnapshot";
    case MessageType::kInstallSnapshotResponse: return "InstallSnapshotResponse";
    case MessageType::kTimeoutNow: return "TimeoutNow";
  }
  return "Unknown";
}

}  // namespace dispotify::consensus
