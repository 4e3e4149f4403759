#include "node/server/kv_client.h"

#include <algorithm>
#include <thread>

namespace dispotify::server {

using Channel = std::shared_ptr<grpc::Channel>;

KvClient::KvClient(std::vector<std::string> endpoints, std::chrono::milliseconds attempt_timeout,
                   std::shared_ptr<grpc::ChannelCredentials> credentials)
    : endpoints_(std::move(endpoints)),
      attempt_timeout_(attempt_timeout),
      credentials_(std::move(credentials)) {
  if (endpoints_.empty()) endpoints_.push_back("127.0.0.1:7001");
}

void KvClient::AddEndpoint(const std::string& endpoint) {
  if (std::find(endpoints_.begin(), endpoints_.end(), endpoint) == endpoints_.end())
    endpoints_.push_back(endpoint);
}

const std::shared_ptr<grpc::Channel>& KvClient::ChannelFor(const std::string& endpoint) {
  auto& channel = channels_[endpoint];
  if (!channel) {
    // gRPC's default reconnect backoff (1 s, growing to 120 s) would keep failing calls to a node
    // long after it came back; a client that follows a moving leader wants to notice at once.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel = grpc::CreateCustomChannel(
        endpoint, credentials_ ? credentials_ : grpc::InsecureChannelCredentials(), args);
  }
  return channel;
}

void KvClient::Redirect(const grpc::Status& st) {
  const std::string& msg = st.error_message();
  if (st.error_code() == grpc::StatusCode::FAILED_PRECONDITION && msg.rfind("not-leader:", 0) == 0) {
    auto colon = msg.find(':', 11);
    if (colon != std::string::npos && colon + 1 < msg.size()) {
      std::string address = msg.substr(colon + 1);
      AddEndpoint(address);
      current_ =
          static_cast<size_t>(std::find(endpoints_.begin(), endpoints_.end(), address) - endpoints_.begin());
      return;
    }
  }
  current_ = (current_ + 1) % endpoints_.size();
}

template <typename Fn>
grpc::Status KvClient::Retry(std::chrono::milliseconds budget, bool retry_aborted, Fn&& attempt) {
  const auto end = std::chrono::steady_clock::now() + budget;
  auto backoff = std::chrono::milliseconds(10);
  grpc::Status st;
  std::string last_target;
  while (true) {
    grpc::ClientContext ctx;
    auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::clamp(remaining, std::chrono::milliseconds(1), attempt_timeout_));
    const std::string target = endpoints_[current_];
    st = attempt(ChannelFor(target), &ctx);
    if (st.ok()) return st;
    const auto code = st.error_code();
    const bool not_leader =
        code == grpc::StatusCode::FAILED_PRECONDITION && st.error_message().rfind("not-leader:", 0) == 0;
    const bool retryable =
        not_leader || code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
        code == grpc::StatusCode::CANCELLED || (retry_aborted && code == grpc::StatusCode::ABORTED);
    if (!retryable || std::chrono::steady_clock::now() >= end) return st;
    // A channel that failed to connect backs off before trying again: start a fresh one instead.
    if (code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED)
      channels_.erase(target);
    Redirect(st);
    // A redirect to a known leader goes at once; anything else (an election, a dead node) waits.
    const bool fresh_leader =
        not_leader && endpoints_[current_] != target && st.error_message().back() != ':';
    if (!fresh_leader) {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
    }
  }
}

grpc::Status KvClient::Put(const std::string& key, const std::string& value, std::chrono::milliseconds budget,
                           uint64_t* index) {
  v1::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  v1::PutResponse resp;
  grpc::Status st = Retry(budget, true, [&](const Channel& ch, grpc::ClientContext* ctx) {
    return v1::KV::NewStub(ch)->Put(ctx, req, &resp);
  });
  if (st.ok() && index) *index = resp.index();
  return st;
}

grpc::Status KvClient::Get(const std::string& key, std::chrono::milliseconds budget,
                           std::optional<std::string>* value) {
  v1::GetRequest req;
  req.set_key(key);
  v1::GetResponse resp;
  grpc::Status st = Retry(budget, true, [&](const Channel& ch, grpc::ClientContext* ctx) {
    return v1::KV::NewStub(ch)->Get(ctx, req, &resp);
  });
  if (st.ok()) *value = resp.found() ? std::optional<std::string>(resp.value()) : std::nullopt;
  return st;
}

grpc::Status KvClient::ChangeMembership(const v1::MembershipRequest& req, std::chrono::milliseconds budget,
                                        v1::MembershipResponse* resp) {
  v1::MembershipResponse local;
  if (!resp) resp = &local;
  return Retry(budget, false, [&](const Channel& ch, grpc::ClientContext* ctx) {
    return v1::Cluster::NewStub(ch)->ChangeMembership(ctx, req, resp);
  });
}

grpc::Status KvClient::TransferLeadership(uint64_t target, std::chrono::milliseconds budget) {
  v1::TransferRequest req;
  req.set_target(target);
  v1::TransferResponse resp;
  return Retry(budget, false, [&](const Channel& ch, grpc::ClientContext* ctx) {
    return v1::Cluster::NewStub(ch)->TransferLeadership(ctx, req, &resp);
  });
}

grpc::Status KvClient::Status(const std::string& endpoint, v1::StatusResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + attempt_timeout_);
  grpc::Status st = v1::Cluster::NewStub(ChannelFor(endpoint))->Status(&ctx, v1::StatusRequest(), resp);
  if (!st.ok()) channels_.erase(endpoint);
  return st;
}

}  // namespace dispotify::server
