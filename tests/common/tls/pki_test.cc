#include "common/tls/pki.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/x509v3.h>

namespace dispotify::tls {
namespace {

using std::chrono::hours;

const TimePoint kNow = std::chrono::system_clock::from_time_t(1'800'000'000);  // 2027-01-15

CertifiedKey MakeCa(std::string_view cluster = "c1", int days = 365) {
  auto ca = CreateCa(cluster, Validity::Days(kNow, days));
  EXPECT_TRUE(ca.ok()) << ca.status().ToString();
  return std::move(ca).value();
}

CertifiedKey MakeLeaf(const CertifiedKey& ca, Identity id, Validity validity = Validity::Days(kNow, 30)) {
  auto leaf =
      IssueLeaf(ca, LeafRequest{std::move(id), {"node-1.dispotify.local"}, {"10.0.0.1", "::1"}, validity});
  EXPECT_TRUE(leaf.ok()) << leaf.status().ToString();
  return std::move(leaf).value();
}

// A copy of `leaf` whose subjectAltName is replaced by `san` (OpenSSL config syntax), re-signed by
// `ca`: certificates that IssueLeaf refuses to make, as an attacker's CA-signed mistake would be.
X509Ptr WithSan(const CertifiedKey& ca, X509* leaf, const char* san) {
  X509Ptr copy(X509_dup(leaf));
  int idx = X509_get_ext_by_NID(copy.get(), NID_subject_alt_name, -1);
  if (idx >= 0) X509_EXTENSION_free(X509_delete_ext(copy.get(), idx));
  if (san != nullptr) {
    X509V3_CTX ctx{};
    X509V3_set_ctx(&ctx, ca.cert.get(), copy.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san);
    EXPECT_NE(ext, nullptr);
    X509_add_ext(copy.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  EXPECT_GT(X509_sign(copy.get(), ca.key.get(), EVP_sha256()), 0);
  return copy;
}

TEST(PkiTest, CaIsAConstrainedSelfSignedP256Ca) {
  CertifiedKey ca = MakeCa();
  EXPECT_EQ(X509_check_ca(ca.cert.get()), 1);
  EXPECT_EQ(X509_check_issued(ca.cert.get(), ca.cert.get()), X509_V_OK);
  EXPECT_TRUE(EVP_PKEY_is_a(ca.key.get(), "EC"));
  char group[32] = {};
  size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(ca.key.get(), group, sizeof(group), &len), 1);
  EXPECT_STREQ(group, "prime256v1");

  int crit = 0;
  auto* bc =
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(ca.cert.get(), NID_basic_constraints, &crit, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_TRUE(bc->ca);
  EXPECT_EQ(crit, 1);
  BASIC_CONSTRAINTS_free(bc);
  EXPECT_EQ(X509_get_key_usage(ca.cert.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(X509_get_extension_flags(ca.cert.get()) & EXFLAG_CRITICAL, 0u);  // no unknown critical ext
  EXPECT_EQ(NotBefore(ca.cert.get()), kNow - std::chrono::minutes(5));
  EXPECT_EQ(NotAfter(ca.cert.get()), kNow + hours(24 * 365));
}

TEST(PkiTest, LeafCarriesIdentitySansUsagesAndARandomSerial) {
  CertifiedKey ca = MakeCa();
  CertifiedKey a = MakeLeaf(ca, Identity::Node("c1", NodeId(7)));
  CertifiedKey b = MakeLeaf(ca, Identity::Node("c1", NodeId(7)));

  auto id = ParseIdentity(a.cert.get());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, (Identity{"c1", "node", "7"}));
  EXPECT_EQ(id->node_id(), NodeId(7));
  EXPECT_EQ(id->Uri(), "spiffe://dispotify/c1/node/7");

  EXPECT_EQ(X509_check_ca(a.cert.get()), 0);
  EXPECT_EQ(X509_get_key_usage(a.cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(a.cert.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  EXPECT_EQ(X509_check_host(a.cert.get(), "node-1.dispotify.local", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(a.cert.get(), "10.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(a.cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(a.cert.get(), "10.0.0.2", 0), 0);

  BIGNUM* sa = ASN1_INTEGER_to_BN(X509_get0_serialNumber(a.cert.get()), nullptr);
  BIGNUM* sb = ASN1_INTEGER_to_BN(X509_get0_serialNumber(b.cert.get()), nullptr);
  EXPECT_FALSE(BN_is_negative(sa));
  EXPECT_LE(BN_num_bits(sa), 128);
  EXPECT_GT(BN_num_bits(sa), 64);  // fails once in 2^64 runs
  EXPECT_NE(BN_cmp(sa, sb), 0);
  BN_free(sa);
  BN_free(sb);
  EXPECT_NE(EVP_PKEY_eq(a.key.get(), b.key.get()), 1);  // a fresh key per certificate
}

TEST(PkiTest, ClientIdentities) {
  CertifiedKey ca = MakeCa();
  CertifiedKey op = MakeLeaf(ca, Identity{"c1", "operator", "dispotify-operator"});
  auto id = ParseIdentity(op.cert.get());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->kind, "operator");
  EXPECT_FALSE(id->node_id().has_value());
}

TEST(PkiTest, IssueRefusesBadRequests) {
  CertifiedKey ca = MakeCa();
  auto issue = [&](Identity id, std::vector<std::string> dns = {}, std::vector<std::string> ip = {}) {
    return IssueLeaf(ca, LeafRequest{std::move(id), std::move(dns), std::move(ip), Validity::Days(kNow, 1)})
        .status();
  };
  EXPECT_EQ(issue(Identity::Node("c2", NodeId(1))).code(), StatusCode::kInvalidArgument);  // the CA's is c1
  EXPECT_EQ(issue(Identity::Node("c1", NodeId(0))).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(issue(Identity{"c1", "node", "01"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(issue(Identity{"c1", "Admin", "x"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(issue(Identity{"c1", "admin", "a/b"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(issue(Identity::Node("c1", NodeId(1)), {"bad,DNS:evil"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(issue(Identity::Node("c1", NodeId(1)), {"-x.local"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(issue(Identity::Node("c1", NodeId(1)), {}, {"10.0.0.300"}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(issue(Identity::Node("c1", NodeId(1)), {"*.pods.svc", "localhost"}, {"127.0.0.1"}).ok());
  EXPECT_EQ(CreateCa("c 1", Validity::Days(kNow, 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCa("c1", Validity{kNow, kNow}).status().code(), StatusCode::kInvalidArgument);
}

TEST(PkiTest, PemRoundTrip) {
  CertifiedKey ca = MakeCa();
  CertifiedKey leaf = MakeLeaf(ca, Identity::Node("c1", NodeId(3)));
  auto cert_pem = CertToPem(leaf.cert.get());
  auto key_pem = KeyToPem(leaf.key.get());
  ASSERT_TRUE(cert_pem.ok() && key_pem.ok());
  EXPECT_TRUE(cert_pem->starts_with("-----BEGIN CERTIFICATE-----"));
  EXPECT_TRUE(key_pem->starts_with("-----BEGIN PRIVATE KEY-----"));  // PKCS#8

  auto cert = CertFromPem(*cert_pem);
  auto key = KeyFromPem(*key_pem);
  ASSERT_TRUE(cert.ok() && key.ok());
  EXPECT_EQ(X509_cmp(cert->get(), leaf.cert.get()), 0);
  EXPECT_TRUE(KeyMatchesCert(cert->get(), key->get()).ok());
  EXPECT_EQ(KeyMatchesCert(cert->get(), ca.key.get()).code(), StatusCode::kInvalidArgument);

  auto ca_pem = CertToPem(ca.cert.get());
  auto bundle = CertsFromPem(*ca_pem + *cert_pem);
  ASSERT_TRUE(bundle.ok());
  EXPECT_EQ(bundle->size(), 2u);
  EXPECT_FALSE(CertFromPem(*ca_pem + *cert_pem).ok());  // exactly one
  EXPECT_FALSE(CertsFromPem("").ok());
  EXPECT_FALSE(KeyFromPem("not a key").ok());
  // A truncated second block is damage, not a shorter bundle.
  std::string damaged = *ca_pem + cert_pem->substr(0, cert_pem->size() / 2);
  EXPECT_FALSE(CertsFromPem(damaged).ok());
}

TEST(PkiTest, LeafVerifiesAgainstItsCaOnly) {
  CertifiedKey ca = MakeCa();
  CertifiedKey other = MakeCa();  // same cluster id, another key: a re-created CA
  CertifiedKey leaf = MakeLeaf(ca, Identity::Node("c1", NodeId(1)));
  EXPECT_TRUE(VerifyChain(leaf.cert.get(), ca.cert.get(), kNow).ok());
  Status s = VerifyChain(leaf.cert.get(), other.cert.get(), kNow);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  X509* both[] = {other.cert.get(), ca.cert.get()};
  EXPECT_TRUE(VerifyChain(leaf.cert.get(), both, kNow).ok());  // a bundle during CA rotation
  // A CA is never accepted as a leaf, not even its own.
  EXPECT_FALSE(VerifyChain(ca.cert.get(), ca.cert.get(), kNow).ok());
}

TEST(PkiTest, ValidityWindowIsEnforced) {
  CertifiedKey ca = MakeCa();
  CertifiedKey leaf = MakeLeaf(ca, Identity::Node("c1", NodeId(1)), Validity{kNow, kNow + hours(24)});
  EXPECT_TRUE(VerifyChain(leaf.cert.get(), ca.cert.get(), kNow + hours(1)).ok());
  Status expired = VerifyChain(leaf.cert.get(), ca.cert.get(), kNow + hours(25));
  EXPECT_NE(expired.message().find("expired"), std::string::npos) << expired.ToString();
  Status early = VerifyChain(leaf.cert.get(), ca.cert.get(), kNow - hours(1));
  EXPECT_NE(early.message().find("not yet valid"), std::string::npos) << early.ToString();
  // An expired CA takes its leaves with it.
  CertifiedKey short_ca = MakeCa("c1", 1);
  CertifiedKey leaf2 = MakeLeaf(short_ca, Identity::Node("c1", NodeId(1)), Validity::Days(kNow, 30));
  EXPECT_FALSE(VerifyChain(leaf2.cert.get(), short_ca.cert.get(), kNow + hours(48)).ok());
}

TEST(PkiTest, ParseSpiffeUriIsStrict) {
  auto ok = ParseSpiffeUri("spiffe://dispotify/prod-1/node/12");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, (Identity{"prod-1", "node", "12"}));
  EXPECT_TRUE(ParseSpiffeUri("spiffe://dispotify/prod-1/admin/alice.smith_2").ok());

  for (const char* bad : {
           "",
           "https://dispotify/c1/node/1",
           "SPIFFE://dispotify/c1/node/1",
           "spiffe://Dispotify/c1/node/1",
           "spiffe://other/c1/node/1",
           "spiffe://dispotify/c1/node",
           "spiffe://dispotify/c1/node/1/",
           "spiffe://dispotify/c1/node/1/x",
           "spiffe://dispotify//node/1",
           "spiffe://dispotify/c1/node/",
           "spiffe://dispotify/c1/node/0",
           "spiffe://dispotify/c1/node/007",
           "spiffe://dispotify/c1/node/18446744073709551616",  // past uint64
           "spiffe://dispotify/c1/node/1?x=y",
           "spiffe://dispotify/c1/node/1#f",
           "spiffe://dispotify/c%31/node/1",
           "spiffe://dispotify/../node/1",
           "spiffe://dispotify/c1/NODE/1",
           "spiffe://dispotify/c1/node/ 1",
       }) {
    EXPECT_FALSE(ParseSpiffeUri(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseSpiffeUri(std::string_view("spiffe://dispotify/c1/node/1\0x", 30)).ok());
  EXPECT_FALSE(ParseSpiffeUri("spiffe://dispotify/" + std::string(65, 'a') + "/node/1").ok());
}

TEST(PkiTest, ParseIdentityWantsExactlyOneUri) {
  CertifiedKey ca = MakeCa();
  CertifiedKey leaf = MakeLeaf(ca, Identity::Node("c1", NodeId(1)));

  X509Ptr two =
      WithSan(ca, leaf.cert.get(), "URI:spiffe://dispotify/c1/node/1,URI:spiffe://dispotify/c1/node/2");
  EXPECT_NE(ParseIdentity(two.get()).status().message().find("more than one"), std::string::npos);
  X509Ptr mixed = WithSan(ca, leaf.cert.get(), "URI:spiffe://dispotify/c1/node/1,URI:https://example.com/");
  EXPECT_FALSE(ParseIdentity(mixed.get()).ok());
  X509Ptr wrong_scheme = WithSan(ca, leaf.cert.get(), "URI:https://dispotify/c1/node/1");
  EXPECT_FALSE(ParseIdentity(wrong_scheme.get()).ok());
  X509Ptr dns_only = WithSan(ca, leaf.cert.get(), "DNS:node-1.local");
  EXPECT_NE(ParseIdentity(dns_only.get()).status().message().find("no URI"), std::string::npos);
  X509Ptr none = WithSan(ca, leaf.cert.get(), nullptr);
  EXPECT_NE(ParseIdentity(none.get()).status().message().find("no subjectAltName"), std::string::npos);
  X509Ptr malformed = WithSan(ca, leaf.cert.get(), "URI:spiffe://dispotify/c1/node/1/extra");
  EXPECT_FALSE(ParseIdentity(malformed.get()).ok());
  // The extra DNS and IP names beside the one URI are fine.
  X509Ptr with_dns =
      WithSan(ca, leaf.cert.get(), "DNS:a.local,URI:spiffe://dispotify/c1/admin/root,IP:10.1.1.1");
  auto id = ParseIdentity(with_dns.get());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->kind, "admin");

  // Another cluster's certificate parses to that cluster; refusing it is the policy's job.
  CertifiedKey other_ca = MakeCa("c2");
  CertifiedKey other = MakeLeaf(other_ca, Identity::Node("c2", NodeId(1)));
  auto other_id = ParseIdentity(other.cert.get());
  ASSERT_TRUE(other_id.ok());
  EXPECT_EQ(other_id->cluster_id, "c2");
}

}  // namespace
}  // namespace dispotify::tls
