// dispotify-kvctl: a minimal command-line client of the KV service that follows the leader.
//   dispotify-kvctl [--endpoints H:P,H:P,...] [--timeout SECONDS]
//                   [--tls-dir DIR --cluster-id ID] COMMAND
//   --tls-dir DIR (or DISPOTIFY_TLS_DIR): mutual TLS with DIR/tls.crt, DIR/tls.key, DIR/ca.crt (as
//   `dispotify-pki issue` writes them); the nodes serve only members, so this is a member's
//   certificate. --cluster-id (or DISPOTIFY_CLUSTER_ID, default dispotify-local): the cluster the
//   servers must belong to. Without a TLS directory the client speaks plaintext, which only a
//   node started with insecure_grpc accepts.
//   status                      one line per endpoint: id, role, term, leader, commit, applied
//   wait-leader                 waits until some endpoint reports a leader; prints its address
//   put KEY VALUE               prints the commit index
//   get KEY                     prints the value (exit 1 when not found)
//   add-learner ID ADDRESS | promote ID | remove ID | transfer [ID]
// Exit codes: 0 ok, 1 not found / failed, 2 usage.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/tls/grpc_credentials.h"
#include "node/server/kv_client.h"

namespace {

int Usage() {
  std::fputs(
      "usage: dispotify-kvctl [--endpoints H:P,...] [--timeout SECONDS] [--tls-dir DIR --cluster-id ID] "
      "status|wait-leader|put K V|get K|add-learner ID ADDR|promote ID|remove ID|transfer [ID]\n",
      stderr);
  return 2;
}

int Fail(const grpc::Status& st) {
  std::fprintf(stderr, "error: %d %s\n", static_cast<int>(st.error_code()), st.error_message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using dispotify::server::KvClient;
  std::vector<std::string> endpoints;
  double timeout_s = 10;
  std::string tls_dir;
  std::string cluster_id;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--endpoints" && i + 1 < argc) {
      std::stringstream ss(argv[++i]);
      std::string e;
      while (std::getline(ss, e, ',')) {
        if (!e.empty()) endpoints.push_back(e);
      }
    } else if (a == "--tls-dir" && i + 1 < argc) {
      tls_dir = argv[++i];
    } else if (a == "--cluster-id" && i + 1 < argc) {
      cluster_id = argv[++i];
    } else if (a == "--timeout" && i + 1 < argc) {
      timeout_s = std::atof(argv[++i]);
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) return Usage();
  if (endpoints.empty()) {
    if (const char* env = std::getenv("DISPOTIFY_ENDPOINTS")) {
      std::stringstream ss(env);
      std::string e;
      while (std::getline(ss, e, ',')) {
        if (!e.empty()) endpoints.push_back(e);
      }
    }
  }
  if (endpoints.empty()) endpoints.push_back("127.0.0.1:7001");
  const auto budget = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  if (tls_dir.empty()) {
    if (const char* env = std::getenv("DISPOTIFY_TLS_DIR")) tls_dir = env;
  }
  if (cluster_id.empty()) {
    const char* env = std::getenv("DISPOTIFY_CLUSTER_ID");
    cluster_id = env ? env : "dispotify-local";
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!tls_dir.empty()) {
    auto creds = dispotify::tls::ClientChannelCredentials(
        {tls_dir + "/tls.crt", tls_dir + "/tls.key", tls_dir + "/ca.crt"}, cluster_id);
    if (!creds.ok()) {
      std::fprintf(stderr, "error: --tls-dir %s: %s\n", tls_dir.c_str(), creds.status().ToString().c_str());
      return 2;
    }
    credentials = std::move(creds).value();
  }
  KvClient client(endpoints, std::chrono::milliseconds(2000), credentials);
  const std::string& cmd = args[0];

  if (cmd == "status" && args.size() == 1) {
    int rc = 0;
    for (const auto& e : endpoints) {
      dispotify::v1::StatusResponse s;
      grpc::Status st = client.Status(e, &s);
      if (!st.ok()) {
        std::printf("%s unreachable (%s)\n", e.c_str(), st.error_message().c_str());
        rc = 1;
        continue;
      }
      std::printf("%s id=%lu role=%s term=%lu leader=%lu commit=%lu applied=%lu members=", e.c_str(),
                  static_cast<unsigned long>(s.node_id()), s.role().c_str(),
                  static_cast<unsigned long>(s.term()), static_cast<unsigned long>(s.leader_id()),
                  static_cast<unsigned long>(s.commit_index()),
                  static_cast<unsigned long>(s.applied_index()));
      for (int i = 0; i < s.members_size(); ++i) {
        const auto& m = s.members(i);
        std::printf("%s%lu%s", i ? "," : "", static_cast<unsigned long>(m.node_id()),
                    m.voter() ? "" : "(learner)");
      }
      std::printf("\n");
    }
    return rc;
  }
  if (cmd == "wait-leader" && args.size() == 1) {
    const auto end = std::chrono::steady_clock::now() + budget;
    while (std::chrono::steady_clock::now() < end) {
      for (const auto& e : endpoints) {
        dispotify::v1::StatusResponse s;
        if (client.Status(e, &s).ok() && s.leader_id() != 0 && s.role() == "leader") {
          std::printf("%lu %s\n", static_cast<unsigned long>(s.node_id()), e.c_str());
          return 0;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::fputs("no leader elected in time\n", stderr);
    return 1;
  }
  if (cmd == "put" && args.size() == 3) {
    uint64_t index = 0;
    grpc::Status st = client.Put(args[1], args[2], budget, &index);
    if (!st.ok()) return Fail(st);
    std::printf("OK index=%lu\n", static_cast<unsigned long>(index));
    return 0;
  }
  if (cmd == "get" && args.size() == 2) {
    std::optional<std::string> value;
    grpc::Status st = client.Get(args[1], budget, &value);
    if (!st.ok()) return Fail(st);
    if (!value) {
      std::fputs("(not found)\n", stderr);
      return 1;
    }
    std::printf("%s\n", value->c_str());
    return 0;
  }
  dispotify::v1::MembershipRequest req;
  if (cmd == "add-learner" && args.size() == 3) {
    req.set_op(dispotify::v1::MembershipRequest::ADD_LEARNER);
    req.set_node_id(std::strtoull(args[1].c_str(), nullptr, 10));
    req.set_address(args[2]);
  } else if ((cmd == "promote" || cmd == "remove") && args.size() == 2) {
    req.set_op(cmd == "promote" ? dispotify::v1::MembershipRequest::PROMOTE
                                : dispotify::v1::MembershipRequest::REMOVE);
    req.set_node_id(std::strtoull(args[1].c_str(), nullptr, 10));
  } else if (cmd == "transfer" && args.size() <= 2) {
    grpc::Status st =
        client.TransferLeadership(args.size() == 2 ? std::strtoull(args[1].c_str(), nullptr, 10) : 0, budget);
    if (!st.ok()) return Fail(st);
    std::puts("OK");
    return 0;
  } else {
    return Usage();
  }
  dispotify::v1::MembershipResponse resp;
  grpc::Status st = client.ChangeMembership(req, budget, &resp);
  if (!st.ok()) return Fail(st);
  std::printf("OK index=%lu\n", static_cast<unsigned long>(resp.index()));
  return 0;
}
