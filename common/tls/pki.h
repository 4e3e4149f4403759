#pragma once
// The cluster's certificates: a CA per cluster, leaf certificates for nodes and clients, and the
// identity they carry. Shared by the node (mTLS between nodes), the operator (which issues pod
// certificates) and dispotify-pki (the local cluster script).
//
// Identity lives in exactly one URI SAN, `spiffe://dispotify/<cluster_id>/<kind>/<name>`:
// nodes that share an address (two on one host, or behind a NAT) cannot be told apart by DNS or IP
// names, and a URI names the cluster too, so a certificate of another cluster's CA that somehow
// chains to ours still names the wrong cluster. DNS and IP SANs are only there for clients that
// check host names (a browser on the HTTPS API, grpc's default target-name check).
//
// All keys are EC P-256: small, fast to generate (a pod's rotation costs milliseconds) and
// supported by every TLS 1.2/1.3 stack we talk to.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "common/openssl_ptr.h"
#include "common/status.h"

namespace dispotify::tls {

using ::dispotify::EvpPkeyPtr;
using ::dispotify::X509Ptr;

using TimePoint = std::chrono::system_clock::time_point;

inline constexpr std::string_view kNodeKind = "node";

// Who a certificate names. Segments are 1..64 characters of [A-Za-z0-9._-] ("." and ".." alone are
// refused, they read as path steps); kind is lower-case letters; a node's name is its NodeId in
// decimal, non-zero, without leading zeros, so one node has exactly one spelling.
struct Identity {
  std::string cluster_id;
  std::string kind;
  std::string name;

  static Identity Node(std::string_view cluster_id, NodeId id);
  bool is_node() const { return kind == kNodeKind; }
  // The node's id when this is a node identity (always the case once parsed).
  std::optional<NodeId> node_id() const;
  std::string Uri() const;
  bool operator==(const Identity&) const = default;
};

// Strict: the exact prefix `spiffe://dispotify/`, three non-empty segments, nothing else (no
// query, fragment, percent-escapes, trailing slash, upper-case scheme or host).
Result<Identity> ParseSpiffeUri(std::string_view uri);
// The identity named by `cert`: it must carry one subjectAltName extension holding exactly one URI
// name, and that URI must parse. A second URI of any scheme is refused rather than ignored, so a
// certificate can never be read as two different identities by two readers.
Result<Identity> ParseIdentity(X509* cert);

struct Validity {
  TimePoint not_before;
  TimePoint not_after;
  // [now - 5 minutes, now + days]: the backdating absorbs clock skew between the issuer and peers.
  static Validity Days(TimePoint now, int days);
};

// A certificate and its private key.
struct CertifiedKey {
  X509Ptr cert;
  EvpPkeyPtr key;
};

// A self-signed CA: basicConstraints CA:TRUE, pathlen:0 (critical; it signs leaves only),
// keyUsage keyCertSign|cRLSign (critical), subject `O=dispotify, CN=dispotify <cluster_id> CA`.
Result<CertifiedKey> CreateCa(std::string_view cluster_id, const Validity& validity);

struct LeafRequest {
  Identity identity;
  std::vector<std::string> dns_names;     // host names; letters, digits, '-', '.', a leading "*."
  std::vector<std::string> ip_addresses;  // IPv4 or IPv6 literals
  Validity validity;
};

// A leaf signed by `ca`: a fresh P-256 key, a random positive 128-bit serial, CA:FALSE,
// keyUsage digitalSignature (critical), extendedKeyUsage serverAuth+clientAuth (every node is both
// a gRPC server and a client of its peers; clients use the same shape), the URI SAN of
// `request.identity` plus its DNS/IP SANs. The identity's cluster must be the CA's.
Result<CertifiedKey> IssueLeaf(const CertifiedKey& ca, const LeafRequest& request);

// PEM in and out. Keys are written as unencrypted PKCS#8: they live in files of mode 0600 or in
// Kubernetes Secrets, and a passphrase would have to sit beside them anyway.
Result<std::string> CertToPem(X509* cert);
Result<std::string> KeyToPem(EVP_PKEY* key);
// Exactly one certificate.
Result<X509Ptr> CertFromPem(std::string_view pem);
// One or more certificates (a CA bundle: during a CA rotation it holds the old and the new CA).
Result<std::vector<X509Ptr>> CertsFromPem(std::string_view pem);
Result<EvpPkeyPtr> KeyFromPem(std::string_view pem);

// Whether `key` is the private half of `cert`'s public key.
Status KeyMatchesCert(X509* cert, EVP_PKEY* key);
TimePoint NotAfter(X509* cert);
TimePoint NotBefore(X509* cert);

// Verifies `leaf` against `roots` at `now` (strict X.509 checks, the leaf's own purpose not
// constrained: nodes use one certificate as server and client). For tests and tools; the TLS
// handshake runs the same verification inside OpenSSL.
Status VerifyChain(X509* leaf, std::span<X509* const> roots, TimePoint now);
Status VerifyChain(X509* leaf, X509* ca, TimePoint now);

}  // namespace dispotify::tls
