// Identity files of a data directory.
//
// ON-DISK FORMAT (version 1), text, one key=value per line, written atomically (temp, fdatasync,
// rename, directory fsync):
//   <dir>/IDENTITY   format=1
//                    cluster_id=<the cluster's id>
//                    node_id=<the Raft server id, decimal>
//                    node_uuid=<32 lowercase hex digits, 16 bytes from /dev/urandom>
//   <dir>/REMOVED    cluster_id=<id>
//                    node_id=<id>
//                    (present: this member was removed; the directory must be reset explicitly)

#include "node/storage/identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <sstream>
#include <utility>

#include "common/encoding.h"
#include "common/logging.h"

namespace dispotify::storage {
namespace {

constexpr char kIdentityFile[] = "IDENTITY";
constexpr char kRemovedFile[] = "REMOVED";
constexpr char kForcedFile[] = "FORCED_NEW_CLUSTER";
constexpr char kFormat[] = "1";

// Parses "key=value" lines; false on a malformed line or a repeated key.
bool ParseKeyValues(std::string_view text, std::map<std::string, std::string>* out) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) return false;
    if (!out->emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1))).second) return false;
  }
  return true;
}

Result<std::map<std::string, std::string>> ReadKeyValues(FileSystem& fs, const std::string& path) {
  auto text = ReadFileToString(fs, path);
  if (!text.ok()) return text.status();
  std::map<std::string, std::string> kv;
  if (!ParseKeyValues(*text, &kv)) return Status::Corruption(path + ": malformed");
  return kv;
}

Result<Identity> ReadIdentity(FileSystem& fs, const std::string& path) {
  auto kv = ReadKeyValues(fs, path);
  if (!kv.ok()) return kv.status();
  auto get = [&](const char* key) -> const std::string* {
    auto it = kv->find(key);
    return it == kv->end() ? nullptr : &it->second;
  };
  const std::string* format = get("format");
  if (format == nullptr || *format != kFormat) {
    return Status::Corruption(path + ": unsupported format " + (format != nullptr ? *format : "(missing)"));
  }
  const std::string* cluster = get("cluster_id");
  const std::string* node = get("node_id");
  const std::string* uuid = get("node_uuid");
  uint64_t id = 0;
  if (cluster == nullptr || cluster->empty() || node == nullptr || !encoding::ParseU64(*node, &id) ||
      uuid == nullptr || uuid->empty()) {
    return Status::Corruption(path + ": missing or malformed field");
  }
  return Identity{*cluster, NodeId(id), *uuid};
}

Result<std::string> RandomUuid() {
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open /dev/urandom");
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::read(fd, bytes + got, sizeof(bytes) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      return Status::FromErrno(err, "read /dev/urandom");
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
  }
  return out;
}

std::string RemovedMessage(const std::string& cluster) {
  return "this member was removed from cluster " + cluster +
         "; its old log must not rejoin. Reset the data directory explicitly (dispotify-node --reset) to "
         "join "
         "again";
}

// Removes `path` and, for a directory, everything under it (symbolic links are not followed).
Status RemoveRecursively(FileSystem& fs, const std::string& path) {
  if (fs.IsDirectory(path)) {
    auto names = fs.ListDir(path);
    if (!names.ok()) return names.status();
    for (const std::string& name : *names)
      DISPOTIFY_RETURN_IF_ERROR(RemoveRecursively(fs, JoinPath(path, name)));
  }
  return fs.Remove(path);
}

}  // namespace

Result<Identity> LoadOrStampIdentity(FileSystem& fs, const std::string& dir, const std::string& cluster_id,
                                     NodeId node_id) {
  if (cluster_id.empty() || cluster_id.find_first_of("\n\r=") != std::string::npos) {
    return Status::InvalidArgument("cluster id must be non-empty, without '=' or line breaks");
  }
  if (node_id == kNoNode) return Status::InvalidArgument("node id 0 is reserved for 'no node'");
  DISPOTIFY_RETURN_IF_ERROR(fs.CreateDirs(dir));

  const std::string identity_path = JoinPath(dir, kIdentityFile);
  const std::string removed_path = JoinPath(dir, kRemovedFile);
  if (fs.Exists(removed_path)) {
    auto kv = ReadKeyValues(fs, removed_path);
    std::string cluster = "(unknown)";
    if (kv.ok() && kv->contains("cluster_id")) cluster = kv->at("cluster_id");
    return Status::FailedPrecondition(RemovedMessage(cluster));
  }

  if (fs.Exists(identity_path)) {
    auto id = ReadIdentity(fs, identity_path);
    if (!id.ok()) return id.status();
    if (id->cluster_id != cluster_id) {
      return Status::FailedPrecondition("data directory " + dir + " belongs to cluster " + id->cluster_id +
                                        ", not " + cluster_id + "; refusing to start");
    }
    if (id->node_id != node_id) {
      return Status::FailedPrecondition("data directory " + dir + " belongs to node " +
                                        std::to_string(id->node_id.value()) + " of cluster " + cluster_id +
                                        ", not node " + std::to_string(node_id.value()) +
                                        "; refusing to start");
    }
    return id;
  }

  // Stamp only a directory with no data: data without an IDENTITY is of unknown origin.
  auto names = fs.ListDir(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (name == "lost+found" || name.ends_with(".tmp")) continue;  // an ext4 volume's root; our temp files
    std::string msg = "data directory " + dir;
    msg += " holds data ('" + name + "') but no IDENTITY file; refusing to start. Reset it explicitly ";
    msg += "(dispotify-node --reset) if it may be discarded";
    return Status::FailedPrecondition(std::move(msg));
  }
  auto uuid = RandomUuid();
  if (!uuid.ok()) return uuid.status();
  Identity id{cluster_id, node_id, *uuid};
  std::ostringstream text;
  text << "format=" << kFormat << "\ncluster_id=" << id.cluster_id << "\nnode_id=" << id.node_id.value()
       << "\nnode_uuid=" << id.node_uuid << "\n";
  DISPOTIFY_RETURN_IF_ERROR(WriteFileAtomically(fs, identity_path, text.str()));
  DLOG_INFO << "stamped data directory " << dir << " for node " << node_id.value() << " of cluster "
            << cluster_id << " (uuid " << id.node_uuid << ")";
  return id;
}

Status MarkRemoved(FileSystem& fs, const std::string& dir) {
  std::string cluster;
  std::string node;
  auto id = ReadIdentity(fs, JoinPath(dir, kIdentityFile));
  if (id.ok()) {
    cluster = id->cluster_id;
    node = std::to_string(id->node_id.value());
  }
  return WriteFileAtomically(fs, JoinPath(dir, kRemovedFile),
                             "cluster_id=" + cluster + "\nnode_id=" + node + "\n");
}

bool IsMarkedRemoved(FileSystem& fs, const std::string& dir) {
  return fs.Exists(JoinPath(dir, kRemovedFile));
}

std::string ForcedNewClusterToken(FileSystem& fs, const std::string& dir) {
  auto text = ReadFileToString(fs, JoinPath(dir, kForcedFile));
  if (!text.ok()) return "";
  std::string token = *text;
  while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
  return token;
}

Status RecordForcedNewCluster(FileSystem& fs, const std::string& dir, const std::string& token) {
  return WriteFileAtomically(fs, JoinPath(dir, kForcedFile), token + "\n");
}

Status ResetDataDir(FileSystem& fs, const std::string& dir) {
  if (!fs.Exists(dir)) return Status::Ok();
  auto names = fs.ListDir(dir);
  if (!names.ok()) return names.status();
  // The identity files go last, REMOVED the very last: an interrupted reset still refuses to start.
  for (const std::string& name : *names) {
    if (name == kIdentityFile || name == kRemovedFile || name == "lost+found") continue;
    DISPOTIFY_RETURN_IF_ERROR(RemoveRecursively(fs, JoinPath(dir, name)));
  }
  DISPOTIFY_RETURN_IF_ERROR(fs.SyncDir(dir));
  for (const char* name : {kIdentityFile, kRemovedFile}) {
    const std::string path = JoinPath(dir, name);
    if (!fs.Exists(path)) continue;
    DISPOTIFY_RETURN_IF_ERROR(fs.Remove(path));
    DISPOTIFY_RETURN_IF_ERROR(fs.SyncDir(dir));
  }
  DLOG_WARN << "data directory " << dir << " was reset";
  return Status::Ok();
}

}  // namespace dispotify::storage
