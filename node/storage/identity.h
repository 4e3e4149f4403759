#pragma once
// Fencing of the data directory: a node refuses another cluster's data, and a removed member
// refuses to rejoin with its old log until its directory is explicitly reset.

#include <string>

#include "common/file_system.h"
#include "common/ids.h"
#include "common/status.h"

namespace dispotify::storage {

struct Identity {
  std::string cluster_id;
  NodeId node_id;
  std::string node_uuid;  // persistent, random, never reused
};

// Reads the IDENTITY file of `dir`, or stamps a new one on an empty directory.
// kFailedPrecondition with a clear message when the directory belongs to another cluster or to
// another server id, or when it carries the REMOVED marker.
Result<Identity> LoadOrStampIdentity(FileSystem& fs, const std::string& dir, const std::string& cluster_id,
                                     NodeId node_id);
// Marks the directory as belonging to a member that was removed from the cluster.
Status MarkRemoved(FileSystem& fs, const std::string& dir);
bool IsMarkedRemoved(FileSystem& fs, const std::string& dir);
// The token of the last forced new cluster (quorum-loss recovery) this directory went through, ""
// if none: a node restarted with the same request must not force it again.
std::string ForcedNewClusterToken(FileSystem& fs, const std::string& dir);
Status RecordForcedNewCluster(FileSystem& fs, const std::string& dir, const std::string& token);
// Deletes everything in `dir` (the explicit reset of a removed member).
Status ResetDataDir(FileSystem& fs, const std::string& dir);

}  // namespace dispotify::storage
