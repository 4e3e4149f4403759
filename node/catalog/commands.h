#pragma once
// The catalog's commands: what a Raft entry of the catalog carries. The leader stamps each command
// with its wall-clock time (`now_ms`) when it proposes it, so that applying it (lock expiry, TTLs,
// timestamps) reads no clock and gives the same result on every server.
//
// Encoding (little-endian, common/encoding.h):
//   u8 version=1 | u8 kind | i64 now_ms | kind-specific fields (strings are u32 length + bytes)
// Fields added later are optional trailing fields, written only when set (older entries decode
// unchanged): PutSong's and DeleteSong's lock_name + u64 lock_token, AcquireLock's share_key, and
// then PutSong's library fields: album_artist (string) + u32 disc + genre (string) + u8
// compilation (0/1), written only when one of them is set (then after the lock group, written
// too, empty when unfenced). A song's album_id is not carried: the store derives it.
// An entry that does not decode is applied as a no-op with an InvalidArgument result.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/audit/chain.h"
#include "common/ids.h"
#include "common/status.h"
#include "node/catalog/types.h"

namespace dispotify::catalog {

// Creates or replaces a song. With `if_absent`, fails with kAlreadyExists when the file_id exists
// with another sha256 (concurrent uploads of one id: the first commit wins).
// `replicas`: nodes that hold a verified copy of the content (recorded as healthy with the song,
// in the same entry, so a song is never visible without its copies).
// Fencing (`lock_token` != 0): applied only while the lock `lock_name` is held, unexpired, with
// exactly this token; otherwise kFailedPrecondition. An upload whose lease lapsed or was taken
// over can then never commit late (a paused or partitioned node resuming).
// `uploader` (level 4, optional: "" when security is off): recorded as uploader/<file_id> when
// the song is created, kept when it is replaced, removed with it.
struct PutSongCmd {
  Song song;
  bool if_absent = true;
  std::vector<NodeId> replicas;
  std::string lock_name;
  uint64_t lock_token = 0;
  std::string uploader;
};
// Fenced like PutSongCmd when `lock_token` != 0 (an upload that replaces a song).
struct DeleteSongCmd {
  std::string file_id;
  std::string lock_name;
  uint64_t lock_token = 0;
};
struct SetReplicaCmd {
  Replica replica;  // updated_at_ms is taken from the command's time
};
struct RemoveReplicaCmd {
  std::string file_id;
  NodeId node;
};
struct SetReplicationFactorCmd {
  uint32_t factor = 3;  // 1..16
};
// Acquire: succeeds if the lock is free, expired, or already held by `owner` (then it renews).
// With a `share_key`, also when the live holder's owner starts with `share_key + "/"`: the lock
// is taken over with a new token (the earlier holder is fenced off). Uploads use the content's
// SHA-256 as the key: a retry of the same bytes through any node is the same upload and need not
// wait for the first attempt's lease to lapse.
struct AcquireLockCmd {
  std::string name;
  std::string owner;
  int64_t ttl_ms = 0;
  std::string share_key;
};
// Renew: only the current, unexpired owner may.
struct RenewLockCmd {
  std::string name;
  std::string owner;
  int64_t ttl_ms = 0;
};
// Release: only the owner may; releasing an expired or absent lock succeeds (idempotent).
struct ReleaseLockCmd {
  std::string name;
  std::string owner;
};

// Marks a member as draining (repair moves its copies to the other nodes and new uploads avoid it,
// so that it can be removed without dropping a file below R) or clears the mark.
struct SetDrainingCmd {
  NodeId node;
  bool draining = true;
};

// Users and API tokens (command level 4). The catalog keeps them as settings (small, few, read by
// key on every authenticated request):
//   user/<name>                  the user's record
//   token/<id>                   a token's record (id: SHA-256 of the token's secret, hex)
//   user-token/<owner>/<id>      "" (an index: a user's tokens, removed with the user)
//   uploader/<file_id>           the name of the user who uploaded the song
// The records' content is node/auth/records.h's business: the catalog never reads it, so the rules
// here are only about existence (a token's owner must exist; a user is created once).
// Create or replace a user. `if_absent`: kAlreadyExists when the user exists. `only_if_first`:
// kAlreadyExists when any user exists (the bootstrap admin, proposed again by each new leader
// until one is committed).
struct PutUserCmd {
  std::string name;
  std::string record;
  bool if_absent = false;
  bool only_if_first = false;
};
// Removes a user and every token of theirs (kNotFound when absent).
struct DeleteUserCmd {
  std::string name;
};
// Stores a token of an existing user (kNotFound otherwise; kAlreadyExists for a known id).
struct PutTokenCmd {
  std::string id;
  std::string owner;
  std::string record;
};
// Removes a token (absent: OK, revoking is idempotent).
struct RevokeTokenCmd {
  std::string id;
  std::string owner;
};

// Appends entries to the audit trail (common/audit/entry.h). Each is the encoding of an entry whose
// seq, prev_hash and hash are not set yet: the state machine links them after the current head
// (the setting audit/head), so the chain follows the log order whoever proposed them, and stores
// each as audit/e/<seq, 20 digits>; head and checkpoint as audit::FormatHead text. Refused whole
// (kInvalidArgument) if one does not decode.
struct AppendAuditCmd {
  std::vector<std::string> entries;
};
// Retention: drops the entries with seq <= through_seq and records the head at through_seq as the
// checkpoint (audit/checkpoint), from which `audit verify` starts. At most kMaxAuditTrim entries
// per command (a larger trim is several commands).
struct TrimAuditCmd {
  uint64_t through_seq = 0;
};
inline constexpr uint64_t kMaxAuditTrim = 10000;
inline constexpr size_t kMaxAuditBatch = 1000;  // entries per AppendAuditCmd
inline constexpr std::string_view kAuditEntryPrefix = "audit/e/";
inline constexpr std::string_view kAuditHeadKey = "audit/head";
inline constexpr std::string_view kAuditCheckpointKey = "audit/checkpoint";
std::string AuditEntryKey(uint64_t seq);

using CommandBody =
    std::variant<PutSongCmd, DeleteSongCmd, SetReplicaCmd, RemoveReplicaCmd, SetReplicationFactorCmd,
                 AcquireLockCmd, RenewLockCmd, ReleaseLockCmd, SetDrainingCmd, PutUserCmd, DeleteUserCmd,
                 PutTokenCmd, RevokeTokenCmd, AppendAuditCmd, TrimAuditCmd>;

// The settings keys of the records above (names and ids are validated by the state machine:
// 1..64 bytes of [A-Za-z0-9._@-] for names, 64 lowercase hex digits for token ids).
std::string UserKey(std::string_view name);
std::string TokenKey(std::string_view id);
std::string UserTokenPrefix(std::string_view owner);
std::string UploaderKey(std::string_view file_id);
inline constexpr std::string_view kUserKeyPrefix = "user/";
inline constexpr std::string_view kTokenKeyPrefix = "token/";
bool IsValidUserName(std::string_view name);
bool IsValidTokenId(std::string_view id);

struct Command {
  int64_t now_ms = 0;
  CommandBody body;
};

// Rolling upgrades: a node fails to apply a command kind it does not know, and its catalog would
// then drift from the others'. So every kind has the command level that introduced it, a node
// tells its peers the level it speaks (RaftBatch.command_level), and the leader proposes a
// command only once every member has reached its level (node/server/command_levels.h). A new kind
// gets kCommandLevel + 1 here and kCommandLevel moves with it. The same holds for a new field
// of a kind: level 2 is a put-song carrying the library fields (album artist, disc, genre,
// compilation), which a level-1 node cannot decode; level 3 one carrying a cover; level 4 the user
// and token kinds, a put-song naming its uploader, and the audit trail's.
inline constexpr uint32_t kCommandLevel = 4;
// The level this body needs: the level that introduced its kind (kCommandLevels, indexed like
// CommandBody), or that of the newest optional field it carries.
uint32_t CommandLevelOf(const CommandBody& body);
const char* CommandName(const CommandBody& body);

std::string EncodeCommand(const Command& cmd);
Result<Command> DecodeCommand(std::string_view data);

inline constexpr uint32_t kDefaultReplicationFactor = 3;
inline constexpr uint32_t kMaxReplicationFactor = 16;
inline constexpr int64_t kMaxLockTtlMs = 24 * 3600 * 1000;

// The setting that lists the draining members: decimal ids, comma-separated, increasing.
inline constexpr const char* kDrainingNodesKey = "draining_nodes";
std::vector<NodeId> ParseNodeList(std::string_view text);
std::string FormatNodeList(const std::vector<NodeId>& nodes);

}  // namespace dispotify::catalog
