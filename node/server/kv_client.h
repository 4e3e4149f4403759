#pragma once
// A small KV + Cluster client that finds and follows the leader: used by dispotify-kvctl, the e2e tests and
// scripts. A call is retried, within an overall time budget, on "not-leader" (going to the hinted
// leader, or the next endpoint when there is no hint), UNAVAILABLE, DEADLINE_EXCEEDED and
// CANCELLED; each attempt has its own short deadline. Put is also retried on ABORTED
// ("commit-unknown"): writing the same value to the same key twice is harmless, so the retry
// settles the unknown outcome. Not thread-safe: one client per thread.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dispotify/v1/cluster.grpc.pb.h"
#include "dispotify/v1/kv.grpc.pb.h"

namespace dispotify::server {

class KvClient {
 public:
  // `credentials`: the client certificate's channel credentials with mTLS
  // (tls::ClientChannelCredentials), null for a plaintext cluster (insecure_grpc).
  explicit KvClient(std::vector<std::string> endpoints,
                    std::chrono::milliseconds attempt_timeout = std::chrono::milliseconds(2000),
                    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

  grpc::Status Put(const std::string& key, const std::string& value, std::chrono::milliseconds budget,
                   uint64_t* index = nullptr);
  grpc::Status Get(const std::string& key, std::chrono::milliseconds budget,
                   std::optional<std::string>* value);
  grpc::Status ChangeMembership(const v1::MembershipRequest& req, std::chrono::milliseconds budget,
                                v1::MembershipResponse* resp = nullptr);
  grpc::Status TransferLeadership(uint64_t target, std::chrono::milliseconds budget);
  // One attempt against one endpoint, no retry.
  grpc::Status Status(const std::string& endpoint, v1::StatusResponse* resp);

  // The endpoint the last successful call went to.
  const std::string& current() const { return endpoints_[current_]; }
  void AddEndpoint(const std::string& endpoint);

 private:
  template <typename Fn>
  grpc::Status Retry(std::chrono::milliseconds budget, bool retry_aborted, Fn&& attempt);
  const std::shared_ptr<grpc::Channel>& ChannelFor(const std::string& endpoint);
  // Moves to the leader named by a "not-leader:<id>:<address>" message, or to the next endpoint.
  void Redirect(const grpc::Status& st);

  std::vector<std::string> endpoints_;
  size_t current_ = 0;
  std::chrono::milliseconds attempt_timeout_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
};

}  // namespace dispotify::server
