#include "node/catalog/commands.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <variant>

#include "common/encoding.h"

namespace dispotify::catalog {
namespace {

using encoding::Decoder;
using encoding::PutString;
using encoding::PutU32;
using encoding::PutU64;
using encoding::PutU8;

constexpr uint8_t kVersion = 1;

void PutI64(std::string* out, int64_t v) {
  PutU64(out, static_cast<uint64_t>(v));
}
bool GetI64(Decoder& d, int64_t* v) {
  uint64_t u = 0;
  if (!d.GetU64(&u)) return false;
  *v = static_cast<int64_t>(u);
  return true;
}

void PutSong(std::string* out, const Song& s) {
  PutString(out, s.file_id);
  PutString(out, s.title);
  PutString(out, s.artist);
  PutString(out, s.album);
  PutString(out, s.file_name);
  PutString(out, s.content_type);
  PutU32(out, s.track);
  PutU32(out, s.year);
  PutU64(out, s.duration_ms);
  PutU64(out, s.size_bytes);
  PutString(out, s.sha256);
  PutI64(out, s.created_at_ms);
}

bool GetSong(Decoder& d, Song* s) {
  return d.GetString(&s->file_id) && d.GetString(&s->title) && d.GetString(&s->artist) &&
         d.GetString(&s->album) && d.GetString(&s->file_name) && d.GetString(&s->content_type) &&
         d.GetU32(&s->track) && d.GetU32(&s->year) && d.GetU64(&s->duration_ms) && d.GetU64(&s->size_bytes) &&
         d.GetString(&s->sha256) && GetI64(d, &s->created_at_ms);
}

// The song's library fields (the command's second optional group), or false when all are at their
// defaults: an entry without them is what every version before command level 2 wrote and reads.
bool HasLibraryFields(const Song& s) {
  return !s.album_artist.empty() || s.disc != 0 || !s.genre.empty() || s.compilation;
}

void PutLibraryFields(std::string* out, const Song& s) {
  PutString(out, s.album_artist);
  PutU32(out, s.disc);
  PutString(out, s.genre);
  PutU8(out, s.compilation ? 1 : 0);
}

bool GetLibraryFields(Decoder& d, Song* s) {
  uint8_t compilation = 0;
  if (!d.GetString(&s->album_artist) || !d.GetU32(&s->disc) || !d.GetString(&s->genre) ||
      !d.GetU8(&compilation) || compilation > 1) {
    return false;
  }
  s->compilation = compilation == 1;
  return true;
}

// The third optional group (command level 3): the song's cover.
bool HasCover(const Song& s) {
  return !s.cover.empty();
}

struct Encoder {
  std::string* out;
  void operator()(const PutSongCmd& c) const {
    PutSong(out, c.song);
    PutU8(out, c.if_absent ? 1 : 0);
    PutU32(out, static_cast<uint32_t>(c.replicas.size()));
    for (NodeId n : c.replicas) PutU64(out, n.value());
    const bool cover = HasCover(c.song);
    const bool library = cover || HasLibraryFields(c.song);
    // The groups are positional: each needs the ones before it (an empty lock name and token 0
    // read back as "not fenced", library fields at their defaults as untagged).
    const bool uploader = !c.uploader.empty();
    if (c.lock_token != 0 || library || uploader) {
      PutString(out, c.lock_name);
      PutU64(out, c.lock_token);
    }
    if (library || cover || uploader) PutLibraryFields(out, c.song);
    if (cover || uploader) PutString(out, c.song.cover);
    if (uploader) PutString(out, c.uploader);
  }
  void operator()(const DeleteSongCmd& c) const {
    PutString(out, c.file_id);
    if (c.lock_token != 0) {
      PutString(out, c.lock_name);
      PutU64(out, c.lock_token);
    }
  }
  void operator()(const SetReplicaCmd& c) const {
    PutString(out, c.replica.file_id);
    PutU64(out, c.replica.node.value());
    PutU8(out, static_cast<uint8_t>(c.replica.state));
  }
  void operator()(const RemoveReplicaCmd& c) const {
    PutString(out, c.file_id);
    PutU64(out, c.node.value());
  }
  void operator()(const SetReplicationFactorCmd& c) const { PutU32(out, c.factor); }
  void operator()(const AcquireLockCmd& c) const {
    PutString(out, c.name);
    PutString(out, c.owner);
    PutI64(out, c.ttl_ms);
    if (!c.share_key.empty()) PutString(out, c.share_key);
  }
  void operator()(const RenewLockCmd& c) const {
    PutString(out, c.name);
    PutString(out, c.owner);
    PutI64(out, c.ttl_ms);
  }
  void operator()(const ReleaseLockCmd& c) const {
    PutString(out, c.name);
    PutString(out, c.owner);
  }
  void operator()(const SetDrainingCmd& c) const {
    PutU64(out, c.node.value());
    PutU8(out, c.draining ? 1 : 0);
  }
  void operator()(const PutUserCmd& c) const {
    PutString(out, c.name);
    PutString(out, c.record);
    PutU8(out, static_cast<uint8_t>((c.if_absent ? 1 : 0) | (c.only_if_first ? 2 : 0)));
  }
  void operator()(const DeleteUserCmd& c) const { PutString(out, c.name); }
  void operator()(const PutTokenCmd& c) const {
    PutString(out, c.id);
    PutString(out, c.owner);
    PutString(out, c.record);
  }
  void operator()(const RevokeTokenCmd& c) const {
    PutString(out, c.id);
    PutString(out, c.owner);
  }
  void operator()(const AppendAuditCmd& c) const {
    PutU32(out, static_cast<uint32_t>(c.entries.size()));
    for (const auto& e : c.entries) PutString(out, e);
  }
  void operator()(const TrimAuditCmd& c) const { PutU64(out, c.through_seq); }
};

// Indexed like CommandBody's alternatives (its index is the kind on the wire).
constexpr uint32_t kCommandLevels[] = {
    1,  // PutSongCmd
    1,  // DeleteSongCmd
    1,  // SetReplicaCmd
    1,  // RemoveReplicaCmd
    1,  // SetReplicationFactorCmd
    1,  // AcquireLockCmd
    1,  // RenewLockCmd
    1,  // ReleaseLockCmd
    1,  // SetDrainingCmd
    4,  // PutUserCmd
    4,  // DeleteUserCmd
    4,  // PutTokenCmd
    4,  // RevokeTokenCmd
    4,  // AppendAuditCmd
    4,  // TrimAuditCmd
};
static_assert(std::size(kCommandLevels) == std::variant_size_v<CommandBody>,
              "a new command kind needs its level in kCommandLevels");
constexpr const char* kCommandNames[] = {
    "put-song",     "delete-song", "set-replica",  "remove-replica", "set-replication-factor",
    "acquire-lock", "renew-lock",  "release-lock", "set-draining",   "put-user",
    "delete-user",  "put-token",   "revoke-token", "append-audit",   "trim-audit"};
static_assert(std::size(kCommandNames) == std::variant_size_v<CommandBody>);

Result<CommandBody> DecodeBody(uint8_t kind, Decoder& d) {
  switch (kind) {
    case 0: {
      PutSongCmd c;
      uint8_t if_absent = 0;
      uint32_t replicas = 0;
      if (!GetSong(d, &c.song) || !d.GetU8(&if_absent) || !d.GetU32(&replicas)) break;
      if (replicas > kMaxReplicationFactor * 4) break;
      c.if_absent = if_absent != 0;
      bool ok = true;
      for (uint32_t i = 0; i < replicas && ok; ++i) {
        uint64_t node = 0;
        ok = d.GetU64(&node);
        c.replicas.emplace_back(node);
      }
      if (!ok) break;
      if (d.remaining() > 0 && (!d.GetString(&c.lock_name) || !d.GetU64(&c.lock_token))) break;
      if (d.remaining() > 0 && !GetLibraryFields(d, &c.song)) break;
      if (d.remaining() > 0 && !d.GetString(&c.song.cover)) break;
      if (d.remaining() > 0 && !d.GetString(&c.uploader)) break;
      return CommandBody{std::move(c)};
    }
    case 1: {
      DeleteSongCmd c;
      if (!d.GetString(&c.file_id)) break;
      if (d.remaining() > 0 && (!d.GetString(&c.lock_name) || !d.GetU64(&c.lock_token))) break;
      return CommandBody{std::move(c)};
    }
    case 2: {
      SetReplicaCmd c;
      uint64_t node = 0;
      uint8_t state = 0;
      if (!d.GetString(&c.replica.file_id) || !d.GetU64(&node) || !d.GetU8(&state)) break;
      if (state > static_cast<uint8_t>(ReplicaState::kMissing)) break;
      c.replica.node = NodeId(node);
      c.replica.state = static_cast<ReplicaState>(state);
      return CommandBody{std::move(c)};
    }
    case 3: {
      RemoveReplicaCmd c;
      uint64_t node = 0;
      if (!d.GetString(&c.file_id) || !d.GetU64(&node)) break;
      c.node = NodeId(node);
      return CommandBody{std::move(c)};
    }
    case 4: {
      SetReplicationFactorCmd c;
      if (!d.GetU32(&c.factor)) break;
      return CommandBody{c};
    }
    case 5: {
      AcquireLockCmd c;
      if (!d.GetString(&c.name) || !d.GetString(&c.owner) || !GetI64(d, &c.ttl_ms)) break;
      if (d.remaining() > 0 && !d.GetString(&c.share_key)) break;
      return CommandBody{std::move(c)};
    }
    case 6: {
      RenewLockCmd c;
      if (!d.GetString(&c.name) || !d.GetString(&c.owner) || !GetI64(d, &c.ttl_ms)) break;
      return CommandBody{std::move(c)};
    }
    case 7: {
      ReleaseLockCmd c;
      if (!d.GetString(&c.name) || !d.GetString(&c.owner)) break;
      return CommandBody{std::move(c)};
    }
    case 8: {
      SetDrainingCmd c;
      uint64_t node = 0;
      uint8_t draining = 0;
      if (!d.GetU64(&node) || !d.GetU8(&draining)) break;
      c.node = NodeId(node);
      c.draining = draining != 0;
      return CommandBody{c};
    }
    case 9: {
      PutUserCmd c;
      uint8_t flags = 0;
      if (!d.GetString(&c.name) || !d.GetString(&c.record) || !d.GetU8(&flags) || flags > 3) break;
      c.if_absent = (flags & 1) != 0;
      c.only_if_first = (flags & 2) != 0;
      return CommandBody{std::move(c)};
    }
    case 10: {
      DeleteUserCmd c;
      if (!d.GetString(&c.name)) break;
      return CommandBody{std::move(c)};
    }
    case 11: {
      PutTokenCmd c;
      if (!d.GetString(&c.id) || !d.GetString(&c.owner) || !d.GetString(&c.record)) break;
      return CommandBody{std::move(c)};
    }
    case 12: {
      RevokeTokenCmd c;
      if (!d.GetString(&c.id) || !d.GetString(&c.owner)) break;
      return CommandBody{std::move(c)};
    }
    case 13: {
      AppendAuditCmd c;
      uint32_t n = 0;
      if (!d.GetU32(&n) || n > kMaxAuditBatch) break;
      bool ok = true;
      c.entries.resize(n);
      for (uint32_t i = 0; i < n && ok; ++i) ok = d.GetString(&c.entries[i]);
      if (!ok) break;
      return CommandBody{std::move(c)};
    }
    case 14: {
      TrimAuditCmd c;
      if (!d.GetU64(&c.through_seq)) break;
      return CommandBody{c};
    }
    default: return Status::InvalidArgument("unknown catalog command kind " + std::to_string(kind));
  }
  return Status::InvalidArgument("truncated catalog command");
}

}  // namespace

std::string EncodeCommand(const Command& cmd) {
  std::string out;
  PutU8(&out, kVersion);
  PutU8(&out, static_cast<uint8_t>(cmd.body.index()));
  PutI64(&out, cmd.now_ms);
  std::visit(Encoder{&out}, cmd.body);
  return out;
}

Result<Command> DecodeCommand(std::string_view data) {
  Decoder d(data);
  uint8_t version = 0;
  uint8_t kind = 0;
  Command cmd;
  if (!d.GetU8(&version) || !d.GetU8(&kind) || !GetI64(d, &cmd.now_ms)) {
    return Status::InvalidArgument("truncated catalog command header");
  }
  if (version != kVersion)
    return Status::InvalidArgument("unknown catalog command version " + std::to_string(version));
  auto body = DecodeBody(kind, d);
  if (!body.ok()) return body.status();
  if (d.remaining() != 0) return Status::InvalidArgument("trailing bytes after a catalog command");
  cmd.body = std::move(body).value();
  return cmd;
}

std::vector<NodeId> ParseNodeList(std::string_view text) {
  std::vector<NodeId> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    uint64_t id = 0;
    if (encoding::ParseU64(text.substr(pos, comma - pos), &id) && id != 0) out.emplace_back(id);
    pos = comma + 1;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string FormatNodeList(const std::vector<NodeId>& nodes) {
  std::string out;
  for (NodeId n : nodes) {
    if (!out.empty()) out += ",";
    out += std::to_string(n.value());
  }
  return out;
}

uint32_t CommandLevelOf(const CommandBody& body) {
  // A put-song with library fields is level 2, with a cover level 3: an older node would find
  // trailing bytes in it and apply it as a no-op, losing the song.
  if (const auto* put = std::get_if<PutSongCmd>(&body); put != nullptr) {
    if (!put->uploader.empty()) return 4;
    if (HasCover(put->song)) return 3;
    if (HasLibraryFields(put->song)) return 2;
  }
  return kCommandLevels[body.index()];
}

std::string UserKey(std::string_view name) {
  return std::string(kUserKeyPrefix) + std::string(name);
}

std::string TokenKey(std::string_view id) {
  return std::string(kTokenKeyPrefix) + std::string(id);
}

std::string UserTokenPrefix(std::string_view owner) {
  return "user-token/" + std::string(owner) + "/";
}

std::string AuditEntryKey(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020llu", static_cast<unsigned long long>(seq));
  return std::string(kAuditEntryPrefix) + buf;
}

std::string UploaderKey(std::string_view file_id) {
  return "uploader/" + std::string(file_id);
}

bool IsValidUserName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
           ch == '_' || ch == '@' || ch == '-';
  });
}

bool IsValidTokenId(std::string_view id) {
  return id.size() == 64 && std::all_of(id.begin(), id.end(), [](char ch) {
           return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
         });
}

const char* CommandName(const CommandBody& body) {
  return kCommandNames[body.index()];
}

}  // namespace dispotify::catalog
