#pragma once
// The cluster's certificates as the operator keeps them (docs/operator.md, "Certificates"): a CA
// per DispotifyCluster and a certificate per pod, issued with common/tls/pki.h exactly as
// dispotify-pki issues them, so a node checks them as it checks any other. No I/O: the controller
// reads the Secrets, passes their contents and the time, and writes back what comes out.
//
// A pod's certificate names spiffe://dispotify/<metadata.uid>/node/<ordinal + 1>, the identity the
// node derives from DISPOTIFY_CLUSTER_ID and its pod ordinal (operator/specs), plus the pod's
// stable DNS name. It is renewed by plan::DecideCertificate's rule (two thirds of its lifetime).

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/tls/pki.h"
#include "operator/api/types.h"
#include "operator/plan/certificates.h"
#include "operator/specs/specs.h"

namespace dispotify::op::certs {

struct Options {
  std::chrono::seconds leaf_lifetime{std::chrono::hours(24) * 90};
  std::chrono::seconds ca_lifetime{std::chrono::hours(24) * 3650};
};
// Shorter lifetimes would renew faster than the kubelet propagates a Secret (up to a minute or
// two on a real cluster) and than a node polls its files.
inline constexpr std::chrono::seconds kMinLeafLifetime{60};

struct Ca {
  tls::CertifiedKey pair;
  std::string cert_pem;
  std::string key_pem;
};

// A new CA for the cluster whose metadata.uid is `cluster_id`, valid from `now` (Unix seconds)
// for options.ca_lifetime.
Result<Ca> NewCa(std::string_view cluster_id, int64_t now, const Options& options);
// The CA read back from its Secret: it must parse, its key must match, and it must be this
// cluster's (pki's IssueLeaf would refuse it later otherwise).
Result<Ca> ParseCa(std::string cert_pem, std::string key_pem, std::string_view cluster_id);
// What plan::DecideCertificate needs to know about the CA itself.
plan::CertificateFacts CaFacts(const Ca& ca);

// What plan::DecideCertificate needs to know about pod `ordinal`'s pair (empty strings: absent).
plan::CertificateFacts InspectPodCertificate(const Ca& ca, const api::ObjectMeta& cluster, int32_t ordinal,
                                             const specs::Settings& settings, const std::string& cert_pem,
                                             const std::string& key_pem);

// The validity of a pod certificate issued at `now`: backdated by min(5 minutes, lifetime / 8) for
// clock skew (a fixed 5 minutes would make a short lifetime due at once), and never past the CA's
// notAfter (a leaf cannot outlive its issuer).
tls::Validity LeafValidity(int64_t now, std::chrono::seconds lifetime, const Ca& ca);

struct PodCertificates {
  // The TLS Secret's whole content: kTlsCaKey and a pair per pod 0..pods-1.
  std::map<std::string, std::string> data;
  bool changed = false;  // data differs from what was passed in
  // Pods whose pair was (re)issued, with why.
  std::vector<std::pair<int32_t, std::string>> issued;
  // The earliest renewal time among the pairs, Unix seconds (0 when pods is 0).
  int64_t next_renewal = 0;
};

// Keeps every pair of pods 0..pods-1 that the rule keeps, issues the others, drops the pairs of
// pods past `pods` and puts the CA's certificate under kTlsCaKey.
Result<PodCertificates> PlanPodCertificates(const Ca& ca, const api::ObjectMeta& cluster, int32_t pods,
                                            const specs::Settings& settings,
                                            const std::map<std::string, std::string>& current, int64_t now,
                                            const Options& options);

}  // namespace dispotify::op::certs
