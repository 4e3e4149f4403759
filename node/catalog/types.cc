#include "node/catalog/types.h"

namespace dispotify::catalog {

const char* ReplicaStateName(ReplicaState state) {
  switch (state) {
    case ReplicaState::kPending: return "pending";
    case ReplicaState::kHealthy: return "healthy";
    case ReplicaState::kCorrupt: return "corrupt";
    case ReplicaState::kMissing: return "missing";
  }
  return "unknown";
}

bool IsValidFileId(std::string_view id) {
  // The id becomes a file name in the blob store: no separator, no NUL, never a name that the
  // file system gives a meaning to, and short enough for any file system's name limit.
  if (id.empty() || id.size() > kMaxFileIdSize || id == "." || id == "..") return false;
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace dispotify::catalog
