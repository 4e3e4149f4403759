#include "node/server/catalog_proposer.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <variant>

#include "dispotify/v1/cluster.grpc.pb.h"
#include "node/server/raft_node.h"
#include "node/transport/grpc_transport.h"

namespace dispotify::server {
namespace {

using Clock = std::chrono::steady_clock;

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Transient: nothing was committed, or the leader moved; try again.
bool Retryable(StatusCode code) {
  return code == StatusCode::kNotLeader || code == StatusCode::kRetry || code == StatusCode::kUnavailable;
}

Status FromGrpc(const grpc::Status& st) {
  switch (st.error_code()) {
    case grpc::StatusCode::FAILED_PRECONDITION:
      if (st.error_message().rfind("not-leader:", 0) == 0) return Status::NotLeader(0, st.error_message());
      return Status::FailedPrecondition(st.error_message());
    case grpc::StatusCode::ABORTED: return Status::CommitUnknown(st.error_message());
    case grpc::StatusCode::INVALID_ARGUMENT: return Status::InvalidArgument(st.error_message());
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      // The leader may have committed it after our deadline.
      return Status::CommitUnknown("the leader did not answer in time: " + st.error_message());
    default: return Status::Unavailable("leader unreachable: " + st.error_message());
  }
}

}  // namespace

Result<std::string> PrepareCatalogCommand(std::string_view command, const CommandLevelGate& gate) {
  auto cmd = catalog::DecodeCommand(command);
  if (!cmd.ok()) return Status::InvalidArgument("not a catalog command: " + cmd.status().message());
  if (gate) DISPOTIFY_RETURN_IF_ERROR(gate(cmd->body));
  cmd->now_ms = WallClockMs();
  return catalog::EncodeCommand(*cmd);
}

struct CatalogProposer::Channels {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::mutex mu;
  std::map<std::string, std::shared_ptr<grpc::Channel>> by_address;

  std::shared_ptr<grpc::Channel> Get(const std::string& address) {
    std::lock_guard lock(mu);
    auto& ch = by_address[address];
    if (!ch) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      transport::ApplyPeerChannelDefaults(&args);
      ch = grpc::CreateCustomChannel(address, transport::MakePeerChannelCredentials(credentials), args);
    }
    return ch;
  }
  void Forget(const std::string& address) {
    std::lock_guard lock(mu);
    by_address.erase(address);
  }
};

CatalogProposer::CatalogProposer(RaftNode* node, CommandLevelGate gate,
                                 std::shared_ptr<grpc::ChannelCredentials> credentials)
    : node_(node),
      gate_(std::move(gate)),
      channels_(std::make_unique<Channels>()),
      reads_(std::make_unique<ReadBatcher>(
          [this](Clock::time_point deadline) { return FetchReadIndex(deadline); })) {
  channels_->credentials = std::move(credentials);
}
CatalogProposer::~CatalogProposer() = default;

bool CatalogProposer::HasLeader() const {
  NodeStatus st = node_->status();
  return st.running && st.leader != kNoNode;
}

Result<std::string> CatalogProposer::Propose(const catalog::CommandBody& body,
                                             std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  // The follower's clock: replaced by the leader's when it prepares the command.
  const std::string command = catalog::EncodeCommand(catalog::Command{WallClockMs(), body});
  Status last = Status::Unavailable("no leader");
  // A call to the leader that failed in transit may have reached it and committed: retrying is
  // safe for every command (each is idempotent for its proposer) except in what it answers, since
  // a delete that already happened answers 404 the second time.
  bool ambiguous = false;
  auto r = ThroughLeader<std::string>(
      deadline, [&] { return ProposeLocally(command, deadline); },
      [&](const std::string& address) {
        auto out = ProposeRemotely(address, command, deadline);
        if (!out.ok() && out.status().code() == StatusCode::kUnavailable) ambiguous = true;
        return out;
      },
      &last);
  if (r) {
    if (ambiguous && !r->ok() && r->status().code() == StatusCode::kNotFound &&
        std::holds_alternative<catalog::DeleteSongCmd>(body)) {
      return Status::CommitUnknown(
          "an earlier attempt of this delete may have been applied (its answer was lost)");
    }
    return std::move(*r);
  }
  const std::string why = "the catalog change was not committed within " + std::to_string(timeout.count()) +
                          " ms (no leader or no quorum): " + last.message();
  if (ambiguous) return Status::CommitUnknown(why + "; an earlier attempt may have been applied");
  return Status::Unavailable(why);
}

template <typename T>
std::optional<Result<T>> CatalogProposer::ThroughLeader(
    Clock::time_point deadline, const std::function<Result<T>()>& local,
    const std::function<Result<T>(const std::string&)>& remote, Status* last) {
  std::minstd_rand rng(std::random_device{}());
  auto backoff = std::chrono::milliseconds(10);
  while (Clock::now() < deadline) {
    NodeStatus st = node_->status();
    if (!st.running) return Result<T>(Status::Unavailable("node is stopping"));
    Result<T> r = Status::Unavailable("no leader is known");
    if (st.role == consensus::Role::kLeader) {
      r = local();
    } else if (st.leader != kNoNode) {
      auto it = st.conf.members.find(st.leader);
      if (it != st.conf.members.end()) r = remote(it->second.address);
    }
    if (r.ok() || !Retryable(r.status().code())) return r;
    *last = r.status();
    // Full jitter: concurrent callers that all lost the leader do not retry in step.
    auto pause = std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(1, backoff.count())(rng));
    std::this_thread::sleep_for(
        std::min<Clock::duration>(pause, std::max<Clock::duration>(deadline - Clock::now(), {})));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
  }
  return std::nullopt;
}

Result<std::string> CatalogProposer::ProposeLocally(const std::string& command, Clock::time_point deadline) {
  auto prepared = PrepareCatalogCommand(command, gate_);
  if (!prepared.ok()) return prepared.status();
  struct Outcome {
    Status status;
    std::string value;
  };
  auto promise = std::make_shared<std::promise<Outcome>>();
  auto future = promise->get_future();
  node_->Propose(std::move(prepared).value(), [promise](const Status& st, LogIndex, std::string value) {
    promise->set_value(Outcome{st, std::move(value)});
  });
  if (future.wait_until(deadline) != std::future_status::ready)
    return Status::CommitUnknown("proposal still pending at the deadline");
  Outcome out = future.get();
  if (!out.status.ok()) return out.status;
  return std::move(out.value);
}

Result<std::string> CatalogProposer::ProposeRemotely(const std::string& address, const std::string& command,
                                                     Clock::time_point deadline) {
  auto channel = channels_->Get(address);
  auto stub = v1::Cluster::NewStub(channel);
  grpc::ClientContext ctx;
  const auto remaining = deadline - Clock::now();
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::min<Clock::duration>(remaining, std::chrono::seconds(5)));
  v1::ProposeRequest req;
  req.set_command(command);
  v1::ProposeResponse resp;
  grpc::Status gs = stub->Propose(&ctx, req, &resp);
  if (!gs.ok()) {
    if (gs.error_code() == grpc::StatusCode::UNAVAILABLE) channels_->Forget(address);
    return FromGrpc(gs);
  }
  // Read-your-writes on this node: wait until it applied the leader's entry.
  DISPOTIFY_RETURN_IF_ERROR(WaitApplied(LogIndex(resp.index()), deadline));
  const auto code = static_cast<StatusCode>(resp.code());
  if (code == StatusCode::kOk) return resp.value();
  return Status::FromCode(code, resp.message());
}

Status CatalogProposer::WaitApplied(LogIndex index, Clock::time_point deadline) const {
  while (node_->status().applied < index) {
    if (Clock::now() >= deadline)
      return Status::Timeout("index " + std::to_string(index.value()) + " not yet applied on this node");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status::Ok();
}

Status CatalogProposer::CatchUp(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto index = reads_->Await(deadline);
  if (!index.ok()) {
    read_failures_.fetch_add(1, std::memory_order_relaxed);
    return Status::Unavailable("could not confirm the latest catalog state with the leader within " +
                               std::to_string(timeout.count()) + " ms: " + index.status().message());
  }
  if (Status s = WaitApplied(*index, deadline); !s.ok()) {
    read_failures_.fetch_add(1, std::memory_order_relaxed);
    return Status::Unavailable("this node has not applied the leader's read index " +
                               std::to_string(index->value()) + " within " + std::to_string(timeout.count()) +
                               " ms");
  }
  return Status::Ok();
}

catalog::ReadStats CatalogProposer::read_stats() const {
  return catalog::ReadStats{reads_->reads(), reads_->rounds(),
                            read_failures_.load(std::memory_order_relaxed)};
}

Result<LogIndex> CatalogProposer::FetchReadIndex(Clock::time_point deadline) {
  Status last = Status::Unavailable("no leader is known");
  auto index = ThroughLeader<LogIndex>(
      deadline, [&] { return ReadIndexLocally(deadline); },
      [&](const std::string& address) { return ReadIndexRemotely(address, deadline); }, &last);
  if (!index) return Status::Unavailable(last.message());
  return std::move(*index);
}

Result<LogIndex> CatalogProposer::ReadIndexLocally(Clock::time_point deadline) {
  auto promise = std::make_shared<std::promise<Result<LogIndex>>>();
  auto future = promise->get_future();
  node_->ReadIndex([promise](const Status& st, LogIndex index) {
    promise->set_value(st.ok() ? Result<LogIndex>(index) : Result<LogIndex>(st));
  });
  if (future.wait_until(deadline) != std::future_status::ready)
    return Status::Timeout("read index still pending at the deadline");
  return future.get();
}

Result<LogIndex> CatalogProposer::ReadIndexRemotely(const std::string& address, Clock::time_point deadline) {
  auto stub = v1::Cluster::NewStub(channels_->Get(address));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::min<Clock::duration>(deadline - Clock::now(), std::chrono::seconds(5)));
  v1::ReadIndexRequest req;
  v1::ReadIndexResponse resp;
  grpc::Status gs = stub->ReadIndex(&ctx, req, &resp);
  if (!gs.ok()) {
    if (gs.error_code() == grpc::StatusCode::UNAVAILABLE) channels_->Forget(address);
    Status s = FromGrpc(gs);
    // Nothing is written by a read: a lost answer is simply not an answer.
    if (s.code() == StatusCode::kCommitUnknown) return Status::Timeout(s.message());
    return s;
  }
  return LogIndex(resp.index());
}

}  // namespace dispotify::server
