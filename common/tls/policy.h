#pragma once
// Which peer may call which node-to-node service, from the identity in its client certificate
// (pki.h) and this node's view of the membership. Pure: the caller supplies the membership it holds
// at the time of the call, so the decision follows configuration changes without a cache here.
//
// The TLS handshake has already proved that the peer holds a key certified by our CA; this decides
// what that certificate is good for:
// - Raft and replication: only current members of this cluster. A removed node keeps a valid
//   certificate until it expires, and must not be able to vote, append or push blobs with it.
// - Join (asking to be added to the membership): any node identity of this cluster, member or not,
//   since a joiner is by definition not a member yet.
// - Another cluster's identity: never, even if its certificate chains to our CA (a CA shared by
//   mistake between clusters, or a copied trust bundle).

#include <cstdint>
#include <set>
#include <string_view>

#include "common/ids.h"
#include "common/tls/pki.h"

namespace dispotify::tls {

enum class Service : uint8_t {
  kRaft,
  kReplication,
  kJoin,
};

enum class DecisionReason : uint8_t {
  kMember,        // allowed: a current member
  kJoiningNode,   // allowed: a node of this cluster asking to join
  kOtherCluster,  // refused
  kNotANode,      // refused: a client identity (operator, admin) on node-to-node traffic
  kNotAMember,    // refused: a node of this cluster outside the current membership
};

struct Decision {
  bool allowed = false;
  DecisionReason reason = DecisionReason::kNotAMember;
  bool operator==(const Decision&) const = default;
};

std::string_view ServiceName(Service service);
// A stable, lower-case name for logs, audit entries and metric labels.
std::string_view DecisionReasonName(DecisionReason reason);

Decision AllowPeer(const Identity& peer, std::string_view cluster_id, Service service,
                   const std::set<NodeId>& members);

}  // namespace dispotify::tls
