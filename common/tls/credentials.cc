#include "common/tls/credentials.h"

#include "common/tls/file_watch.h"

namespace dispotify::tls {

ReloadingCredentials::ReloadingCredentials(CredentialFiles files, Options options)
    : files_(std::move(files)), options_(std::move(options)) {}

ReloadingCredentials::~ReloadingCredentials() {
  Stop();
}

Result<std::unique_ptr<ReloadingCredentials>> ReloadingCredentials::Load(CredentialFiles files,
                                                                         Options options) {
  std::unique_ptr<ReloadingCredentials> creds(new ReloadingCredentials(std::move(files), std::move(options)));
  auto stamps = creds->StatAll();
  if (!stamps.ok()) return stamps.status();
  auto bundle = creds->ReadAndValidate();
  if (!bundle.ok()) return bundle.status();
  bundle->generation = 1;
  creds->current_ = std::make_shared<const CredentialBundle>(std::move(bundle).value());
  creds->loaded_stamps_ = *stamps;
  return creds;
}

Result<ReloadingCredentials::Stamps> ReloadingCredentials::StatAll() const {
  auto stat_one = [](const std::string& path) { return StampOf(path); };
  auto cert = stat_one(files_.cert);
  if (!cert.ok()) return cert.status();
  auto key = stat_one(files_.key);
  if (!key.ok()) return key.status();
  auto ca = stat_one(files_.ca);
  if (!ca.ok()) return ca.status();
  return Stamps{*cert, *key, *ca};
}

Result<CredentialBundle> ReloadingCredentials::ReadAndValidate() const {
  CredentialBundle b;
  auto cert_pem = ReadSmallFile(files_.cert);
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = ReadSmallFile(files_.key);
  if (!key_pem.ok()) return key_pem.status();
  auto ca_pem = ReadSmallFile(files_.ca);
  if (!ca_pem.ok()) return ca_pem.status();

  auto certs = CertsFromPem(*cert_pem);
  if (!certs.ok()) return Status::InvalidArgument(files_.cert + ": " + certs.status().message());
  X509* leaf = certs->front().get();
  auto key = KeyFromPem(*key_pem);
  if (!key.ok()) return Status::InvalidArgument(files_.key + ": " + key.status().message());
  auto roots = CertsFromPem(*ca_pem);
  if (!roots.ok()) return Status::InvalidArgument(files_.ca + ": " + roots.status().message());

  if (Status s = KeyMatchesCert(leaf, key->get()); !s.ok()) {
    return Status::InvalidArgument(files_.key + " does not belong to " + files_.cert);
  }
  auto identity = ParseIdentity(leaf);
  if (!identity.ok()) return Status::InvalidArgument(files_.cert + ": " + identity.status().message());
  if (options_.expected_identity && *identity != *options_.expected_identity) {
    return Status::InvalidArgument(files_.cert + " names " + identity->Uri() + ", expected " +
                                   options_.expected_identity->Uri());
  }
  std::vector<X509*> root_ptrs;
  for (const auto& r : *roots) root_ptrs.push_back(r.get());
  if (Status s = VerifyChain(leaf, root_ptrs, options_.now()); !s.ok()) {
    return Status::FailedPrecondition(files_.cert + " against " + files_.ca + ": " + s.message());
  }

  b.identity = std::move(identity).value();
  b.not_before = NotBefore(leaf);
  b.not_after = NotAfter(leaf);
  b.cert_pem = std::move(cert_pem).value();
  b.key_pem = std::move(key_pem).value();
  b.ca_pem = std::move(ca_pem).value();
  return b;
}

Status ReloadingCredentials::Poll() {
  std::lock_guard poll_lock(poll_mu_);
  auto stamps = StatAll();
  std::shared_ptr<const CredentialBundle> current;
  {
    std::lock_guard lock(mu_);
    if (stamps.ok() && *stamps == loaded_stamps_) {
      last_error_ = Status::Ok();
      return Status::Ok();
    }
    current = current_;
  }
  // Stamps are taken before reading: a file replaced while being read shows up as a change at the
  // next poll, never as a change that was missed.
  Result<CredentialBundle> bundle =
      stamps.ok() ? ReadAndValidate() : Result<CredentialBundle>(stamps.status());
  if (!bundle.ok()) {
    std::lock_guard lock(mu_);
    last_error_ = bundle.status();
    ++refused_;
    return bundle.status();
  }
  // A touch, or a rewrite with the same bytes, is not a rotation: consumers would rebuild their
  // TLS contexts for nothing.
  if (bundle->cert_pem == current->cert_pem && bundle->key_pem == current->key_pem &&
      bundle->ca_pem == current->ca_pem) {
    std::lock_guard lock(mu_);
    loaded_stamps_ = *stamps;
    last_error_ = Status::Ok();
    return Status::Ok();
  }
  bundle->generation = current->generation + 1;
  auto next = std::make_shared<const CredentialBundle>(std::move(bundle).value());
  {
    std::lock_guard lock(mu_);
    current_ = next;
    loaded_stamps_ = *stamps;
    last_error_ = Status::Ok();
  }
  if (options_.on_change) options_.on_change(next);
  return Status::Ok();
}

std::shared_ptr<const CredentialBundle> ReloadingCredentials::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

uint64_t ReloadingCredentials::generation() const {
  std::lock_guard lock(mu_);
  return current_->generation;
}

double ReloadingCredentials::not_after_seconds() const {
  std::lock_guard lock(mu_);
  return std::chrono::duration<double>(current_->not_after.time_since_epoch()).count();
}

Status ReloadingCredentials::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

uint64_t ReloadingCredentials::refused_reloads() const {
  std::lock_guard lock(mu_);
  return refused_;
}

void ReloadingCredentials::Start() {
  std::lock_guard lock(thread_mu_);
  if (poller_.joinable()) return;
  stop_ = false;
  poller_ = std::thread([this] { RunPoller(); });
}

void ReloadingCredentials::Stop() {
  {
    std::lock_guard lock(thread_mu_);
    stop_ = true;
  }
  thread_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

void ReloadingCredentials::RunPoller() {
  std::unique_lock lock(thread_mu_);
  while (!thread_cv_.wait_for(lock, options_.poll_interval, [this] { return stop_; })) {
    lock.unlock();
    // The refusal is kept in last_error() for the caller's logs and health; nothing to do here.
    (void)Poll();
    lock.lock();
  }
}

}  // namespace dispotify::tls
