#pragma once
// The catalog as Raft's replicated state machine: decodes each committed entry's command
// (node/catalog/commands.h), turns it into mutations with the rules below, and applies them to
// the MetadataStore in one transaction together with the entry's index. Apply reads no clock
// (times come from the command) and no other state than the store, so every server computes the
// same mutations.
//
// Rules:
//  - PutSong with if_absent: an existing song with the same sha256 is a success (the retry of a
//    committed upload); with another sha256, kAlreadyExists and no change. The replicas listed in
//    the command are recorded healthy in the same transaction as the song.
//  - DeleteSong removes the song and its replica records (the blobs are removed by repair).
//  - SetReplica / RemoveReplica record where copies are and their state; the song must exist.
//  - SetReplicationFactor: 1..16, stored as the setting "replication_factor" (default 3).
//  - Locks: Acquire succeeds if the lock is absent, expired (expires_at <= now), or held by the
//    same owner (a renewal); each new holder gets a larger fencing token. Renew only by the
//    unexpired owner. Release only by the owner; releasing an absent or expired lock is OK.
//    The result value of Acquire/Renew is the fencing token in decimal.
//  - Entries of other types (no-op, membership) and malformed commands change nothing but the
//    applied index; a malformed command's result is kInvalidArgument.
// A store failure (I/O, disk full) is fatal: ApplyResult::fatal is set and the node stops. A store
// that is only unavailable (kUnavailable / kTimeout: PostgreSQL restarting) is retried with
// backoff for up to unavailable_budget before that.

#include <atomic>
#include <chrono>
#include <memory>

#include "common/audit/chain.h"
#include "node/catalog/commands.h"
#include "node/catalog/metadata_store.h"
#include "node/consensus/state_machine.h"

namespace dispotify::catalog {

class CatalogStateMachine final : public consensus::StateMachine {
 public:
  // `store` must outlive the state machine.
  static Result<std::unique_ptr<CatalogStateMachine>> Open(MetadataStore* store);
  void set_unavailable_budget(std::chrono::milliseconds budget) { unavailable_budget_ = budget; }

  consensus::ApplyResult Apply(const consensus::Entry& entry) override;
  Status SaveSnapshot(consensus::SnapshotSink& sink) override;
  Status Restore(const std::string& path) override;
  LogIndex applied_index() const override { return LogIndex(applied_.load(std::memory_order_acquire)); }

  // The replication factor in force (as of the last applied entry).
  uint32_t replication_factor() const { return factor_.load(std::memory_order_acquire); }
  MetadataStore& store() { return *store_; }

 private:
  explicit CatalogStateMachine(MetadataStore* store) : store_(store) {}
  Status RefreshCachedState();
  consensus::ApplyResult ApplyOnce(const consensus::Entry& entry);
  // Computes the mutations of `cmd`; a rejected command yields a non-OK status and no mutations.
  Status Plan(const Command& cmd, std::vector<Mutation>* mutations, std::string* value);
  // OK when `token` is 0 (no fence) or names the live holder of `lock_name` at `now`;
  // kFailedPrecondition otherwise.
  Status CheckFence(const std::string& lock_name, uint64_t token, int64_t now);
  // The audit chain's head or checkpoint setting; {0, zeros} when absent.
  Result<audit::ChainHead> ReadAuditHead(std::string_view key);

  MetadataStore* store_;
  std::atomic<uint64_t> applied_{0};
  std::atomic<uint32_t> factor_{kDefaultReplicationFactor};
  std::chrono::milliseconds unavailable_budget_{60000};
};

}  // namespace dispotify::catalog
