#pragma once
// catalog::Proposer over this node's RaftNode: on the leader the command is proposed locally; on
// a follower it goes to the leader's Cluster.Propose (the leader stamps its clock into it), then
// this node waits until it has applied the entry. NotLeader, a proposal replaced by another
// leader's entry and an unreachable leader are retried with backoff until the timeout; a result
// that may or may not have committed is returned as kCommitUnknown (the caller knows whether its
// command is safe to repeat). CatchUp asks the leader for its read index (Cluster.ReadIndex on a
// follower; concurrent callers share one round, see read_batcher.h) and waits for the local apply.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "node/catalog/proposer.h"
#include "node/server/command_levels.h"
#include "node/server/read_batcher.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace dispotify::server {

class RaftNode;

// The leader's side of a proposal: decodes `command`, stamps the leader's wall clock into it and
// re-encodes it; kInvalidArgument for bytes that are not a catalog command, and what `gate` says
// (kFailedPrecondition) for a command some member's version does not know yet.
Result<std::string> PrepareCatalogCommand(std::string_view command, const CommandLevelGate& gate = {});

class CatalogProposer final : public catalog::Proposer {
 public:
  // `credentials`: the node's channel credentials for forwarding to the leader (null: plaintext).
  explicit CatalogProposer(RaftNode* node, CommandLevelGate gate = {},
                           std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  ~CatalogProposer() override;

  Result<std::string> Propose(const catalog::CommandBody& body, std::chrono::milliseconds timeout) override;
  bool HasLeader() const override;
  Status CatchUp(std::chrono::milliseconds timeout) override;
  catalog::ReadStats read_stats() const override;

 private:
  struct Channels;
  // One attempt through the local Raft node (this node is the leader).
  Result<std::string> ProposeLocally(const std::string& command,
                                     std::chrono::steady_clock::time_point deadline);
  // One attempt through the leader at `address`; on success waits for the local apply.
  Result<std::string> ProposeRemotely(const std::string& address, const std::string& command,
                                      std::chrono::steady_clock::time_point deadline);

  // The read index from the local Raft node (this node is the leader; it has applied it) or from
  // the leader at `address`.
  Result<LogIndex> ReadIndexLocally(std::chrono::steady_clock::time_point deadline);
  Result<LogIndex> ReadIndexRemotely(const std::string& address,
                                     std::chrono::steady_clock::time_point deadline);
  // Runs `local` (this node leads) or `remote` (with the leader's address) until one answers
  // with something other than a transient failure (NotLeader, Retry, Unavailable), retrying with
  // jittered backoff. nullopt when the deadline passed first; `last` then holds the last failure.
  template <typename T>
  std::optional<Result<T>> ThroughLeader(std::chrono::steady_clock::time_point deadline,
                                         const std::function<Result<T>()>& local,
                                         const std::function<Result<T>(const std::string&)>& remote,
                                         Status* last);
  // One read round (ReadBatcher's fetch): the leader's confirmed read index, through the leader.
  Result<LogIndex> FetchReadIndex(std::chrono::steady_clock::time_point deadline);
  // Waits until this node applied `index`; kTimeout at the deadline.
  Status WaitApplied(LogIndex index, std::chrono::steady_clock::time_point deadline) const;

  RaftNode* node_;
  const CommandLevelGate gate_;
  std::unique_ptr<Channels> channels_;
  std::unique_ptr<ReadBatcher> reads_;
  std::atomic<uint64_t> read_failures_{0};
};

}  // namespace dispotify::server
