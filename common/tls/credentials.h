#pragma once
// A node's (or the operator's) TLS credentials, read from three PEM files and re-read when they
// change, so certificates rotate with no restart.
//
// Change detection polls (mtime, size, inode, device) of each file: cheap, needs no inotify, and
// follows every way the files get replaced — an editor or `cp` rewriting in place, `mv` of a fresh
// file, and Kubernetes Secret volumes, which swap a `..data` symlink (stat() follows it, so the
// inode changes). One blind spot: an in-place rewrite of the same size within one tick of the
// kernel's coarse file clock (a few ms) looks unchanged until the next change, so writers replace
// files by rename (dispotify-pki does; kubelet and cert-manager do).
//
// A changed set is only adopted once it is whole: the key parses and matches the certificate, the
// certificate names a dispotify identity (and the expected one, when set), and it verifies against
// the CA file at the injected clock's now. Anything else — typically a rotation caught half-way,
// new certificate beside the old key — keeps the current bundle, records the error, and is tried
// again at every poll until the files settle, so the tool writing them needs no particular order.
//
// Readers take an immutable snapshot (Current()); a TLS stack builds its context from it and
// compares `generation` to notice a swap. The first load must succeed: a node without credentials
// does not start.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/tls/file_watch.h"
#include "common/tls/pki.h"

namespace dispotify::tls {

struct CredentialFiles {
  std::string cert;  // the leaf first; certificates after it (a chain from cert-manager) are kept
  std::string key;
  std::string ca;  // one or more trusted CAs (two during a CA rotation)
};

// One consistent set, immutable once published.
struct CredentialBundle {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_pem;
  Identity identity;
  TimePoint not_before;
  TimePoint not_after;
  uint64_t generation = 0;  // 1 for the first load, +1 per adopted change
};

class ReloadingCredentials {
 public:
  struct Options {
    std::function<TimePoint()> now = [] { return std::chrono::system_clock::now(); };
    // How often the background poller looks at the files once Start()ed.
    std::chrono::milliseconds poll_interval = std::chrono::seconds(10);
    // When set, a certificate naming anyone else is refused (a node must not pick up another
    // node's certificate from a mis-mounted Secret).
    std::optional<Identity> expected_identity;
    // Called after each adopted change (not the first load), on the polling thread, with no lock
    // held: the place to rebuild a TLS context or push to grpc's certificate distributor.
    std::function<void(const std::shared_ptr<const CredentialBundle>&)> on_change;
  };

  static Result<std::unique_ptr<ReloadingCredentials>> Load(CredentialFiles files, Options options);
  ~ReloadingCredentials();
  ReloadingCredentials(const ReloadingCredentials&) = delete;
  ReloadingCredentials& operator=(const ReloadingCredentials&) = delete;

  // Starts a thread that calls Poll() every poll_interval until Stop() or destruction.
  void Start();
  void Stop();

  // Looks at the files now. OK when they are unchanged or a change was adopted; the refusal
  // otherwise (also kept in last_error()).
  Status Poll();

  std::shared_ptr<const CredentialBundle> Current() const;
  uint64_t generation() const;
  // The current certificate's notAfter in seconds since the epoch: the value of
  // dispotify_tls_cert_not_after_seconds.
  double not_after_seconds() const;
  // The last refusal, OK once a change (or the unchanged current set) is adopted again.
  Status last_error() const;
  uint64_t refused_reloads() const;

 private:
  struct Stamps {
    FileStamp cert, key, ca;
    bool operator==(const Stamps&) const = default;
  };

  ReloadingCredentials(CredentialFiles files, Options options);
  Result<Stamps> StatAll() const;
  // Reads and validates the files; the bundle has no generation yet.
  Result<CredentialBundle> ReadAndValidate() const;
  void RunPoller();

  const CredentialFiles files_;
  const Options options_;

  std::mutex poll_mu_;  // one Poll() at a time; taken before mu_

  mutable std::mutex mu_;  // guards everything below
  std::shared_ptr<const CredentialBundle> current_;
  Stamps loaded_stamps_;
  Status last_error_;
  uint64_t refused_ = 0;

  std::mutex thread_mu_;
  std::condition_variable thread_cv_;
  bool stop_ = false;
  std::thread poller_;
};

}  // namespace dispotify::tls
