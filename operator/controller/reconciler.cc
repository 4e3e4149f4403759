#include "operator/controller/reconciler.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>

#include "common/logging.h"
#include "common/sha256.h"
#include "operator/plan/health.h"

namespace dispotify::op::controller {

using web::json::value;

kube::ResourceType DispotifyClusters() {
  return {std::string(api::kApiVersion), std::string(api::kPlural), true};
}

kube::ResourceType ServiceMonitors() {
  return {"monitoring.coreos.com/v1", "servicemonitors", true};
}

namespace {

std::string RandomHex(size_t bytes) {
  std::random_device rd;  // getrandom(2) on Linux
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    const unsigned b = rd() & 0xffu;
    out += kHex[b >> 4];
    out += kHex[b & 0xfu];
  }
  return out;
}

const value* Path(const value& v, std::initializer_list<const char*> path) {
  const value* at = &v;
  for (const char* name : path) {
    if (!at->is_object()) return nullptr;
    auto& o = at->as_object();
    auto it = o.find(name);
    if (it == o.end()) return nullptr;
    at = &it->second;
  }
  return at;
}

std::string PathString(const value& v, std::initializer_list<const char*> path) {
  const value* at = Path(v, path);
  return at != nullptr && at->is_string() ? at->as_string() : "";
}

kube::ResourceType TypeOf(const value& object) {
  const std::string kind = object.at("kind").as_string();
  if (kind == "Secret") return kube::Secrets();
  if (kind == "ConfigMap") return kube::ConfigMaps();
  if (kind == "Service") return kube::Services();
  if (kind == "StatefulSet") return kube::StatefulSets();
  if (kind == "PodDisruptionBudget") return kube::PodDisruptionBudgets();
  if (kind == "NetworkPolicy") return kube::NetworkPolicies();
  return ServiceMonitors();
}

// Event reasons for the actions, as `kubectl describe` shows them.
const char* ActionReason(const plan::Decision& d) {
  if (d.operation.type == plan::kOpRecoverQuorum && d.action.type == plan::ActionType::kDeletePod)
    return "RecoveringQuorum";
  switch (d.action.type) {
    case plan::ActionType::kMarkBootstrapped: return "Bootstrapped";
    case plan::ActionType::kAddLearner: return "AddingLearner";
    case plan::ActionType::kPromote: return "PromotingMember";
    case plan::ActionType::kTransferLeadership: return "TransferringLeadership";
    case plan::ActionType::kDrain: return "DrainingMember";
    case plan::ActionType::kUndrain: return "UndrainingMember";
    case plan::ActionType::kRemoveMember: return "RemovingMember";
    case plan::ActionType::kSetReplicationFactor: return "SettingReplicationFactor";
    case plan::ActionType::kDeletePod: return "RestartingPod";
    case plan::ActionType::kClearRecoveryRequest: return "QuorumRecovered";
    case plan::ActionType::kNone:
    case plan::ActionType::kWait: break;
  }
  return "";
}

}  // namespace

Reconciler::Reconciler(ReconcilerDeps deps, ReconcilerOptions options)
    : deps_(std::move(deps)), options_(std::move(options)) {
  if (!deps_.now) deps_.now = [] { return static_cast<int64_t>(std::time(nullptr)); };
  if (!deps_.may_act) deps_.may_act = [] { return true; };
  if (!deps_.new_token) deps_.new_token = [] { return RandomHex(32); };
  if (!deps_.node_url) {
    deps_.node_url = [](const NodeView& v) {
      const std::string ip = PodIp(v.pod);
      if (ip.empty()) return std::string();
      const bool v6 = ip.find(':') != std::string::npos;
      return "http://" + (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(specs::kHttpPort);
    };
  }
}

bool CrashPointMatches(const std::string& point, const std::string& type, const std::string& step) {
  if (point.empty()) return false;
  const size_t slash = point.find('/');
  if (slash == std::string::npos) return false;
  const std::string want_type = point.substr(0, slash);
  return (want_type == "*" || want_type == type) && point.substr(slash + 1) == step;
}

Status Reconciler::Gate() const {
  return deps_.may_act() ? Status::Ok()
                         : Status::Aborted("no longer the leader: this pass stops before writing");
}

Result<std::string> Reconciler::AdminToken(const std::string& ns, const std::string& name) {
  auto secret = deps_.kube->Get({kube::Secrets(), ns, specs::AdminSecretName(name), ""});
  if (secret.ok()) {
    const std::string encoded = PathString(*secret, {"data", std::string(specs::kAdminTokenKey).c_str()});
    if (!encoded.empty()) {
      auto token = kube::DecodeBase64(encoded);
      if (token.ok() && !token->empty()) return *token;
    }
  } else if (!kube::IsNotFound(secret.status())) {
    return secret.status();
  }
  return deps_.new_token();
}

std::vector<NodeView> Reconciler::Observe(const api::DispotifyCluster& cluster,
                                          const std::vector<value>& pods, nodes::NodeAdmin* admin,
                                          const value& object) {
  std::vector<NodeView> views;
  for (const auto& pod : pods) {
    NodeView v;
    v.ordinal = PodOrdinal(cluster.metadata.name, pod);
    if (v.ordinal < 0) continue;
    v.pod = pod;
    const std::string url = deps_.node_url(v);
    if (url.empty() || PodTerminating(pod)) {
      v.error = url.empty() ? "no pod IP yet" : "terminating";
    } else if (auto st = admin->GetStatus(url); !st.ok()) {
      v.error = st.status().ToString();
    } else if (!st->cluster_id.empty() && st->cluster_id != cluster.metadata.uid) {
      // A volume left by another cluster of the same name: its node is not ours to count.
      v.error = "node reports cluster_id " + st->cluster_id + ", this cluster is " + cluster.metadata.uid;
      deps_.events->Warning(object, "ForeignNode",
                            specs::PodName(cluster.metadata.name, v.ordinal) + ": " + v.error);
    } else {
      v.status = std::move(*st);
    }
    views.push_back(std::move(v));
  }
  return views;
}

Status Reconciler::ExpandVolumes(const api::DispotifyCluster& cluster, int32_t pods) {
  auto want = api::ParseQuantityBytes(cluster.spec.storage.size);
  if (!want.ok()) return want.status();
  for (int32_t ordinal = 0; ordinal < pods; ++ordinal) {
    auto pvc = deps_.kube->Get({kube::PersistentVolumeClaims(), cluster.metadata.namespace_,
                                specs::PvcName(cluster.metadata.name, ordinal), ""});
    if (!pvc.ok()) {
      if (kube::IsNotFound(pvc.status())) continue;  // the StatefulSet makes it with the pod
      return pvc.status();
    }
    auto have = api::ParseQuantityBytes(PathString(*pvc, {"spec", "resources", "requests", "storage"}));
    if (have.ok() && *have >= *want) continue;
    DISPOTIFY_RETURN_IF_ERROR(Gate());
    auto patched = deps_.kube->Apply({kube::PersistentVolumeClaims(), cluster.metadata.namespace_,
                                      specs::PvcName(cluster.metadata.name, ordinal), ""},
                                     specs::PvcExpansion(cluster, ordinal));
    if (!patched.ok()) return patched.status();
  }
  return Status::Ok();
}

Result<int64_t> Reconciler::Certificates(const api::DispotifyCluster& cluster, int32_t pods,
                                         const value& object, int64_t now) {
  const std::string& ns = cluster.metadata.namespace_;
  const std::string& name = cluster.metadata.name;
  const kube::ResourceRef ca_ref{kube::Secrets(), ns, specs::CaSecretName(name), ""};
  const kube::ResourceRef tls_ref{kube::Secrets(), ns, specs::TlsSecretName(name), ""};
  auto ca_secret = deps_.kube->Get(ca_ref);
  if (!ca_secret.ok() && !kube::IsNotFound(ca_secret.status())) return ca_secret.status();
  auto tls_secret = deps_.kube->Get(tls_ref);
  if (!tls_secret.ok() && !kube::IsNotFound(tls_secret.status())) return tls_secret.status();

  // Reading keys back from PEM costs about a millisecond each (OpenSSL 3's decoders): a pass that
  // finds both Secrets as the last pass left them, before anything is due, skips the checks.
  std::string fingerprint;
  if (ca_secret.ok()) {
    Sha256 sha;
    sha.Update(cluster.metadata.uid + "\n" + std::to_string(pods) + "\n");
    if (const value* d = Path(*ca_secret, {"data"})) sha.Update(d->serialize());
    sha.Update("\n");
    if (tls_secret.ok()) {
      if (const value* d = Path(*tls_secret, {"data"})) sha.Update(d->serialize());
    }
    fingerprint = sha.FinalHex();
    std::lock_guard lock(cert_cache_mu_);
    auto it = cert_cache_.find(ns + "/" + name);
    if (it != cert_cache_.end() && it->second.fingerprint == fingerprint && now < it->second.look_again_at)
      return it->second.next_renewal;
  }

  std::optional<certs::Ca> ca;
  if (ca_secret.ok()) {
    auto cert = kube::DecodeBase64(PathString(*ca_secret, {"data", std::string(specs::kCaCertKey).c_str()}));
    auto key = kube::DecodeBase64(PathString(*ca_secret, {"data", std::string(specs::kCaKeyKey).c_str()}));
    auto parsed = cert.ok() && key.ok()
                      ? certs::ParseCa(*cert, *key, cluster.metadata.uid)
                      : Result<certs::Ca>(Status::InvalidArgument("its data is not base64"));
    if (!parsed.ok()) {
      // Never replaced on our own: every pod's certificate chains to it. A person decides
      // (docs/operator.md, "Certificates": delete the Secret to start over with a new CA).
      const std::string message =
          "Secret " + ca_ref.name + " holds no usable CA (" + parsed.status().message() +
          "); the pods' certificates are neither issued nor renewed until it is fixed "
          "or deleted";
      deps_.events->Warning(object, "CAUnusable", message);
      return Status::FailedPrecondition(message);
    }
    ca = std::move(parsed).value();
  } else {
    auto made = certs::NewCa(cluster.metadata.uid, now, options_.certificates);
    if (!made.ok()) return made.status();
    DISPOTIFY_RETURN_IF_ERROR(Gate());
    // Create, not apply: if another writer made one meanwhile, theirs stands and is read next pass.
    auto created = deps_.kube->Create(ca_ref, specs::CaSecret(cluster, made->cert_pem, made->key_pem));
    if (!created.ok()) return created.status();
    deps_.events->Normal(object, "CACreated", "created the cluster CA in Secret " + ca_ref.name);
    ca = std::move(made).value();
  }

  const plan::CertificateFacts ca_facts = certs::CaFacts(*ca);
  if (now >= ca_facts.not_after) {
    const std::string message = "the cluster CA in Secret " + ca_ref.name +
                                " has expired: no pod certificate can be issued; delete the Secret to make a "
                                "new CA (docs/operator.md, \"Certificates\")";
    deps_.events->Warning(object, "CAExpired", message);
    return Status::FailedPrecondition(message);
  }
  const plan::CertificateDecision ca_decision = plan::DecideCertificate(ca_facts, now);
  if (ca_decision.verdict == plan::CertificateVerdict::kRenew) {
    // Rotating the CA is not automated (docs/operator.md); say so well before it matters.
    deps_.events->Warning(object, "CAExpiresSoon",
                          "the cluster CA in Secret " + ca_ref.name +
                              " is past two thirds of its lifetime and is not rotated automatically "
                              "(docs/operator.md, \"Certificates\")");
  }

  std::map<std::string, std::string> current;
  if (tls_secret.ok()) {
    const value* data = Path(*tls_secret, {"data"});
    if (data != nullptr && data->is_object()) {
      for (const auto& [k, v] : data->as_object()) {
        if (!v.is_string()) continue;
        auto decoded = kube::DecodeBase64(v.as_string());
        if (decoded.ok()) current[k] = *decoded;  // an undecodable entry is reissued
      }
    }
  }
  auto plan = certs::PlanPodCertificates(*ca, cluster.metadata, pods, options_.settings, current, now,
                                         options_.certificates);
  if (!plan.ok()) return plan.status();
  if (plan->changed) {
    DISPOTIFY_RETURN_IF_ERROR(Gate());
    auto applied = deps_.kube->Apply(tls_ref, specs::TlsSecret(cluster, plan->data));
    if (!applied.ok()) return applied.status();
    if (!plan->issued.empty()) {
      std::string message = "issued certificates in Secret " + tls_ref.name + ":";
      for (const auto& [ordinal, why] : plan->issued)
        message += " " + specs::PodName(name, ordinal) + " (" + why + ")";
      deps_.events->Normal(object, "CertificatesIssued", message);
      DLOG_INFO << ns << "/" << name << ": " << message;
    }
  } else if (!fingerprint.empty() && ca_decision.verdict == plan::CertificateVerdict::kKeep) {
    std::lock_guard lock(cert_cache_mu_);
    const int64_t first_due =
        plan->next_renewal == 0 ? ca_decision.renew_at : std::min(plan->next_renewal, ca_decision.renew_at);
    cert_cache_[ns + "/" + name] = CertCacheEntry{fingerprint, plan->next_renewal, first_due};
  }
  return plan->next_renewal;
}

Status Reconciler::ApplyOwned(const api::DispotifyCluster& cluster, const plan::Decision& decision,
                              const plan::Observed& observed, const std::string& token) {
  const std::string& ns = cluster.metadata.namespace_;
  specs::DesiredParams params;
  params.stateful_set.replicas = decision.statefulset_replicas;
  auto sts = deps_.kube->Get({kube::StatefulSets(), ns, specs::StatefulSetName(cluster.metadata.name), ""});
  if (sts.ok()) {
    const value* templates = Path(*sts, {"spec", "volumeClaimTemplates"});
    if (templates != nullptr && templates->is_array() && templates->size() > 0) {
      params.stateful_set.claim_size =
          PathString(templates->as_array().at(0), {"spec", "resources", "requests", "storage"});
    }
  } else if (!kube::IsNotFound(sts.status())) {
    return sts.status();
  }
  params.bootstrap_node_id = cluster.status.bootstrapped ? 0 : 1;
  params.admin_token = token;
  params.current_voters = observed.group ? observed.group->Voters() : 0;
  if (decision.operation.type == plan::kOpRecoverQuorum) {
    params.force_new_cluster =
        specs::ForceNewCluster{.node_id = decision.operation.member, .token = decision.operation.token};
  }
  if (cluster.spec.monitoring.service_monitor) {
    auto crd =
        deps_.kube->Get({kube::CustomResourceDefinitions(), "", "servicemonitors.monitoring.coreos.com", ""});
    params.service_monitor_crd_missing = !crd.ok();
  }
  for (const auto& object : specs::DesiredObjects(cluster, options_.settings, params)) {
    DISPOTIFY_RETURN_IF_ERROR(Gate());
    const std::string name = PathString(object, {"metadata", "name"});
    auto applied = deps_.kube->Apply({TypeOf(object), ns, name, ""}, object);
    if (!applied.ok()) return applied.status();
  }
  return ExpandVolumes(cluster, decision.statefulset_replicas);
}

Status Reconciler::WriteStatus(const api::DispotifyCluster& cluster, const api::ClusterStatus& status) {
  DISPOTIFY_RETURN_IF_ERROR(Gate());
  auto r =
      deps_.kube->Apply({DispotifyClusters(), cluster.metadata.namespace_, cluster.metadata.name, "status"},
                        api::StatusApplyObject(cluster.metadata, status));
  return r.ok() ? Status::Ok() : r.status();
}

Status Reconciler::Act(const api::DispotifyCluster& cluster, const plan::Decision& decision,
                       const std::vector<NodeView>& views, nodes::NodeAdmin* admin) {
  const plan::Action& a = decision.action;
  if (a.type == plan::ActionType::kNone || a.type == plan::ActionType::kWait ||
      a.type == plan::ActionType::kMarkBootstrapped)
    return Status::Ok();
  DISPOTIFY_RETURN_IF_ERROR(Gate());
  if (a.type == plan::ActionType::kDeletePod) {
    const int32_t ordinal = specs::OrdinalOfNodeId(a.node_id);
    for (const auto& v : views) {
      if (v.ordinal != ordinal) continue;
      kube::DeleteOptions opts;
      opts.precondition_uid = PathString(v.pod, {"metadata", "uid"});  // only the pod we judged
      Status s = deps_.kube->Delete(
          {kube::Pods(), cluster.metadata.namespace_, specs::PodName(cluster.metadata.name, ordinal), ""},
          opts);
      return kube::IsNotFound(s) ? Status::Ok() : s;
    }
    return Status::Ok();  // already gone
  }
  if (a.type == plan::ActionType::kClearRecoveryRequest) {
    value annotations = value::object();
    annotations[std::string(api::kRecoverFromAnnotation)] = value::null();
    annotations[std::string(api::kRecoverUidAnnotation)] = value::null();
    value patch = value::object();
    patch["metadata"]["annotations"] = annotations;
    auto r = deps_.kube->MergePatch(
        {DispotifyClusters(), cluster.metadata.namespace_, cluster.metadata.name, ""}, patch);
    return r.ok() ? Status::Ok() : r.status();
  }
  std::string leader;
  const nodes::NodeStatus* lead = FindLeader(views);
  for (const auto& v : views) {
    if (v.status && &*v.status == lead) leader = deps_.node_url(v);
  }
  if (leader.empty())
    return Status::Unavailable("no leader to send " + std::string(plan::ActionName(a.type)) + " to");
  switch (a.type) {
    case plan::ActionType::kAddLearner: return admin->AddLearner(leader, a.node_id, a.address, a.node_uuid);
    case plan::ActionType::kPromote: return admin->Promote(leader, a.node_id);
    case plan::ActionType::kTransferLeadership: return admin->TransferLeadership(leader, 0);
    case plan::ActionType::kDrain: return admin->Drain(leader, a.node_id);
    case plan::ActionType::kUndrain: return admin->Undrain(leader, a.node_id);
    case plan::ActionType::kRemoveMember: return admin->RemoveMember(leader, a.node_id);
    case plan::ActionType::kSetReplicationFactor: return admin->SetReplicationFactor(leader, a.value);
    default: return Status::Ok();
  }
}

Result<Outcome> Reconciler::Reconcile(const std::string& ns, const std::string& name) {
  auto object = deps_.kube->Get({DispotifyClusters(), ns, name, ""});
  if (!object.ok()) {
    if (kube::IsNotFound(object.status())) return Outcome{.summary = "gone"};
    return object.status();
  }
  auto parsed = api::ParseCluster(*object);
  if (!parsed.ok()) {
    // The API server's own rules should have refused it; nothing is changed until it is fixed.
    deps_.events->Warning(*object, "InvalidSpec", parsed.status().message());
    return Outcome{.summary = "invalid: " + parsed.status().message()};
  }
  const api::DispotifyCluster& cluster = *parsed;
  if (!cluster.metadata.deletion_timestamp.empty()) return Outcome{.summary = "being deleted"};

  auto token = AdminToken(ns, name);
  if (!token.ok()) return token.status();
  kube::ListOptions list;
  list.label_selector = specs::SelectorString(name);
  auto pods = deps_.kube->List({kube::Pods(), ns, "", ""}, list);
  if (!pods.ok()) return pods.status();
  auto admin = deps_.node_admin(*token);
  const std::vector<NodeView> views = Observe(cluster, pods->items, admin.get(), *object);

  const int64_t now = deps_.now();
  plan::Observed observed = BuildObserved(cluster, options_.settings, views, now);
  if (cluster.spec.metadata_store.type == api::MetadataStoreType::kPostgres) {
    const std::string& secret_name = cluster.spec.metadata_store.postgres_secret_name;
    auto secret = deps_.kube->Get({kube::Secrets(), ns, secret_name, ""});
    if (!secret.ok() && !kube::IsNotFound(secret.status())) return secret.status();
    observed.metadata_urls = MetadataUrlsOf(secret_name, secret.ok() ? &*secret : nullptr);
  }
  plan::Decision decision = plan::NextStep(observed, options_.plan);

  // Certificates are kept valid even while paused (an expired one would stop the cluster), for the
  // pods there are; otherwise for every pod the StatefulSet is about to run.
  int32_t cert_pods = decision.statefulset_replicas;
  if (cluster.spec.paused) {
    cert_pods = 0;
    for (const auto& v : views) cert_pods = std::max(cert_pods, v.ordinal + 1);
  }
  auto next_renewal = Certificates(cluster, cert_pods, *object, now);
  if (!next_renewal.ok()) return next_renewal.status();
  if (!cluster.spec.paused) DISPOTIFY_RETURN_IF_ERROR(ApplyOwned(cluster, decision, observed, *token));

  const plan::Health health = plan::Summarize(observed, decision, KnownMembers(views));
  api::ClusterStatus status = BuildStatus(cluster, observed, decision, health, views, now, options_.plan);

  // The journal step is durable before its action starts.
  if (!(decision.operation == observed.operation)) {
    DISPOTIFY_RETURN_IF_ERROR(WriteStatus(cluster, status));
    const std::string step = decision.operation.type + "/" + decision.operation.step;
    if (CrashPointMatches(options_.crash_after_journal, decision.operation.type, decision.operation.step)) {
      DLOG_WARN << "failpoint crash_after_journal " << step << ": exiting before the action";
      std::_Exit(86);
    }
  }
  Status acted = Act(cluster, decision, views, admin.get());
  if (acted.ok() && decision.action.type != plan::ActionType::kWait &&
      decision.action.type != plan::ActionType::kNone &&
      CrashPointMatches(options_.crash_after_action, decision.operation.type, decision.operation.step)) {
    DLOG_WARN << "failpoint crash_after_action " << decision.operation.type << "/" << decision.operation.step
              << ": exiting after the action";
    std::_Exit(86);
  }
  const char* reason = ActionReason(decision);
  if (deps_.metrics != nullptr) {
    const plan::ActionType t = decision.action.type;
    if (t != plan::ActionType::kNone && t != plan::ActionType::kWait)
      deps_.metrics->Action(decision.operation.type, plan::ActionName(t), acted.ok());
    if (decision.refusal) deps_.metrics->Refusal(decision.refusal->reason);
  }
  if (acted.ok()) {
    if (decision.action.type == plan::ActionType::kMarkBootstrapped) status.bootstrapped = true;
    if (*reason != '\0') deps_.events->Normal(*object, reason, decision.action.reason);
  } else {
    if (status.operation) status.operation->last_error = acted.message();
    deps_.events->Warning(*object, "ActionFailed",
                          std::string(plan::ActionName(decision.action.type)) + ": " + acted.message());
  }
  if (decision.refusal) deps_.events->Warning(*object, decision.refusal->reason, decision.refusal->message);
  if (!(status == cluster.status)) DISPOTIFY_RETURN_IF_ERROR(WriteStatus(cluster, status));
  if (!acted.ok()) return acted;

  Outcome out;
  out.summary = std::string(plan::ActionName(decision.action.type)) + ": " + decision.action.reason;
  // A refusal may clear without an event the informers see (a Secret gains a key): look again soon.
  out.requeue_after =
      decision.action.type == plan::ActionType::kNone && !decision.refusal ? options_.resync : options_.busy;
  if (*next_renewal > 0) {
    // Back when the first certificate is due (at least a second on: a clock a little behind the
    // issuer's must not spin the loop).
    const auto due = std::chrono::milliseconds(std::max<int64_t>(1, *next_renewal - now) * 1000);
    out.requeue_after = std::min(out.requeue_after, due);
  }
  return out;
}

}  // namespace dispotify::op::controller
