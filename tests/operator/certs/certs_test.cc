// The cluster CA and the pods' certificates (operator/certs): what is issued, to whom, what is
// kept and what is replaced, checked with common/tls as a node would check it.

#include "operator/certs/certs.h"

#include <gtest/gtest.h>

namespace dispotify::op::certs {
namespace {

constexpr int64_t kNow = 1'800'000'000;
constexpr int64_t kDay = 86400;

api::ObjectMeta Meta() {
  api::ObjectMeta m;
  m.name = "music";
  m.namespace_ = "ns";
  m.uid = "0b6f3b9e-5f4c-4d1e-9a51-2c1d6b7f8a90";
  return m;
}

const specs::Settings kSettings;

int64_t Unix(tls::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

class CertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = NewCa(Meta().uid, kNow, options);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    ca = std::move(made).value();
  }

  Options options;  // 90 days, CA 10 years
  Ca ca;
};

TEST_F(CertsTest, TheCaRoundTripsThroughItsSecretAndBelongsToItsCluster) {
  auto back = ParseCa(ca.cert_pem, ca.key_pem, Meta().uid);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->cert_pem, ca.cert_pem);
  const plan::CertificateFacts facts = CaFacts(*back);
  EXPECT_EQ(facts.not_after - kNow, 3650 * kDay);

  EXPECT_FALSE(ParseCa(ca.cert_pem, ca.key_pem, "another-uid").ok());
  auto other = NewCa(Meta().uid, kNow, options);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(ParseCa(ca.cert_pem, other->key_pem, Meta().uid).ok());  // key of another CA
  EXPECT_FALSE(ParseCa("", ca.key_pem, Meta().uid).ok());
  EXPECT_FALSE(ParseCa(ca.cert_pem, "garbage", Meta().uid).ok());
}

TEST_F(CertsTest, EveryPodGetsAPairNamingItsNodeFromTheClusterCa) {
  auto plan = PlanPodCertificates(ca, Meta(), 3, kSettings, {}, kNow, options);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(plan->changed);
  ASSERT_EQ(plan->issued.size(), 3u);
  EXPECT_EQ(plan->issued[0].second, "missing");
  ASSERT_EQ(plan->data.size(), 7u);  // ca.crt and three pairs
  EXPECT_EQ(plan->data.at("ca.crt"), ca.cert_pem);
  for (int32_t ordinal = 0; ordinal < 3; ++ordinal) {
    SCOPED_TRACE(ordinal);
    auto cert = tls::CertFromPem(plan->data.at(specs::TlsCertKey(ordinal)));
    ASSERT_TRUE(cert.ok());
    auto key = tls::KeyFromPem(plan->data.at(specs::TlsKeyKey(ordinal)));
    ASSERT_TRUE(key.ok());
    EXPECT_TRUE(tls::KeyMatchesCert(cert->get(), key->get()).ok());
    // What the node checks: its own identity (cluster uid, ordinal + 1), and the chain.
    auto id = tls::ParseIdentity(cert->get());
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(id->Uri(), "spiffe://dispotify/" + Meta().uid + "/node/" + std::to_string(ordinal + 1));
    EXPECT_TRUE(
        tls::VerifyChain(cert->get(), ca.pair.cert.get(), tls::TimePoint(std::chrono::seconds(kNow))).ok());
    EXPECT_EQ(Unix(tls::NotAfter(cert->get())), kNow + 90 * kDay);
    EXPECT_EQ(Unix(tls::NotBefore(cert->get())), kNow - 300);
    // And what a peer sees: the pod's stable name.
    EXPECT_TRUE(InspectPodCertificate(ca, Meta(), ordinal, kSettings,
                                      plan->data.at(specs::TlsCertKey(ordinal)),
                                      plan->data.at(specs::TlsKeyKey(ordinal)))
                    .problem.empty());
  }
  // Two thirds of [now - 5 min, now + 90 d].
  EXPECT_EQ(plan->next_renewal, plan::RenewalTime(kNow - 300, kNow + 90 * kDay));
}

TEST_F(CertsTest, ValidPairsAreKeptUntilTwoThirdsOfTheirLifetimeThenReplaced) {
  auto first = PlanPodCertificates(ca, Meta(), 3, kSettings, {}, kNow, options);
  ASSERT_TRUE(first.ok());
  // A pass later: nothing changes, the Secret is not rewritten.
  auto again = PlanPodCertificates(ca, Meta(), 3, kSettings, first->data, kNow + 3600, options);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  EXPECT_TRUE(again->issued.empty());
  EXPECT_EQ(again->next_renewal, first->next_renewal);
  // A second before it is due, still kept; at the time, every pair is replaced by a new one.
  auto before = PlanPodCertificates(ca, Meta(), 3, kSettings, first->data, first->next_renewal - 1, options);
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(before->changed);
  auto due = PlanPodCertificates(ca, Meta(), 3, kSettings, first->data, first->next_renewal, options);
  ASSERT_TRUE(due.ok());
  EXPECT_TRUE(due->changed);
  ASSERT_EQ(due->issued.size(), 3u);
  EXPECT_NE(due->issued[0].second.find("two thirds"), std::string::npos);
  for (int32_t ordinal = 0; ordinal < 3; ++ordinal) {
    EXPECT_NE(due->data.at(specs::TlsCertKey(ordinal)), first->data.at(specs::TlsCertKey(ordinal)));
    EXPECT_NE(due->data.at(specs::TlsKeyKey(ordinal)),
              first->data.at(specs::TlsKeyKey(ordinal)));  // a new key
  }
  EXPECT_EQ(due->data.at("ca.crt"), ca.cert_pem);  // the same CA
  EXPECT_GT(due->next_renewal, first->next_renewal);
}

TEST_F(CertsTest, WrongOrForeignPairsAreReplacedAndOnlyThey) {
  auto first = PlanPodCertificates(ca, Meta(), 3, kSettings, {}, kNow, options);
  ASSERT_TRUE(first.ok());
  std::map<std::string, std::string> data = first->data;
  // Pod 0 holds pod 1's pair (names node 2); pod 1's key is another's; pod 2's certificate is from
  // another CA of the same cluster id.
  data["node-0.crt"] = first->data.at("node-1.crt");
  data["node-0.key"] = first->data.at("node-1.key");
  data["node-1.key"] = first->data.at("node-2.key");
  auto other_ca = NewCa(Meta().uid, kNow, options);
  ASSERT_TRUE(other_ca.ok());
  auto foreign = PlanPodCertificates(*other_ca, Meta(), 3, kSettings, {}, kNow, options);
  ASSERT_TRUE(foreign.ok());
  data["node-2.crt"] = foreign->data.at("node-2.crt");
  data["node-2.key"] = foreign->data.at("node-2.key");
  auto fixed = PlanPodCertificates(ca, Meta(), 3, kSettings, data, kNow + 60, options);
  ASSERT_TRUE(fixed.ok());
  ASSERT_EQ(fixed->issued.size(), 3u);
  EXPECT_NE(fixed->issued[0].second.find("/node/2, not"), std::string::npos) << fixed->issued[0].second;
  EXPECT_NE(fixed->issued[1].second.find("does not match"), std::string::npos) << fixed->issued[1].second;
  EXPECT_NE(fixed->issued[2].second.find("not issued by the cluster's CA"), std::string::npos)
      << fixed->issued[2].second;
  // A changed cluster domain reissues too (the DNS name is in the certificate).
  auto renamed = PlanPodCertificates(ca, Meta(), 3, specs::Settings{.cluster_domain = "corp.internal"},
                                     first->data, kNow, options);
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->issued.size(), 3u);
}

TEST_F(CertsTest, PairsOfPodsPastTheCountAreDroppedAndNewPodsGetOne) {
  auto five = PlanPodCertificates(ca, Meta(), 5, kSettings, {}, kNow, options);
  ASSERT_TRUE(five.ok());
  auto three = PlanPodCertificates(ca, Meta(), 3, kSettings, five->data, kNow + 10, options);
  ASSERT_TRUE(three.ok());
  EXPECT_TRUE(three->changed);
  EXPECT_TRUE(three->issued.empty());
  EXPECT_EQ(three->data.size(), 7u);
  EXPECT_FALSE(three->data.contains("node-3.crt"));
  EXPECT_FALSE(three->data.contains("node-4.key"));
  auto four = PlanPodCertificates(ca, Meta(), 4, kSettings, three->data, kNow + 20, options);
  ASSERT_TRUE(four.ok());
  ASSERT_EQ(four->issued.size(), 1u);
  EXPECT_EQ(four->issued[0].first, 3);
  auto none = PlanPodCertificates(ca, Meta(), 0, kSettings, {}, kNow, options);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->next_renewal, 0);
  EXPECT_EQ(none->data.size(), 1u);  // the CA only
}

TEST_F(CertsTest, ALeafNeverOutlivesItsCaAndAShortLifetimeIsBarelyBackdated) {
  // The CA ends in 10 days; a 90-day leaf is cut to the CA's notAfter.
  const int64_t late = kNow + 3650 * kDay - 10 * kDay;
  const tls::Validity cut = LeafValidity(late, std::chrono::hours(24) * 90, ca);
  EXPECT_EQ(Unix(cut.not_after), Unix(tls::NotAfter(ca.pair.cert.get())));
  // Three minutes: backdated 22 s (an eighth), not 5 minutes, so it is not due at once.
  const tls::Validity short_lived = LeafValidity(kNow, std::chrono::seconds(180), ca);
  EXPECT_EQ(Unix(short_lived.not_before), kNow - 22);
  EXPECT_EQ(Unix(short_lived.not_after), kNow + 180);
  Options brief;
  brief.leaf_lifetime = std::chrono::seconds(180);
  auto plan = PlanPodCertificates(ca, Meta(), 1, kSettings, {}, kNow, brief);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->next_renewal, kNow - 22 + (180 + 22) * 2 / 3);
  EXPECT_GT(plan->next_renewal, kNow + 100);
}

}  // namespace
}  // namespace dispotify::op::certs
