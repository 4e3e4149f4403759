#include "node/catalog/types.h"

#include <algorithm>
#include <limits>

#include "common/sha256.h"

namespace dispotify::catalog {

namespace {

// Lowercase only: the value names a URL (/music/covers/{sha256}), which must have one spelling.
bool IsLowerSha256Hex(std::string_view s) {
  return IsSha256Hex(s) && std::none_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'F'; });
}

Status ValidateSong(const Song& s) {
  if (!IsValidFileId(s.file_id)) return Status::InvalidArgument("invalid file_id");
  for (const std::string* f :
       {&s.title, &s.artist, &s.album, &s.file_name, &s.content_type, &s.sha256, &s.album_artist, &s.genre}) {
    if (f->size() > kMaxTextBytes) return Status::InvalidArgument("song field longer than 4096 bytes");
  }
  if (!s.cover.empty() && !IsLowerSha256Hex(s.cover)) {
    return Status::InvalidArgument("a song's cover is 64 lowercase hex digits or empty");
  }
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (s.size_bytes > kMax || s.duration_ms > kMax) {
    return Status::InvalidArgument("song size or duration out of range");
  }
  return Status::Ok();
}

}  // namespace

bool IsPicture(const Song& s) {
  return s.content_type.starts_with("image/");
}

Status ValidateMutation(const Mutation& m) {
  switch (m.kind) {
    case Mutation::Kind::kPutSong: return ValidateSong(m.song);
    case Mutation::Kind::kDeleteSong:
      return IsValidFileId(m.key) ? Status::Ok() : Status::InvalidArgument("invalid file_id");
    case Mutation::Kind::kPutReplica:
    case Mutation::Kind::kDeleteReplica:
      if (!IsValidFileId(m.replica.file_id)) return Status::InvalidArgument("invalid replica file_id");
      if (m.replica.node == kNoNode) return Status::InvalidArgument("replica without a node");
      if (static_cast<uint8_t>(m.replica.state) > static_cast<uint8_t>(ReplicaState::kMissing)) {
        return Status::InvalidArgument("unknown replica state");
      }
      return Status::Ok();
    case Mutation::Kind::kPutLock:
      if (m.lock.name.empty() || m.lock.name.size() > kMaxNameBytes || m.lock.owner.size() > kMaxNameBytes) {
        return Status::InvalidArgument("invalid lock name or owner");
      }
      return Status::Ok();
    case Mutation::Kind::kDeleteLock:
      return m.key.empty() || m.key.size() > kMaxNameBytes ? Status::InvalidArgument("invalid lock name")
                                                           : Status::Ok();
    case Mutation::Kind::kPutSetting:
      if (m.key.empty() || m.key.size() > kMaxNameBytes || m.value.size() > kMaxSettingBytes) {
        return Status::InvalidArgument("invalid setting");
      }
      return Status::Ok();
    case Mutation::Kind::kDeleteSetting:
      return m.key.empty() || m.key.size() > kMaxNameBytes ? Status::InvalidArgument("invalid setting key")
                                                           : Status::Ok();
  }
  return Status::InvalidArgument("unknown mutation kind");
}

const char* ReplicaStateName(ReplicaState state) {
  switch (state) {
    case ReplicaState::kPending: return "pending";
    case ReplicaState::kHealthy: return "healthy";
    case ReplicaState::kCorrupt: return "corrupt";
    case ReplicaState::kMissing: return "missing";
  }
  return "unknown";
}

}  // namespace dispotify::catalog
