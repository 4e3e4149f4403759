#pragma once
// The one place a node (and its gRPC clients: dispotify-kvctl, the e2e tests) turns its TLS files
// into gRPC credentials, and judges who called. Every gRPC server and channel of the node is built
// from one GrpcSecurity, so no call site can fall back to plaintext by accident.
//
// Files and rotation: ReloadingCredentials (credentials.h) watches the operator's / script's
// files and adopts only whole, valid sets; each adopted set is published under `publish_dir`
// (publish.h), and gRPC 1.51's FileWatcherCertificateProvider watches the published copy. Two
// pollers in a row (ours, then gRPC's, at most 1 s apart) is the price of never handing gRPC a
// half-written set: the handshake keeps using the previous certificate until both have moved,
// and open connections are not touched, so a rotation fails no request.
//
// Handshake: TLS 1.2 minimum, 1.3 whenever both ends have it (gRPC 1.51's defaults for its TLS
// credentials; its C++ API has no setter for them). Both sides present a certificate and verify
// the peer's chain against the CA file.
//
// Server side: the handshake proves only "certified by our CA". Who may call what is decided per
// RPC, in the service handler, by PeerAuthorizer::Check on ServerContext::auth_context(): the rule
// depends on the method (join vs the rest) and on the membership at the time of the call, and a
// handler knows both, while an AuthMetadataProcessor sees neither the method reliably nor our
// membership, and a 1.51 server interceptor cannot fail a call with a status of its choosing.
//
// Client side: a custom verifier accepts a server whose certificate names a node of this cluster
// (any node, not the one the caller meant). Channels are made per address, and several addresses
// are not tied to one node id: join seeds (a Service or DNS name standing for several nodes), the
// leader hint in a redirect, a restarted pod at a new IP. What the client must not do is hand
// data to something outside the cluster; a member impersonating another member needs that
// member's key, and the server side refuses non-members anyway. Host names are not checked
// (check_call_host off): peers are addressed by IPs and names the certificate need not list.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/ids.h"
#include "common/status.h"
#include "common/tls/credentials.h"
#include "common/tls/pki.h"
#include "common/tls/policy.h"

namespace grpc {
class AuthContext;
class ChannelCredentials;
class ServerContextBase;
class ServerCredentials;
class Status;
}  // namespace grpc

namespace dispotify::tls {

struct GrpcSecurityOptions {
  // Off: plaintext gRPC, every caller allowed (insecure_grpc: true). The rest is then unused.
  bool enabled = true;
  CredentialFiles files;
  std::string cluster_id;
  // When set, the certificate must name exactly this identity (a node's own certificate).
  std::optional<Identity> expected_identity;
  // Where the validated copy for gRPC's file watcher lives (a private directory of the node's).
  std::string publish_dir;
  // How often the files are looked at for a rotation.
  std::chrono::milliseconds poll_interval = std::chrono::seconds(10);
  // Called after each adopted rotation (on the polling thread).
  std::function<void(const CredentialBundle&)> on_rotate;
};

class GrpcSecurity {
 public:
  // Loads and validates the files (the first load must succeed), publishes them and starts the
  // poller. A disabled one loads nothing.
  static Result<std::shared_ptr<GrpcSecurity>> Create(GrpcSecurityOptions options);
  // Plaintext, for tests and insecure_grpc: true.
  static std::shared_ptr<GrpcSecurity> Insecure();
  ~GrpcSecurity();
  GrpcSecurity(const GrpcSecurity&) = delete;
  GrpcSecurity& operator=(const GrpcSecurity&) = delete;

  bool enabled() const { return options_.enabled; }
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() const;
  // The current certificate's notAfter (seconds since the epoch); 0 when disabled.
  double not_after_seconds() const;
  // The identity this process presents; nullopt when disabled.
  std::optional<Identity> identity() const;
  // Looks at the files now (tests; the poller does it every poll_interval).
  Status Poll();

 private:
  explicit GrpcSecurity(GrpcSecurityOptions options);
  GrpcSecurityOptions options_;
  std::unique_ptr<ReloadingCredentials> credentials_;
  std::shared_ptr<grpc::ServerCredentials> server_creds_;
  std::shared_ptr<grpc::ChannelCredentials> channel_creds_;
};

// The identity in the client certificate of a call's TLS connection (strictly parsed, pki.h).
// Refused when the connection is plaintext or the certificate names no identity.
Result<Identity> PeerIdentityOf(const grpc::AuthContext& auth);

// Who may call: judged per RPC from the caller's certificate and the membership as this node sees
// it at that moment (policy.h), so a node the leader has just added is allowed from the call
// after its configuration entry reaches this node, and a removed one is refused from then on.
class PeerAuthorizer {
 public:
  // `members`: the current configuration's ids (voters and learners).
  PeerAuthorizer(std::string cluster_id, NodeId self, std::function<std::set<NodeId>()> members);

  // OK, or PERMISSION_DENIED / UNAUTHENTICATED naming the reason (also logged).
  //
  // One exception to "members only" for Raft and replication: while this node is not in its own
  // membership (it is joining, and knows no configuration yet), any node of the cluster is
  // accepted, since the leader that adds it is not a member in its eyes until the leader's log
  // reaches it, and nothing is on this node yet that a stranger could read or overwrite.
  grpc::Status Check(const grpc::ServerContextBase& ctx, Service service) const;
  // The same decision from a parsed identity (unit tests, and Check's core).
  Decision Decide(const Identity& peer, Service service) const;

 private:
  const std::string cluster_id_;
  const NodeId self_;
  const std::function<std::set<NodeId>()> members_;
};

// For a service that may run without an authorizer (insecure_grpc, unit tests): nullptr allows.
grpc::Status CheckPeer(const PeerAuthorizer* authorizer, const grpc::ServerContextBase& ctx, Service service);

// A client certificate for a tool (dispotify-kvctl, tests): TLS channel credentials from files,
// loaded once, verifying that the server is a node of `cluster_id`.
Result<std::shared_ptr<grpc::ChannelCredentials>> ClientChannelCredentials(const CredentialFiles& files,
                                                                           const std::string& cluster_id);

}  // namespace dispotify::tls
