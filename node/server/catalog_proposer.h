#pragma once
// catalog::Proposer over this node's RaftNode: on the leader the command is proposed locally; on
// a follower it goes to the leader's Cluster.Propose (the leader stamps its clock into it), then
// this node waits until it has applied the entry. NotLeader, a proposal replaced by another
// leader's entry and an unreachable leader are retried with backoff until the timeout; a result
// that may or may not have committed is returned as kCommitUnknown (the caller knows whether its
// command is safe to repeat).

#include <chrono>
#include <memory>
#include <string>

#include "node/catalog/proposer.h"

namespace dispotify::server {

class RaftNode;

// The leader's side of a proposal: decodes `command`, stamps the leader's wall clock into it and
// re-encodes it; kInvalidArgument for bytes that are not a catalog command.
Result<std::string> PrepareCatalogCommand(std::string_view command);

class CatalogProposer final : public catalog::Proposer {
 public:
  explicit CatalogProposer(RaftNode* node);
  ~CatalogProposer() override;

  Result<std::string> Propose(const catalog::CommandBody& body, std::chrono::milliseconds timeout) override;
  bool HasLeader() const override;

 private:
  struct Channels;
  // One attempt through the local Raft node (this node is the leader).
  Result<std::string> ProposeLocally(const std::string& command,
                                     std::chrono::steady_clock::time_point deadline);
  // One attempt through the leader at `address`; on success waits for the local apply.
  Result<std::string> ProposeRemotely(const std::string& address, const std::string& command,
                                      std::chrono::steady_clock::time_point deadline);

  RaftNode* node_;
  std::unique_ptr<Channels> channels_;
};

}  // namespace dispotify::server
