#include "node/consensus/types.h"

#include <cstring>

namespace dispotify::consensus {
namespace {

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetLe(const std::string& s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(s[pos + i])} << (8 * i);
  return v;
}

constexpr uint8_t kConfChangeVersion = 1;
constexpr size_t kConfChangeFixed = 1 + 1 + 8 + 4;

}  // namespace

std::string EncodeConfChange(const ConfChange& cc) {
  std::string out;
  out.reserve(kConfChangeFixed + cc.address.size());
  out.push_back(static_cast<char>(kConfChangeVersion));
  out.push_back(static_cast<char>(cc.type));
  PutU64(&out, cc.node.value());
  PutU32(&out, static_cast<uint32_t>(cc.address.size()));
  out += cc.address;
  return out;
}

bool DecodeConfChange(const std::string& data, ConfChange* out) {
  if (data.size() < kConfChangeFixed) return false;
  if (static_cast<uint8_t>(data[0]) != kConfChangeVersion) return false;
  auto type = static_cast<uint8_t>(data[1]);
  if (type > static_cast<uint8_t>(ConfChangeType::kRemove)) return false;
  uint64_t len = GetLe(data, 10, 4);
  if (data.size() != kConfChangeFixed + len) return false;
  out->type = static_cast<ConfChangeType>(type);
  out->node = NodeId(GetLe(data, 2, 8));
  out->address = data.substr(kConfChangeFixed);
  return out->node != kNoNode;
}

bool ApplyConfChange(const ConfChange& cc, ConfState* conf) {
  auto it = conf->members.find(cc.node);
  switch (cc.type) {
    case ConfChangeType::kAddLearner:
      if (it != conf->members.end()) return false;
      conf->members[cc.node] = Member{cc.address, /*voter=*/false};
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
