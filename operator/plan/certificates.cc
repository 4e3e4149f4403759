#include "operator/plan/certificates.h"

namespace dispotify::op::plan {

int64_t RenewalTime(int64_t not_before, int64_t not_after) {
  // X.509 times end in the year 9999 (~2.5e11 s): twice a span cannot overflow.
  return not_before + (not_after - not_before) * 2 / 3;
}

CertificateDecision DecideCertificate(const CertificateFacts& facts, int64_t now) {
  auto renew = [](std::string why) {
    return CertificateDecision{
        .verdict = CertificateVerdict::kRenew, .reason = std::move(why), .renew_at = 0};
  };
  if (!facts.present) return renew("missing");
  if (!facts.problem.empty()) return renew("unusable: " + facts.problem);
  if (facts.not_after <= facts.not_before) return renew("unusable: notAfter is not after notBefore");
  if (now < facts.not_before) return renew("not valid yet");
  if (now >= facts.not_after) return renew("expired");
  const int64_t due = RenewalTime(facts.not_before, facts.not_after);
  if (now >= due) return renew("two thirds of its lifetime have passed");
  return CertificateDecision{.verdict = CertificateVerdict::kKeep, .reason = "", .renew_at = due};
}

}  // namespace dispotify::op::plan
