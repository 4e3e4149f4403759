#pragma once
// When a certificate must be replaced (pure: no clock, no crypto; the caller reads the certificate
// and passes what it found, and the time).
//
// The rule, for the pods' certificates and, as a warning only, for the CA: a certificate is
// renewed once two thirds of its validity (notBefore to notAfter) have passed, as cert-manager
// does by default, which leaves a third of the lifetime for a failed renewal to be noticed and
// retried while the old certificate still works. A certificate that is missing, unusable (does
// not parse, names another identity, is not from the current CA, its key does not match), not yet
// valid or expired is replaced at once.

#include <cstdint>
#include <string>

namespace dispotify::op::plan {

// What the caller found, times in Unix seconds.
struct CertificateFacts {
  bool present = false;
  std::string problem;  // non-empty: the certificate cannot be used, and why
  int64_t not_before = 0;
  int64_t not_after = 0;
};

enum class CertificateVerdict { kKeep, kRenew };

struct CertificateDecision {
  CertificateVerdict verdict = CertificateVerdict::kKeep;
  std::string reason;  // for events and logs ("" when kept)
  // kKeep: when the certificate becomes due (look again then). kRenew: 0.
  int64_t renew_at = 0;
};

// notBefore + 2/3 of (notAfter - notBefore), rounded down.
int64_t RenewalTime(int64_t not_before, int64_t not_after);

CertificateDecision DecideCertificate(const CertificateFacts& facts, int64_t now);

}  // namespace dispotify::op::plan
