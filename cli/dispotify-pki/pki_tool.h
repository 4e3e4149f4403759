#pragma once
// dispotify-pki: makes a cluster CA and issues node and client certificates from it, as files.
// For the local cluster script, tests and hand-run clusters; the operator issues through
// common/tls directly into Secrets.
//
//   dispotify-pki ca --out DIR --cluster ID --days N
//     DIR/ca.crt (0644), DIR/ca.key (0600). Refuses to replace an existing ca.key: a new CA
//     would silently orphan every certificate issued by the old one.
//   dispotify-pki issue --ca DIR --out DIR --cluster ID (--node N | --kind KIND --name NAME)
//                       [--dns NAME]... [--ip ADDR]... --days N
//     DIR/tls.crt (0644), DIR/tls.key (0600) and DIR/ca.crt (0644, a copy of the CA's): the names
//     of a Kubernetes TLS Secret, so one directory is one node's complete credential set.
//     Replacing an existing set is a rotation: every file is renamed into place whole, and the
//     key before the certificate, so a node polling the directory never reads a torn file.
//
// Exit status: 0 done, 1 failed, 2 usage.

#include <ostream>
#include <string>
#include <vector>

namespace dispotify::pki_tool {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace dispotify::pki_tool
