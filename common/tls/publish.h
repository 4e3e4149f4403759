#pragma once
// Hands a validated credentials bundle to a consumer that can only watch files — gRPC 1.51's
// FileWatcherCertificateProvider, the one reloading provider its C++ API offers. That provider
// re-reads key, certificate and CA on its own schedule and, by its documentation, leaves atomic
// updates to the writer; and it does not check the chain before swapping. Pointing it at the
// operator's or the script's files directly would let it adopt a half-written or foreign set that
// ReloadingCredentials refused. So the node publishes only what ReloadingCredentials adopted:
//
//   <dir>/gen-<generation>-<time>/{tls.crt, tls.key (0600), ca.crt}   written whole, then
//   <dir>/current -> gen-<generation>-<time>                          swapped by rename (atomic)
//
// and gRPC watches <dir>/current/tls.key, <dir>/current/tls.crt, <dir>/current/ca.crt: a reader
// resolving `current` sees one generation's three files, never a mix. The generation before the
// current one is kept (a reader may have resolved the link just before the swap); all others go,
// those of a previous run of the process included.

#include <string>

#include "common/status.h"
#include "common/tls/credentials.h"

namespace dispotify::tls {

struct PublishedPaths {
  std::string cert;
  std::string key;
  std::string ca;
};

// The stable paths under `dir` that a file-watching consumer is given.
PublishedPaths PublishedFiles(const std::string& dir);

// Publishes `bundle` (generation > 0) under `dir`, which is created with mode 0700 if missing.
Status PublishBundle(const CredentialBundle& bundle, const std::string& dir);

}  // namespace dispotify::tls
