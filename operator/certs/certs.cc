#include "operator/certs/certs.h"

#include <openssl/x509v3.h>

#include <algorithm>

namespace dispotify::op::certs {
namespace {

tls::TimePoint At(int64_t unix_seconds) {
  return tls::TimePoint(std::chrono::seconds(unix_seconds));
}
int64_t Unix(tls::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

tls::Identity PodIdentity(const api::ObjectMeta& cluster, int32_t ordinal) {
  return tls::Identity::Node(cluster.uid, NodeId(specs::NodeIdOfOrdinal(ordinal)));
}

std::string Find(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

}  // namespace

Result<Ca> NewCa(std::string_view cluster_id, int64_t now, const Options& options) {
  auto pair = tls::CreateCa(cluster_id,
                            tls::Validity{At(now) - std::chrono::minutes(5), At(now) + options.ca_lifetime});
  if (!pair.ok()) return pair.status();
  auto cert_pem = tls::CertToPem(pair->cert.get());
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = tls::KeyToPem(pair->key.get());
  if (!key_pem.ok()) return key_pem.status();
  return Ca{std::move(pair).value(), std::move(cert_pem).value(), std::move(key_pem).value()};
}

Result<Ca> ParseCa(std::string cert_pem, std::string key_pem, std::string_view cluster_id) {
  auto cert = tls::CertFromPem(cert_pem);
  if (!cert.ok()) return Status::InvalidArgument("the CA certificate: " + cert.status().message());
  auto key = tls::KeyFromPem(key_pem);
  if (!key.ok()) return Status::InvalidArgument("the CA key: " + key.status().message());
  if (Status s = tls::KeyMatchesCert(cert->get(), key->get()); !s.ok()) {
    return Status::InvalidArgument("the CA key does not match its certificate: " + s.message());
  }
  // The CA names its cluster in O (pki.h); issuing from another cluster's CA would fail later.
  const X509_NAME* subject = X509_get_subject_name(cert->get());
  const int idx = X509_NAME_get_index_by_NID(subject, NID_organizationName, -1);
  const ASN1_STRING* org = idx < 0 ? nullptr : X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
  const std::string_view named =
      org == nullptr ? std::string_view()
                     : std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(org)),
                                        static_cast<size_t>(ASN1_STRING_length(org)));
  if (named != cluster_id) {
    return Status::InvalidArgument("the CA belongs to cluster '" + std::string(named) + "', not '" +
                                   std::string(cluster_id) + "'");
  }
  return Ca{tls::CertifiedKey{std::move(cert).value(), std::move(key).value()}, std::move(cert_pem),
            std::move(key_pem)};
}

plan::CertificateFacts CaFacts(const Ca& ca) {
  return plan::CertificateFacts{.present = true,
                                .problem = "",
                                .not_before = Unix(tls::NotBefore(ca.pair.cert.get())),
                                .not_after = Unix(tls::NotAfter(ca.pair.cert.get()))};
}

plan::CertificateFacts InspectPodCertificate(const Ca& ca, const api::ObjectMeta& cluster, int32_t ordinal,
                                             const specs::Settings& settings, const std::string& cert_pem,
                                             const std::string& key_pem) {
  plan::CertificateFacts facts;
  if (cert_pem.empty() || key_pem.empty()) return facts;
  facts.present = true;
  auto cert = tls::CertFromPem(cert_pem);
  if (!cert.ok()) {
    facts.problem = "certificate: " + cert.status().message();
    return facts;
  }
  facts.not_before = Unix(tls::NotBefore(cert->get()));
  facts.not_after = Unix(tls::NotAfter(cert->get()));
  auto key = tls::KeyFromPem(key_pem);
  if (!key.ok()) {
    facts.problem = "key: " + key.status().message();
    return facts;
  }
  if (!tls::KeyMatchesCert(cert->get(), key->get()).ok()) {
    facts.problem = "the key does not match the certificate";
    return facts;
  }
  auto identity = tls::ParseIdentity(cert->get());
  const tls::Identity want = PodIdentity(cluster, ordinal);
  if (!identity.ok() || !(*identity == want)) {
    facts.problem =
        "names " + (identity.ok() ? identity->Uri() : identity.status().message()) + ", not " + want.Uri();
    return facts;
  }
  // Checked inside the certificate's own validity: expiry is the rule's business, not a problem.
  const tls::TimePoint middle =
      At(facts.not_before + std::max<int64_t>(0, facts.not_after - facts.not_before) / 2);
  if (Status s = tls::VerifyChain(cert->get(), ca.pair.cert.get(), middle); !s.ok()) {
    facts.problem = "not issued by the cluster's CA: " + s.message();
    return facts;
  }
  // A changed cluster domain changes the pod's DNS name; reissue rather than keep a stale name.
  const std::string host = specs::PodHost(cluster, ordinal, settings);
  GENERAL_NAMES* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert->get(), NID_subject_alt_name, nullptr, nullptr));
  bool has_host = false;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type != GEN_DNS) continue;
    const ASN1_IA5STRING* s = gn->d.dNSName;
    has_host |= std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                 static_cast<size_t>(ASN1_STRING_length(s))) == host;
  }
  GENERAL_NAMES_free(names);
  if (!has_host) facts.problem = "does not name the host " + host;
  return facts;
}

tls::Validity LeafValidity(int64_t now, std::chrono::seconds lifetime, const Ca& ca) {
  const auto backdate = std::min<std::chrono::seconds>(std::chrono::minutes(5), lifetime / 8);
  return tls::Validity{At(now) - backdate, std::min(At(now) + lifetime, tls::NotAfter(ca.pair.cert.get()))};
}

Result<PodCertificates> PlanPodCertificates(const Ca& ca, const api::ObjectMeta& cluster, int32_t pods,
                                            const specs::Settings& settings,
                                            const std::map<std::string, std::string>& current, int64_t now,
                                            const Options& options) {
  PodCertificates out;
  out.data[std::string(specs::kTlsCaKey)] = ca.cert_pem;
  for (int32_t ordinal = 0; ordinal < pods; ++ordinal) {
    const std::string cert_key = specs::TlsCertKey(ordinal);
    const std::string key_key = specs::TlsKeyKey(ordinal);
    const std::string cert_pem = Find(current, cert_key);
    const std::string key_pem = Find(current, key_key);
    const plan::CertificateDecision d = plan::DecideCertificate(
        InspectPodCertificate(ca, cluster, ordinal, settings, cert_pem, key_pem), now);
    int64_t renew_at = d.renew_at;
    if (d.verdict == plan::CertificateVerdict::kKeep) {
      out.data[cert_key] = cert_pem;
      out.data[key_key] = key_pem;
    } else {
      tls::LeafRequest request{PodIdentity(cluster, ordinal),
                               {specs::PodHost(cluster, ordinal, settings)},
                               {},
                               LeafValidity(now, options.leaf_lifetime, ca)};
      auto leaf = tls::IssueLeaf(ca.pair, request);
      if (!leaf.ok()) return leaf.status();
      auto new_cert = tls::CertToPem(leaf->cert.get());
      if (!new_cert.ok()) return new_cert.status();
      auto new_key = tls::KeyToPem(leaf->key.get());
      if (!new_key.ok()) return new_key.status();
      out.data[cert_key] = *new_cert;
      out.data[key_key] = *new_key;
      out.issued.emplace_back(ordinal, d.reason);
      renew_at = plan::RenewalTime(Unix(request.validity.not_before), Unix(request.validity.not_after));
    }
    out.next_renewal = out.next_renewal == 0 ? renew_at : std::min(out.next_renewal, renew_at);
  }
  out.changed = out.data != current;
  return out;
}

}  // namespace dispotify::op::certs
