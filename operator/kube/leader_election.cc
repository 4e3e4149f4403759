#include "operator/kube/leader_election.h"

#include "common/logging.h"

namespace dispotify::op::kube {

namespace json = web::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::string Str(const json::value& o, const char* key) {
  if (!o.is_object() || !o.has_field(key) || !o.at(key).is_string()) return "";
  return o.at(key).as_string();
}

int32_t Int(const json::value& o, const char* key) {
  if (!o.is_object() || !o.has_field(key) || !o.at(key).is_integer()) return 0;
  return o.at(key).as_integer();
}

}  // namespace

LeaseRecord LeaseRecordFromJson(const json::value& lease) {
  LeaseRecord r;
  r.resource_version = MetaString(lease, "resourceVersion");
  if (!lease.is_object() || !lease.has_field("spec")) return r;
  const json::value& spec = lease.at("spec");
  r.holder = Str(spec, "holderIdentity");
  r.lease_duration_seconds = Int(spec, "leaseDurationSeconds");
  r.acquire_time = Str(spec, "acquireTime");
  r.renew_time = Str(spec, "renewTime");
  r.transitions = Int(spec, "leaseTransitions");
  return r;
}

json::value LeaseToJson(const LeaseRecord& record, const json::value& base, const std::string& ns,
                        const std::string& name) {
  json::value obj = base.is_object() ? base : json::value::object();
  obj["apiVersion"] = json::value::string("coordination.k8s.io/v1");
  obj["kind"] = json::value::string("Lease");
  if (!obj.has_field("metadata") || !obj.at("metadata").is_object()) obj["metadata"] = json::value::object();
  json::value& meta = obj["metadata"];
  meta["name"] = json::value::string(name);
  meta["namespace"] = json::value::string(ns);
  // json::value::erase throws on a missing key.
  if (record.resource_version.empty()) {
    if (meta.has_field("resourceVersion")) meta.erase("resourceVersion");
  } else {
    meta["resourceVersion"] = json::value::string(record.resource_version);
  }
  // Fields of the spec this client does not know (strategy, preferredHolder) are kept.
  if (!obj.has_field("spec") || !obj.at("spec").is_object()) obj["spec"] = json::value::object();
  json::value& spec = obj["spec"];
  auto set = [&spec](const char* key, const std::string& v) {
    if (!v.empty()) {
      spec[key] = json::value::string(v);
    } else if (spec.has_field(key)) {
      spec.erase(key);
    }
  };
  set("holderIdentity", record.holder);
  set("acquireTime", record.acquire_time);
  set("renewTime", record.renew_time);
  spec["leaseDurationSeconds"] = json::value::number(record.lease_duration_seconds);
  spec["leaseTransitions"] = json::value::number(record.transitions);
  return obj;
}

Status ValidateTiming(const LeaderElectionTiming& t) {
  if (t.retry_period.count() <= 0) return Status::InvalidArgument("the retry period must be positive");
  if (t.renew_deadline <= t.retry_period) {
    return Status::InvalidArgument("the renew deadline must be longer than the retry period");
  }
  if (t.lease_duration <= t.renew_deadline) {
    return Status::InvalidArgument("the lease duration must be longer than the renew deadline");
  }
  return Status::Ok();
}

ElectionState::ElectionState(std::string identity, LeaderElectionTiming timing)
    : identity_(std::move(identity)), timing_(timing) {}

void ElectionState::Observe(const std::optional<LeaseRecord>& record, TimePoint now) {
  if (!record) {
    // Deleted under us: someone may create it and lead at once.
    observed_.reset();
    observed_at_ = now;
    leading_until_ = TimePoint::min();
    return;
  }
  if (!observed_ || !observed_->SameRecord(*record)) observed_at_ = now;
  observed_ = record;
  if (record->holder != identity_) leading_until_ = TimePoint::min();
}

ElectionState::TimePoint ElectionState::expires_at() const {
  if (!observed_) return observed_at_;
  return observed_at_ + std::chrono::seconds(observed_->lease_duration_seconds);
}

ElectionState::Action ElectionState::Next(TimePoint now) const {
  if (!observed_) return Action::kCreate;
  if (observed_->holder == identity_) return Action::kRenew;
  if (observed_->holder.empty() || now >= expires_at()) return Action::kTakeOver;
  return Action::kWait;
}

LeaseRecord ElectionState::Desired(Action action, std::chrono::system_clock::time_point wall) const {
  const std::string now = FormatTime(wall);
  // Whole seconds on the wire, rounded up: others wait at least our duration.
  const auto secs = static_cast<int32_t>((timing_.lease_duration.count() + 999) / 1000);
  LeaseRecord r = observed_.value_or(LeaseRecord{});
  switch (action) {
    case Action::kWait: break;
    case Action::kRenew:
      r.holder = identity_;
      r.lease_duration_seconds = secs;
      r.renew_time = now;
      if (r.acquire_time.empty()) r.acquire_time = now;
      break;
    case Action::kCreate:
    case Action::kTakeOver:
      if (observed_ && observed_->holder != identity_) r.transitions = observed_->transitions + 1;
      r.holder = identity_;
      r.lease_duration_seconds = secs;
      r.acquire_time = now;
      r.renew_time = now;
      if (action == Action::kCreate) r.resource_version.clear();
      break;
  }
  return r;
}

void ElectionState::Written(const LeaseRecord& written, TimePoint sent) {
  observed_ = written;
  observed_at_ = sent;
  if (written.holder == identity_) leading_until_ = std::max(leading_until_, sent + timing_.renew_deadline);
}

LeaderElector::LeaderElector(KubeApi* api, LeaderElectionConfig config)
    : api_(api),
      config_(std::move(config)),
      lease_ref_{Leases(), config_.lease_namespace, config_.lease_name, ""},
      state_(config_.identity, config_.timing) {}

LeaderElector::~LeaderElector() {
  Stop();
}

Status LeaderElector::Start() {
  DISPOTIFY_RETURN_IF_ERROR(ValidateTiming(config_.timing));
  if (config_.lease_name.empty() || config_.lease_namespace.empty()) {
    return Status::InvalidArgument("leader election needs a Lease name and namespace");
  }
  if (config_.identity.empty()) return Status::InvalidArgument("leader election needs an identity");
  if (loop_.joinable()) return Status::FailedPrecondition("leader election already started");
  monitor_ = std::jthread([this](std::stop_token stop) { Monitor(stop); });
  loop_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
  return Status::Ok();
}

bool LeaderElector::IsLeader() const {
  std::lock_guard lock(mu_);
  return state_.IsLeader(SteadyClock::now());
}

std::string LeaderElector::leader() const {
  std::lock_guard lock(mu_);
  return state_.observed() ? state_.observed()->holder : "";
}

bool LeaderElector::Sleep(std::stop_token stop, std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, stop, d, [] { return false; });
  return !stop.stop_requested();
}

void LeaderElector::Loop(std::stop_token stop) {
  const std::string what = "lease " + config_.lease_namespace + "/" + config_.lease_name;
  bool must_read = true;
  uint64_t failures = 0;  // writes failed in a row, for the log
  while (!stop.stop_requested()) {
    bool read = true;
    {
      // Fast path of a leader: renew from the Lease it wrote last, without reading it first.
      std::lock_guard lock(mu_);
      read = must_read || !state_.IsLeader(SteadyClock::now()) || !last_object_.is_object();
    }
    if (read) {
      auto got = api_->Get(lease_ref_);
      if (!got.ok() && !IsNotFound(got.status())) {
        DLOG_WARN << "leader election: reading " << what << " failed: " << got.status().ToString();
        if (!Sleep(stop, config_.timing.retry_period)) return;
        continue;
      }
      std::lock_guard lock(mu_);
      std::optional<LeaseRecord> record;
      if (got.ok()) {
        last_object_ = *got;
        record = LeaseRecordFromJson(*got);
      } else {
        last_object_ = json::value::null();
      }
      const std::string before = state_.observed() ? state_.observed()->holder : "";
      state_.Observe(record, SteadyClock::now());
      if (record && record->holder != before) {
        DLOG_INFO << "leader election: " << what << " is held by "
                  << (record->holder.empty() ? "nobody" : record->holder);
      }
      ++changes_;
      cv_.notify_all();
      must_read = false;
    }
    ElectionState::Action action;
    json::value body;
    {
      std::lock_guard lock(mu_);
      action = state_.Next(SteadyClock::now());
      if (action != ElectionState::Action::kWait) {
        body = LeaseToJson(state_.Desired(action, std::chrono::system_clock::now()), last_object_,
                           config_.lease_namespace, config_.lease_name);
      }
    }
    if (action != ElectionState::Action::kWait) {
      const auto sent = SteadyClock::now();
      auto r = action == ElectionState::Action::kCreate ? api_->Create(lease_ref_, body)
                                                        : api_->Update(lease_ref_, body);
      std::lock_guard lock(mu_);
      if (r.ok()) {
        failures = 0;
        const bool was = state_.IsLeader(SteadyClock::now());
        last_object_ = *r;
        state_.Written(LeaseRecordFromJson(*r), sent);
        if (!was && state_.IsLeader(SteadyClock::now())) {
          DLOG_INFO << "leader election: " << config_.identity << " now holds " << what;
        }
        ++changes_;
        cv_.notify_all();
      } else {
        must_read = true;
        if (IsConflict(r.status()) || r.status().code() == StatusCode::kAlreadyExists) {
          DLOG_DEBUG << "leader election: lost the race for " << what << ": " << r.status().ToString();
        } else if (++failures % 30 == 1) {  // the first of a run, then about once a minute
          DLOG_WARN << "leader election: writing " << what << " failed (" << failures
                    << " in a row): " << r.status().ToString();
        }
      }
    }
    if (!Sleep(stop, config_.timing.retry_period)) return;
  }
}

void LeaderElector::Monitor(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const bool leading = state_.IsLeader(SteadyClock::now());
    if (leading != announced_) {
      announced_ = leading;
      lock.unlock();
      if (leading) {
        if (config_.on_started_leading) config_.on_started_leading();
      } else {
        DLOG_WARN << "leader election: " << config_.identity << " stops leading (lease "
                  << config_.lease_namespace << "/" << config_.lease_name << " not renewed in time or lost)";
        if (config_.on_stopped_leading) config_.on_stopped_leading();
      }
      lock.lock();
      continue;
    }
    const uint64_t seen = changes_;
    auto changed = [&] { return changes_ != seen; };
    if (leading) {
      cv_.wait_until(lock, stop, state_.leading_until(), changed);
    } else {
      cv_.wait(lock, stop, changed);
    }
  }
}

void LeaderElector::Halt(bool release) {
  if (!loop_.joinable()) return;
  loop_.request_stop();
  monitor_.request_stop();
  loop_.join();
  monitor_.join();
  bool announced;
  json::value body;
  {
    std::lock_guard lock(mu_);
    state_.Resign();
    announced = announced_;
    announced_ = false;
    const auto& seen = state_.observed();
    if (release && seen && seen->holder == config_.identity && last_object_.is_object()) {
      LeaseRecord r = *seen;
      const std::string now = FormatTime(std::chrono::system_clock::now());
      r.holder.clear();
      r.lease_duration_seconds = 1;
      r.acquire_time = now;
      r.renew_time = now;
      body = LeaseToJson(r, last_object_, config_.lease_namespace, config_.lease_name);
    }
  }
  if (!release) return;
  // The owner stops acting before anyone else can take the lease.
  if (announced && config_.on_stopped_leading) config_.on_stopped_leading();
  if (body.is_object()) {
    auto r = api_->Update(lease_ref_, body);
    if (!r.ok()) {
      DLOG_WARN << "leader election: releasing lease " << config_.lease_namespace << "/" << config_.lease_name
                << " failed (others take it over when it expires): " << r.status().ToString();
    } else {
      DLOG_INFO << "leader election: " << config_.identity << " released lease " << config_.lease_namespace
                << "/" << config_.lease_name;
    }
  }
}

void LeaderElector::Stop() {
  Halt(true);
}
void LeaderElector::Abandon() {
  Halt(false);
}

}  // namespace dispotify::op::kube
