// The renewal rule of operator/plan/certificates.h, as a table.

#include "operator/plan/certificates.h"

#include <gtest/gtest.h>

namespace dispotify::op::plan {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kT0 = 1'800'000'000;  // a notBefore

CertificateFacts Valid(int64_t not_before, int64_t not_after) {
  return CertificateFacts{.present = true, .problem = "", .not_before = not_before, .not_after = not_after};
}

TEST(CertificateRenewalTest, RenewsAtTwoThirdsOfTheLifetime) {
  struct Case {
    const char* name;
    CertificateFacts facts;
    int64_t now;
    CertificateVerdict verdict;
    int64_t renew_at;         // checked when kept
    const char* reason_part;  // checked when renewed
  };
  const Case cases[] = {
      {"fresh 90-day certificate", Valid(kT0, kT0 + 90 * kDay), kT0 + 1, CertificateVerdict::kKeep,
       kT0 + 60 * kDay, ""},
      {"one second before two thirds", Valid(kT0, kT0 + 90 * kDay), kT0 + 60 * kDay - 1,
       CertificateVerdict::kKeep, kT0 + 60 * kDay, ""},
      {"exactly at two thirds", Valid(kT0, kT0 + 90 * kDay), kT0 + 60 * kDay, CertificateVerdict::kRenew, 0,
       "two thirds"},
      {"past two thirds, not expired", Valid(kT0, kT0 + 90 * kDay), kT0 + 80 * kDay,
       CertificateVerdict::kRenew, 0, "two thirds"},
      {"at notBefore", Valid(kT0, kT0 + 300), kT0, CertificateVerdict::kKeep, kT0 + 200, ""},
      {"a span not divisible by three rounds down", Valid(kT0, kT0 + 100), kT0 + 10,
       CertificateVerdict::kKeep, kT0 + 66, ""},
      {"at notAfter", Valid(kT0, kT0 + 90 * kDay), kT0 + 90 * kDay, CertificateVerdict::kRenew, 0, "expired"},
      {"long expired", Valid(kT0, kT0 + 90 * kDay), kT0 + 900 * kDay, CertificateVerdict::kRenew, 0,
       "expired"},
      {"not valid yet", Valid(kT0, kT0 + 90 * kDay), kT0 - 1, CertificateVerdict::kRenew, 0, "not valid yet"},
      {"missing", CertificateFacts{}, kT0, CertificateVerdict::kRenew, 0, "missing"},
      {"unusable though in its lifetime",
       CertificateFacts{
           .present = true, .problem = "names node 2", .not_before = kT0, .not_after = kT0 + kDay},
       kT0 + 1, CertificateVerdict::kRenew, 0, "names node 2"},
      {"notAfter before notBefore", Valid(kT0, kT0 - 1), kT0, CertificateVerdict::kRenew, 0, "notAfter"},
      {"empty validity", Valid(kT0, kT0), kT0, CertificateVerdict::kRenew, 0, "notAfter"},
      {"ten-year CA in its fifth year", Valid(kT0, kT0 + 3650 * kDay), kT0 + 5 * 365 * kDay,
       CertificateVerdict::kKeep, kT0 + 3650 * kDay * 2 / 3, ""},
      {"ten-year CA in its eighth year", Valid(kT0, kT0 + 3650 * kDay), kT0 + 7 * 365 * kDay,
       CertificateVerdict::kRenew, 0, "two thirds"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const CertificateDecision d = DecideCertificate(c.facts, c.now);
    EXPECT_EQ(d.verdict, c.verdict);
    if (c.verdict == CertificateVerdict::kKeep) {
      EXPECT_EQ(d.renew_at, c.renew_at);
      EXPECT_GT(d.renew_at, c.now);  // a kept certificate is always looked at again later
      EXPECT_EQ(d.reason, "");
    } else {
      EXPECT_EQ(d.renew_at, 0);
      EXPECT_NE(d.reason.find(c.reason_part), std::string::npos) << d.reason;
    }
  }
}

TEST(CertificateRenewalTest, RenewalTimeOfTheLongestX509Validity) {
  // notAfter 9999-12-31T23:59:59Z: no overflow.
  EXPECT_EQ(RenewalTime(0, 253402300799), 168934867199);
}

}  // namespace
}  // namespace dispotify::op::plan
