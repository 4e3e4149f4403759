#include "node/catalog/catalog_state_machine.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <type_traits>

#include "common/audit/entry.h"
#include "common/encoding.h"
#include "common/logging.h"
#include "common/sha256.h"

namespace dispotify::catalog {
namespace {

constexpr const char* kReplicationFactorKey = "replication_factor";

bool IsStoreFailure(const Status& s) {
  return s.code() == StatusCode::kIoError || s.code() == StatusCode::kNoSpace ||
         s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kTimeout ||
         s.code() == StatusCode::kCorruption;
}

Mutation PutSongMutation(Song song) {
  Mutation m;
  m.kind = Mutation::Kind::kPutSong;
  m.song = std::move(song);
  return m;
}

Mutation KeyMutation(Mutation::Kind kind, std::string key, std::string value = {}) {
  Mutation m;
  m.kind = kind;
  m.key = std::move(key);
  m.value = std::move(value);
  return m;
}

}  // namespace

Result<audit::ChainHead> CatalogStateMachine::ReadAuditHead(std::string_view key) {
  auto v = store_->GetSetting(key);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return audit::ChainHead{};
  auto head = audit::ParseHead(**v);
  if (!head) return Status::Corruption(std::string(key) + " is damaged");
  return *head;
}

Result<std::unique_ptr<CatalogStateMachine>> CatalogStateMachine::Open(MetadataStore* store) {
  std::unique_ptr<CatalogStateMachine> sm(new CatalogStateMachine(store));
  DISPOTIFY_RETURN_IF_ERROR(sm->RefreshCachedState());
  return sm;
}

Status CatalogStateMachine::RefreshCachedState() {
  auto applied = store_->AppliedIndex();
  if (!applied.ok()) return applied.status();
  auto factor = store_->GetSetting(kReplicationFactorKey);
  if (!factor.ok()) return factor.status();
  uint64_t f = kDefaultReplicationFactor;
  if (factor->has_value() && !encoding::ParseU64(**factor, &f)) {
    return Status::Corruption("stored replication factor is not a number: " + **factor);
  }
  factor_.store(static_cast<uint32_t>(f), std::memory_order_release);
  applied_.store(applied->value(), std::memory_order_release);
  return Status::Ok();
}

consensus::ApplyResult CatalogStateMachine::Apply(const consensus::Entry& entry) {
  // A store that is unreachable for a while (a PostgreSQL restart, a failover) stalls apply
  // rather than stopping the node: the entry is retried until the store is back or the budget
  // runs out. Nothing later can be applied meanwhile, so waiting keeps the order intact.
  const auto give_up = std::chrono::steady_clock::now() + unavailable_budget_;
  auto pause = std::chrono::milliseconds(50);
  while (true) {
    consensus::ApplyResult result = ApplyOnce(entry);
    const bool transient = result.fatal && (result.status.code() == StatusCode::kUnavailable ||
                                            result.status.code() == StatusCode::kTimeout);
    if (!transient || std::chrono::steady_clock::now() + pause > give_up) return result;
    DLOG_WARN << "catalog store unavailable while applying entry " << entry.index.value() << " ("
              << result.status.message() << "); retrying in " << pause.count() << " ms";
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(2000));
  }
}

consensus::ApplyResult CatalogStateMachine::ApplyOnce(const consensus::Entry& entry) {
  consensus::ApplyResult result;
  if (entry.index <= applied_index()) return result;  // replayed after a restart: already in the store

  std::vector<Mutation> mutations;
  std::optional<uint32_t> new_factor;
  if (entry.type == consensus::EntryType::kNormal) {
    auto cmd = DecodeCommand(entry.data);
    if (!cmd.ok()) {
      result.status = cmd.status();
    } else {
      result.status = Plan(*cmd, &mutations, &result.value);
      if (IsStoreFailure(result.status)) {
        result.fatal = true;
        return result;
      }
      if (!result.status.ok()) mutations.clear();
      if (auto* f = std::get_if<SetReplicationFactorCmd>(&cmd->body); f != nullptr && result.status.ok()) {
        new_factor = f->factor;
      }
    }
  }
  Status st = store_->Apply(entry.index, mutations);
  if (st.code() == StatusCode::kInvalidArgument && !mutations.empty()) {
    // The store refused the command's mutations (it validates what the rules above do not): the
    // entry is committed on every server, so it is applied as a no-op everywhere, never fatal.
    result.status = st;
    mutations.clear();
    new_factor.reset();
    st = store_->Apply(entry.index, mutations);
  }
  if (!st.ok()) {
    result.status = st;
    result.fatal = true;
    return result;
  }
  if (new_factor) factor_.store(*new_factor, std::memory_order_release);
  applied_.store(entry.index.value(), std::memory_order_release);
  return result;
}

Status CatalogStateMachine::CheckFence(const std::string& lock_name, uint64_t token, int64_t now) {
  if (token == 0) return Status::Ok();
  auto held = store_->GetLock(lock_name);
  if (!held.ok()) return held.status();
  if (!held->has_value() || (*held)->token != token || (*held)->expires_at_ms <= now) {
    return Status::FailedPrecondition("the upload's lease on " + lock_name +
                                      " lapsed or was taken over; its change is refused");
  }
  return Status::Ok();
}

Status CatalogStateMachine::Plan(const Command& cmd, std::vector<Mutation>* mutations, std::string* value) {
  const int64_t now = cmd.now_ms;
  return std::visit(
      [&](const auto& c) -> Status {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, PutSongCmd>) {
          if (!IsValidFileId(c.song.file_id)) return Status::InvalidArgument("invalid file_id");
          DISPOTIFY_RETURN_IF_ERROR(CheckFence(c.lock_name, c.lock_token, now));
          if (c.if_absent) {
            auto existing = store_->GetSong(c.song.file_id);
            if (!existing.ok()) return existing.status();
            if (existing->has_value()) {
              if ((*existing)->sha256 == c.song.sha256) return Status::Ok();  // a retried upload
              return Status::AlreadyExists("file_id " + c.song.file_id + " exists with other content");
            }
          }
          Song song = c.song;
          if (song.created_at_ms == 0) song.created_at_ms = now;
          const std::string file_id = song.file_id;
          if (!c.uploader.empty()) {
            if (!IsValidUserName(c.uploader)) return Status::InvalidArgument("invalid uploader name");
            // The first uploader owns the song; a replacement by someone allowed to does not take it.
            auto owner = store_->GetSetting(UploaderKey(file_id));
            if (!owner.ok()) return owner.status();
            if (!owner->has_value()) {
              mutations->push_back(
                  KeyMutation(Mutation::Kind::kPutSetting, UploaderKey(file_id), c.uploader));
            }
          }
          mutations->push_back(PutSongMutation(std::move(song)));
          for (NodeId node : c.replicas) {
            if (node == kNoNode) return Status::InvalidArgument("replica without a node");
            Mutation m;
            m.kind = Mutation::Kind::kPutReplica;
            m.replica = Replica{file_id, node, ReplicaState::kHealthy, now};
            mutations->push_back(std::move(m));
          }
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, DeleteSongCmd>) {
          DISPOTIFY_RETURN_IF_ERROR(CheckFence(c.lock_name, c.lock_token, now));
          auto existing = store_->GetSong(c.file_id);
          if (!existing.ok()) return existing.status();
          if (!existing->has_value()) return Status::NotFound("no song " + c.file_id);
          mutations->push_back(KeyMutation(Mutation::Kind::kDeleteSong, c.file_id));
          mutations->push_back(KeyMutation(Mutation::Kind::kDeleteSetting, UploaderKey(c.file_id)));
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, SetReplicaCmd>) {
          auto existing = store_->GetSong(c.replica.file_id);
          if (!existing.ok()) return existing.status();
          if (!existing->has_value()) return Status::NotFound("no song " + c.replica.file_id);
          if (c.replica.node == kNoNode) return Status::InvalidArgument("replica without a node");
          Mutation m;
          m.kind = Mutation::Kind::kPutReplica;
          m.replica = c.replica;
          m.replica.updated_at_ms = now;
          mutations->push_back(std::move(m));
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, RemoveReplicaCmd>) {
          Mutation m;
          m.kind = Mutation::Kind::kDeleteReplica;
          m.replica.file_id = c.file_id;
          m.replica.node = c.node;
          mutations->push_back(std::move(m));
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, SetReplicationFactorCmd>) {
          if (c.factor < 1 || c.factor > kMaxReplicationFactor) {
            return Status::InvalidArgument("replication factor must be 1.." +
                                           std::to_string(kMaxReplicationFactor));
          }
          mutations->push_back(
              KeyMutation(Mutation::Kind::kPutSetting, kReplicationFactorKey, std::to_string(c.factor)));
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, SetDrainingCmd>) {
          if (c.node == kNoNode) return Status::InvalidArgument("draining needs a node id");
          auto current = store_->GetSetting(kDrainingNodesKey);
          if (!current.ok()) return current.status();
          std::vector<NodeId> nodes = ParseNodeList(current->value_or(""));
          auto it = std::find(nodes.begin(), nodes.end(), c.node);
          if (c.draining && it == nodes.end()) nodes.push_back(c.node);
          if (!c.draining && it != nodes.end()) nodes.erase(it);
          std::sort(nodes.begin(), nodes.end());
          mutations->push_back(
              KeyMutation(Mutation::Kind::kPutSetting, kDrainingNodesKey, FormatNodeList(nodes)));
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, AcquireLockCmd> || std::is_same_v<T, RenewLockCmd>) {
          if (c.name.empty() || c.owner.empty())
            return Status::InvalidArgument("lock name and owner are required");
          if (c.ttl_ms <= 0 || c.ttl_ms > kMaxLockTtlMs)
            return Status::InvalidArgument("lock TTL out of range");
          auto held = store_->GetLock(c.name);
          if (!held.ok()) return held.status();
          const bool live = held->has_value() && (*held)->expires_at_ms > now;
          const bool mine = live && (*held)->owner == c.owner;
          if constexpr (std::is_same_v<T, RenewLockCmd>) {
            if (!mine) return Status::FailedPrecondition("lock " + c.name + " is not held by " + c.owner);
          } else {
            const bool shared = live && !c.share_key.empty() && (*held)->owner.size() > c.share_key.size() &&
                                (*held)->owner.compare(0, c.share_key.size() + 1, c.share_key + "/") == 0;
            if (live && !mine && !shared)
              return Status::FailedPrecondition("lock " + c.name + " is held by " + (*held)->owner);
          }
          Lock lock;
          lock.name = c.name;
          lock.owner = c.owner;
          lock.expires_at_ms = now + c.ttl_ms;
          // A renewal keeps its token; a new holder gets a larger one than any before.
          lock.token = mine ? (*held)->token : (held->has_value() ? (*held)->token + 1 : 1);
          *value = std::to_string(lock.token);
          Mutation m;
          m.kind = Mutation::Kind::kPutLock;
          m.lock = std::move(lock);
          mutations->push_back(std::move(m));
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, PutUserCmd>) {
          if (!IsValidUserName(c.name)) return Status::InvalidArgument("invalid user name");
          if (c.record.empty() || c.record.size() > kMaxSettingBytes) {
            return Status::InvalidArgument("invalid user record");
          }
          if (c.only_if_first) {
            auto any = store_->ListSettings(kUserKeyPrefix, "", 1);
            if (!any.ok()) return any.status();
            if (!any->empty()) return Status::AlreadyExists("the cluster already has users");
          }
          if (c.if_absent) {
            auto existing = store_->GetSetting(UserKey(c.name));
            if (!existing.ok()) return existing.status();
            if (existing->has_value()) return Status::AlreadyExists("user " + c.name + " exists");
          }
          mutations->push_back(KeyMutation(Mutation::Kind::kPutSetting, UserKey(c.name), c.record));
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, DeleteUserCmd>) {
          auto existing = store_->GetSetting(UserKey(c.name));
          if (!existing.ok()) return existing.status();
          if (!existing->has_value()) return Status::NotFound("no user " + c.name);
          mutations->push_back(KeyMutation(Mutation::Kind::kDeleteSetting, UserKey(c.name)));
          const std::string prefix = UserTokenPrefix(c.name);
          std::string after;
          while (true) {
            auto page = store_->ListSettings(prefix, after, 1000);
            if (!page.ok()) return page.status();
            for (const auto& [key, unused] : *page) {
              mutations->push_back(KeyMutation(Mutation::Kind::kDeleteSetting, key));
              mutations->push_back(
                  KeyMutation(Mutation::Kind::kDeleteSetting, TokenKey(key.substr(prefix.size()))));
            }
            if (page->size() < 1000) break;
            after = page->back().first;
          }
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, PutTokenCmd>) {
          if (!IsValidTokenId(c.id)) return Status::InvalidArgument("invalid token id");
          if (c.record.empty() || c.record.size() > kMaxSettingBytes) {
            return Status::InvalidArgument("invalid token record");
          }
          auto owner = store_->GetSetting(UserKey(c.owner));
          if (!owner.ok()) return owner.status();
          if (!owner->has_value()) return Status::NotFound("no user " + c.owner);
          auto existing = store_->GetSetting(TokenKey(c.id));
          if (!existing.ok()) return existing.status();
          if (existing->has_value()) return Status::AlreadyExists("token exists");
          mutations->push_back(KeyMutation(Mutation::Kind::kPutSetting, TokenKey(c.id), c.record));
          mutations->push_back(KeyMutation(Mutation::Kind::kPutSetting, UserTokenPrefix(c.owner) + c.id, ""));
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, RevokeTokenCmd>) {
          if (!IsValidTokenId(c.id)) return Status::InvalidArgument("invalid token id");
          mutations->push_back(KeyMutation(Mutation::Kind::kDeleteSetting, TokenKey(c.id)));
          if (IsValidUserName(c.owner)) {
            mutations->push_back(
                KeyMutation(Mutation::Kind::kDeleteSetting, UserTokenPrefix(c.owner) + c.id));
          }
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, AppendAuditCmd>) {
          auto head = ReadAuditHead(kAuditHeadKey);
          if (!head.ok()) return head.status();
          audit::ChainHead h = *head;
          for (const std::string& bytes : c.entries) {
            auto entry = audit::Decode(bytes);
            if (!entry.ok()) return Status::InvalidArgument("audit entry: " + entry.status().message());
            auto linked = audit::AppendEntry(h, std::move(entry).value());
            if (!linked.ok()) return linked.status();
            auto encoded = audit::Encode(*linked);
            if (!encoded.ok()) return encoded.status();
            mutations->push_back(
                KeyMutation(Mutation::Kind::kPutSetting, AuditEntryKey(linked->seq), *encoded));
            h = audit::HeadOf(*linked);
          }
          mutations->push_back(
              KeyMutation(Mutation::Kind::kPutSetting, std::string(kAuditHeadKey), audit::FormatHead(h)));
          *value = std::to_string(h.seq);
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, TrimAuditCmd>) {
          auto head = ReadAuditHead(kAuditHeadKey);
          auto checkpoint = ReadAuditHead(kAuditCheckpointKey);
          if (!head.ok()) return head.status();
          if (!checkpoint.ok()) return checkpoint.status();
          if (c.through_seq > head->seq) return Status::InvalidArgument("trim past the audit head");
          if (c.through_seq <= checkpoint->seq) return Status::Ok();  // already trimmed
          if (c.through_seq - checkpoint->seq > kMaxAuditTrim) {
            return Status::InvalidArgument("trim at most " + std::to_string(kMaxAuditTrim) +
                                           " audit entries at once");
          }
          auto last = store_->GetSetting(AuditEntryKey(c.through_seq));
          if (!last.ok()) return last.status();
          if (!last->has_value()) return Status::NotFound("no audit entry " + std::to_string(c.through_seq));
          auto entry = audit::Decode(**last);
          if (!entry.ok())
            return Status::Corruption("audit entry " + std::to_string(c.through_seq) + " is damaged");
          for (uint64_t seq = checkpoint->seq + 1; seq <= c.through_seq; ++seq) {
            mutations->push_back(KeyMutation(Mutation::Kind::kDeleteSetting, AuditEntryKey(seq)));
          }
          mutations->push_back(KeyMutation(Mutation::Kind::kPutSetting, std::string(kAuditCheckpointKey),
                                           audit::FormatHead(audit::HeadOf(*entry))));
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, ReleaseLockCmd>) {
          auto held = store_->GetLock(c.name);
          if (!held.ok()) return held.status();
          if (!held->has_value() || (*held)->expires_at_ms <= now) return Status::Ok();
          if ((*held)->owner != c.owner) {
            return Status::FailedPrecondition("lock " + c.name + " is held by " + (*held)->owner);
          }
          // Keep the record (expired now) so the next holder's token still grows.
          Mutation m;
          m.kind = Mutation::Kind::kPutLock;
          m.lock = **held;
          m.lock.expires_at_ms = now;
          mutations->push_back(std::move(m));
          return Status::Ok();
        }
      },
      cmd.body);
}

Status CatalogStateMachine::SaveSnapshot(consensus::SnapshotSink& sink) {
  return store_->Dump([&sink](std::string_view bytes) { return sink.Write(bytes); });
}

Status CatalogStateMachine::Restore(const std::string& path) {
  DISPOTIFY_RETURN_IF_ERROR(store_->Load(path));
  return RefreshCachedState();
}

}  // namespace dispotify::catalog
