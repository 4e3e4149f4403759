#include "common/tls/grpc_credentials.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "common/logging.h"
#include "common/tls/publish.h"

namespace dispotify::tls {
namespace {

// Accepts a peer whose certificate (already chain-verified by gRPC against our CA) names a node of
// `cluster_id`. Runs on both sides: the server refuses another cluster's certificate at the
// handshake already (the per-RPC check would refuse it too, later and at more cost), the client
// refuses to talk to anything but a node of its cluster (see the header for why not one node).
class ClusterVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit ClusterVerifier(std::string cluster_id) : cluster_id_(std::move(cluster_id)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    *sync_status = Check(request);
    return true;  // synchronous: parsing one certificate needs no other thread
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  grpc::Status Check(grpc::experimental::TlsCustomVerificationCheckRequest* request) const {
    const grpc::string_ref pem = request->peer_cert();
    auto cert = CertFromPem(std::string_view(pem.data(), pem.size()));
    if (!cert.ok())
      return {grpc::StatusCode::UNAUTHENTICATED, "peer certificate: " + cert.status().message()};
    auto identity = ParseIdentity(cert->get());
    if (!identity.ok()) {
      return {grpc::StatusCode::UNAUTHENTICATED,
              "peer certificate names no identity: " + identity.status().message()};
    }
    if (identity->cluster_id != cluster_id_) {
      return {grpc::StatusCode::UNAUTHENTICATED,
              "peer " + identity->Uri() + " is not of cluster '" + cluster_id_ + "'"};
    }
    if (!identity->is_node() || !identity->node_id()) {
      return {grpc::StatusCode::UNAUTHENTICATED, "peer " + identity->Uri() + " is not a node"};
    }
    return grpc::Status::OK;
  }

  const std::string cluster_id_;
};

std::shared_ptr<grpc::experimental::CertificateVerifier> NewClusterVerifier(const std::string& cluster_id) {
  return grpc::experimental::ExternalCertificateVerifier::Create<ClusterVerifier>(cluster_id);
}

std::shared_ptr<grpc::ChannelCredentials> TlsChannel(
    std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider,
    const std::string& cluster_id) {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(std::move(provider));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);  // the chain, against our CA
  options.set_certificate_verifier(NewClusterVerifier(cluster_id));
  options.set_check_call_host(false);  // peers are reached by addresses the certificate need not list
  return grpc::experimental::TlsCredentials(options);
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace

GrpcSecurity::GrpcSecurity(GrpcSecurityOptions options) : options_(std::move(options)) {}

GrpcSecurity::~GrpcSecurity() {
  if (credentials_) credentials_->Stop();
}

std::shared_ptr<GrpcSecurity> GrpcSecurity::Insecure() {
  GrpcSecurityOptions options;
  options.enabled = false;
  std::shared_ptr<GrpcSecurity> security(new GrpcSecurity(std::move(options)));
  security->server_creds_ = grpc::InsecureServerCredentials();
  security->channel_creds_ = grpc::InsecureChannelCredentials();
  return security;
}

Result<std::shared_ptr<GrpcSecurity>> GrpcSecurity::Create(GrpcSecurityOptions options) {
  if (!options.enabled) return Insecure();
  if (options.files.cert.empty() || options.files.key.empty() || options.files.ca.empty())
    return Status::InvalidArgument("TLS needs a certificate, a key and a CA file");
  if (options.publish_dir.empty()) return Status::InvalidArgument("TLS needs a directory to publish to");
  std::shared_ptr<GrpcSecurity> security(new GrpcSecurity(std::move(options)));
  const GrpcSecurityOptions& o = security->options_;

  ReloadingCredentials::Options ropts;
  ropts.poll_interval = o.poll_interval;
  ropts.expected_identity = o.expected_identity;
  const std::string dir = o.publish_dir;
  auto on_rotate = o.on_rotate;
  ropts.on_change = [dir, on_rotate](const std::shared_ptr<const CredentialBundle>& bundle) {
    // Published only once adopted whole: gRPC's watcher then sees the new set within a second.
    if (Status st = PublishBundle(*bundle, dir); !st.ok()) {
      DLOG_ERROR << "TLS rotation: cannot publish the new certificate for gRPC: " << st.ToString()
                 << " (the previous one stays in use)";
      return;
    }
    if (on_rotate) on_rotate(*bundle);
  };
  auto loaded = ReloadingCredentials::Load(o.files, std::move(ropts));
  if (!loaded.ok()) return loaded.status();
  security->credentials_ = std::move(loaded).value();
  DISPOTIFY_RETURN_IF_ERROR(PublishBundle(*security->credentials_->Current(), dir));

  const PublishedPaths paths = PublishedFiles(dir);
  // gRPC polls in whole seconds; 1 s is its floor and keeps the second hop of a rotation short.
  const auto refresh_s = static_cast<unsigned>(
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(o.poll_interval).count()));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(paths.key, paths.cert,
                                                                                       paths.ca, refresh_s);
  grpc::experimental::TlsServerCredentialsOptions server_options(provider);
  server_options.watch_root_certs();
  server_options.watch_identity_key_cert_pairs();
  server_options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  server_options.set_certificate_verifier(NewClusterVerifier(o.cluster_id));
  server_options.set_check_call_host(false);
  security->server_creds_ = grpc::experimental::TlsServerCredentials(server_options);
  security->channel_creds_ = TlsChannel(provider, o.cluster_id);
  security->credentials_->Start();
  return security;
}

std::shared_ptr<grpc::ServerCredentials> GrpcSecurity::ServerCredentials() const {
  return server_creds_;
}

std::shared_ptr<grpc::ChannelCredentials> GrpcSecurity::ChannelCredentials() const {
  return channel_creds_;
}

double GrpcSecurity::not_after_seconds() const {
  return credentials_ ? credentials_->not_after_seconds() : 0;
}

std::optional<Identity> GrpcSecurity::identity() const {
  if (!credentials_) return std::nullopt;
  return credentials_->Current()->identity;
}

Status GrpcSecurity::Poll() {
  return credentials_ ? credentials_->Poll() : Status::Ok();
}

Result<Identity> PeerIdentityOf(const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated())
    return Status::FailedPrecondition("no client certificate (plaintext or anonymous)");
  const std::vector<grpc::string_ref> pems = auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pems.size() != 1) return Status::FailedPrecondition("no client certificate");
  auto cert = CertFromPem(std::string_view(pems[0].data(), pems[0].size()));
  if (!cert.ok()) return cert.status();
  return ParseIdentity(cert->get());
}

PeerAuthorizer::PeerAuthorizer(std::string cluster_id, NodeId self, std::function<std::set<NodeId>()> members)
    : cluster_id_(std::move(cluster_id)), self_(self), members_(std::move(members)) {}

Decision PeerAuthorizer::Decide(const Identity& peer, Service service) const {
  std::set<NodeId> members = members_ ? members_() : std::set<NodeId>{};
  if (service != Service::kJoin && !members.contains(self_)) {
    // Joining: judged as a join (any node of this cluster), see the header.
    Decision d = AllowPeer(peer, cluster_id_, Service::kJoin, members);
    return d;
  }
  return AllowPeer(peer, cluster_id_, service, members);
}

grpc::Status PeerAuthorizer::Check(const grpc::ServerContextBase& ctx, Service service) const {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  auto peer = auth ? PeerIdentityOf(*auth) : Result<Identity>(Status::FailedPrecondition("no auth context"));
  if (!peer.ok()) {
    DLOG_WARN << "refused a " << ServiceName(service) << " call from " << ctx.peer() << ": "
              << peer.status().message();
    return {grpc::StatusCode::UNAUTHENTICATED, peer.status().message()};
  }
  const Decision d = Decide(*peer, service);
  if (d.allowed) return grpc::Status::OK;
  DLOG_WARN << "refused a " << ServiceName(service) << " call from " << peer->Uri() << " at " << ctx.peer()
            << ": " << DecisionReasonName(d.reason);
  return {grpc::StatusCode::PERMISSION_DENIED, std::string(ServiceName(service)) + " refused to " +
                                                   peer->Uri() + ": " +
                                                   std::string(DecisionReasonName(d.reason))};
}

grpc::Status CheckPeer(const PeerAuthorizer* authorizer, const grpc::ServerContextBase& ctx,
                       Service service) {
  return authorizer ? authorizer->Check(ctx, service) : grpc::Status::OK;
}

Result<std::shared_ptr<grpc::ChannelCredentials>> ClientChannelCredentials(const CredentialFiles& files,
                                                                           const std::string& cluster_id) {
  auto cert = ReadFile(files.cert);
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(files.key);
  if (!key.ok()) return key.status();
  auto ca = ReadFile(files.ca);
  if (!ca.ok()) return ca.status();
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      *ca, std::vector<grpc::experimental::IdentityKeyCertPair>{{*key, *cert}});
  return TlsChannel(std::move(provider), cluster_id);
}

}  // namespace dispotify::tls
