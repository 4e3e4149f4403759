#include "operator/controller/observe.h"

#include <algorithm>
#include <cctype>

namespace dispotify::op::controller {

using web::json::value;

namespace {

const value* Field(const value& object, const char* name) {
  if (!object.is_object()) return nullptr;
  const auto& o = object.as_object();
  auto it = o.find(name);
  return it == o.end() ? nullptr : &it->second;
}

std::string StringAt(const value& object, std::initializer_list<const char*> path) {
  const value* v = &object;
  for (const char* name : path) {
    v = Field(*v, name);
    if (v == nullptr) return "";
  }
  return v->is_string() ? v->as_string() : "";
}

bool ContainerRunning(const value& pod) {
  const value* status = Field(pod, "status");
  const value* statuses = status != nullptr ? Field(*status, "containerStatuses") : nullptr;
  if (statuses == nullptr || !statuses->is_array()) return false;
  for (const auto& s : statuses->as_array()) {
    if (StringAt(s, {"name"}) != specs::kContainerName) continue;
    const value* state = Field(s, "state");
    return state != nullptr && Field(*state, "running") != nullptr;
  }
  return false;
}

bool PodReady(const value& pod) {
  const value* status = Field(pod, "status");
  const value* conditions = status ? Field(*status, "conditions") : nullptr;
  if (conditions == nullptr || !conditions->is_array()) return false;
  for (const auto& c : conditions->as_array()) {
    if (StringAt(c, {"type"}) == "Ready") return StringAt(c, {"status"}) == "True";
  }
  return false;
}

std::string PodAnnotation(const value& pod, std::string_view key) {
  const value* meta = Field(pod, "metadata");
  const value* annotations = meta ? Field(*meta, "annotations") : nullptr;
  if (annotations == nullptr || !annotations->is_object()) return "";
  const value* v = Field(*annotations, std::string(key).c_str());
  return v != nullptr && v->is_string() ? v->as_string() : "";
}

bool IsVoterRole(const std::string& role) {
  return role == "leader" || role == "voter";
}

}  // namespace

int32_t PodOrdinal(std::string_view cluster_name, const value& pod) {
  return OrdinalOfPodName(cluster_name, StringAt(pod, {"metadata", "name"}));
}

int32_t OrdinalOfPodName(std::string_view cluster_name, const std::string& name) {
  if (name.size() <= cluster_name.size() + 1 || name.compare(0, cluster_name.size(), cluster_name) != 0 ||
      name[cluster_name.size()] != '-')
    return -1;
  const std::string digits = name.substr(cluster_name.size() + 1);
  if (digits.empty() || digits.size() > 4 || !std::all_of(digits.begin(), digits.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      }))
    return -1;
  return static_cast<int32_t>(std::stoi(digits));
}

std::string PodIp(const value& pod) {
  return StringAt(pod, {"status", "podIP"});
}

std::string PodUid(const value& pod) {
  return StringAt(pod, {"metadata", "uid"});
}

bool PodTerminating(const value& pod) {
  return !StringAt(pod, {"metadata", "deletionTimestamp"}).empty();
}

const nodes::NodeStatus* FindLeader(const std::vector<NodeView>& views) {
  const nodes::NodeStatus* best = nullptr;
  for (const auto& v : views) {
    if (!v.status || !v.status->IsLeader()) continue;
    // A node that says it leads is believed only when a majority of its own voters say so too:
    // a node that created a group of its own (a bootstrap it should not have made) leads nobody
    // else, and must never be the one the operator asks to change the membership.
    int voters = 0, confirmed = 0;
    for (const auto& m : v.status->members) {
      if (!IsVoterRole(m.role)) continue;
      ++voters;
      for (const auto& other : views) {
        if (other.status && other.status->node_id == m.node_id &&
            other.status->leader_id == v.status->node_id && other.status->term == v.status->term)
          ++confirmed;
      }
    }
    if (voters == 0 || confirmed < plan::QuorumOf(voters)) continue;
    if (best == nullptr || v.status->term > best->term) best = &*v.status;
  }
  return best;
}

std::vector<plan::Member> MembersFromStatus(const nodes::NodeStatus& status) {
  std::vector<plan::Member> members;
  for (const auto& m : status.members) {
    members.push_back(plan::Member{.node_id = m.node_id,
                                   .node_uuid = m.node_uuid,
                                   .voter = IsVoterRole(m.role),
                                   .healthy = m.healthy,
                                   .draining = m.draining,
                                   .match_index = m.match_index,
                                   .files = m.files});
  }
  return members;
}

plan::Group GroupFromStatus(const nodes::NodeStatus& leader) {
  return plan::Group{.leader_id = leader.node_id,
                     .commit_index = leader.commit_index,
                     .replication_factor = leader.replication_factor,
                     .under_replicated = leader.under_replicated.value_or(0),
                     .members = MembersFromStatus(leader)};
}

plan::Operation JournalFromStatus(const std::optional<api::Operation>& operation) {
  plan::Operation j;
  if (!operation) return j;
  j.type = operation->type;
  j.member = operation->node_id;
  j.node_uuid = operation->node_uuid;
  j.step = operation->step;
  j.value = static_cast<uint32_t>(operation->target_replication_factor.value_or(0));
  j.last_error = operation->last_error;
  j.token = operation->token;
  // A journal without a readable time is as old as can be: a timeout judged on it fires at once
  // rather than never.
  if (auto t = api::ParseRfc3339(operation->step_started); t.ok()) j.step_since_s = *t;
  return j;
}

std::optional<api::Operation> JournalToStatus(const plan::Operation& journal, std::string_view cluster_name,
                                              const std::optional<api::Operation>& previous, int64_t now_s) {
  if (!journal.active()) return std::nullopt;
  api::Operation op;
  const bool same = previous && previous->type == journal.type && previous->node_id == journal.member;
  if (same) op = *previous;
  op.type = journal.type;
  op.node_id = journal.member;
  op.member = journal.member > 0 ? specs::PodName(cluster_name, specs::OrdinalOfNodeId(journal.member)) : "";
  op.node_uuid = journal.node_uuid;
  op.step = journal.step;
  if (!same || op.started.empty()) op.started = api::Rfc3339(now_s);
  op.step_started = api::Rfc3339(journal.step_since_s > 0 ? journal.step_since_s : now_s);
  op.last_error = journal.last_error;
  op.token = journal.token;
  if (journal.value > 0) op.target_replication_factor = static_cast<int32_t>(journal.value);
  return op;
}

plan::Observed BuildObserved(const api::DispotifyCluster& cluster, const specs::Settings& settings,
                             const std::vector<NodeView>& views, int64_t now_s) {
  plan::Observed o;
  o.desired = plan::Desired{.replicas = cluster.spec.replicas,
                            .replication_factor = static_cast<uint32_t>(cluster.spec.replication_factor),
                            .paused = cluster.spec.paused};
  o.bootstrapped = cluster.status.bootstrapped;
  o.operation = JournalFromStatus(cluster.status.operation);
  o.now_s = now_s;
  const std::string hash = specs::RestartHash(cluster, settings);
  for (const auto& v : views) {
    if (v.ordinal < 0) continue;
    plan::Pod p;
    p.ordinal = v.ordinal;
    p.exists = true;
    p.terminating = PodTerminating(v.pod);
    p.running = ContainerRunning(v.pod);
    p.ready = PodReady(v.pod);
    p.up_to_date = PodAnnotation(v.pod, specs::kRestartHashAnnotation) == hash;
    if (v.status) p.node_uuid = v.status->node_uuid;
    p.peer_address = specs::PeerAddress(cluster.metadata, v.ordinal, settings);
    p.uid = PodUid(v.pod);
    o.pods.push_back(std::move(p));
  }
  if (const nodes::NodeStatus* leader = FindLeader(views)) o.group = GroupFromStatus(*leader);
  o.known_members = KnownMembers(views);
  o.recovery = RecoveryRequestOf(cluster);
  return o;
}

plan::MetadataUrls MetadataUrlsOf(const std::string& secret_name, const value* secret) {
  plan::MetadataUrls urls{.secret = secret_name};
  if (secret == nullptr || !secret->is_object()) return urls;
  urls.found = true;
  if (!secret->has_field("data") || !secret->at("data").is_object()) return urls;
  const value& data = secret->at("data");
  // Values are base64; a non-empty encoding is a non-empty URL. Whether it connects is the node's
  // to say (its pod does not become Ready).
  for (;; ++urls.members) {
    const std::string key = "member-" + std::to_string(urls.members);
    if (!data.has_field(key) || !data.at(key).is_string() || data.at(key).as_string().empty()) break;
  }
  return urls;
}

std::optional<plan::RecoveryRequest> RecoveryRequestOf(const api::DispotifyCluster& cluster) {
  const auto& annotations = cluster.metadata.annotations;
  auto from = annotations.find(std::string(api::kRecoverFromAnnotation));
  auto uid = annotations.find(std::string(api::kRecoverUidAnnotation));
  if (from == annotations.end() && uid == annotations.end()) return std::nullopt;
  plan::RecoveryRequest r;
  if (from != annotations.end()) r.pod = from->second;
  r.uid_matches = uid != annotations.end() && uid->second == cluster.metadata.uid;
  const int32_t ordinal = OrdinalOfPodName(cluster.metadata.name, r.pod);
  if (ordinal >= 0) r.node_id = specs::NodeIdOfOrdinal(ordinal);
  return r;
}

std::vector<plan::Member> KnownMembers(const std::vector<NodeView>& views) {
  if (const nodes::NodeStatus* leader = FindLeader(views)) return MembersFromStatus(*leader);
  const nodes::NodeStatus* latest = nullptr;
  for (const auto& v : views) {
    if (v.status && (latest == nullptr || v.status->term > latest->term)) latest = &*v.status;
  }
  return latest ? MembersFromStatus(*latest) : std::vector<plan::Member>{};
}

api::ClusterStatus BuildStatus(const api::DispotifyCluster& cluster, const plan::Observed& observed,
                               const plan::Decision& decision, const plan::Health& health,
                               const std::vector<NodeView>& views, int64_t now_s,
                               const plan::Options& options) {
  const std::string& name = cluster.metadata.name;
  api::ClusterStatus s = cluster.status;
  s.observed_generation = cluster.metadata.generation;
  s.phase = health.phase;
  s.selector = specs::SelectorString(name);
  s.ready_replicas = health.ready_replicas;
  s.leader.clear();
  s.members.clear();
  if (observed.group) {
    const plan::Group& g = *observed.group;
    s.leader = specs::PodName(name, specs::OrdinalOfNodeId(g.leader_id));
    s.replication_factor = static_cast<int32_t>(g.replication_factor);
    s.under_replicated_files = static_cast<int64_t>(g.under_replicated);
    s.replicas = g.Voters();
    for (const auto& m : g.members) {
      api::Member am;
      am.pod = specs::PodName(name, specs::OrdinalOfNodeId(m.node_id));
      am.node_id = m.node_id;
      am.node_uuid = m.node_uuid;
      am.role = m.node_id == g.leader_id ? api::MemberRole::kLeader
                                         : (m.voter ? api::MemberRole::kVoter : api::MemberRole::kLearner);
      am.healthy = m.healthy;
      am.caught_up = m.match_index + options.max_catch_up_lag >= g.commit_index;
      for (const auto& v : views) {
        if (v.status && v.status->node_id == m.node_id) am.version = v.status->version;
      }
      s.members.push_back(std::move(am));
    }
  } else {
    s.replicas = static_cast<int32_t>(observed.pods.size());
  }
  const std::string now = api::Rfc3339(now_s);
  for (const auto& c : health.conditions) {
    api::SetCondition(&s.conditions,
                      api::Condition{.type = c.type,
                                     .status = c.status ? "True" : "False",
                                     .reason = c.reason.empty() ? "Unknown" : c.reason,
                                     .message = c.message,
                                     .observed_generation = cluster.metadata.generation},
                      now);
  }
  s.operation = JournalToStatus(decision.operation, name, cluster.status.operation, now_s);
  return s;
}

}  // namespace dispotify::op::controller
