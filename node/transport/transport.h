#pragma once
// How Raft messages leave and reach this node. Implementations: GrpcTransport (real processes)
// and the simulated network of tests/sim.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/ids.h"
#include "node/consensus/types.h"

namespace dispotify::transport {

class Transport {
 public:
  // Called on a transport thread for each message that arrived for this node; several threads
  // (one per sending peer) may call it at once.
  using Handler = std::function<void(consensus::Message&&)>;
  // Called when a peer could not be reached (so the core stops pipelining to it).
  using UnreachableHandler = std::function<void(NodeId)>;

  virtual ~Transport() = default;
  // Never blocks on a slow or dead peer: messages queue per peer, and a full queue drops
  // (Raft recovers from loss).
  virtual void Send(std::vector<consensus::Message> msgs) = 0;
  // The addresses of the current members (self excluded or ignored).
  virtual void UpdatePeers(const std::map<NodeId, std::string>& addresses) = 0;
  virtual void Shutdown() = 0;
};

}  // namespace dispotify::transport
