// PeerClient against real Replication servers on 127.0.0.1: every node of a test has its own
// BlobStore (in a temp dir), PeerClient, ReplicationService and gRPC server.

#include "node/replication/peer_client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/channel_arguments.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/file_system.h"
#include "common/sha256.h"
#include "dispotify/v1/replication.grpc.pb.h"
#include "dispotify/v1/replication.pb.h"
#include "node/replication/blob_store.h"
#include "node/replication/replication_service.h"
#include "node/transport/grpc_transport.h"
#include "tests/mocks/temp_dir.h"
#include "tests/support/bytes.h"

namespace dispotify::replication {
namespace {

using namespace std::chrono_literals;
using mocks::TempDir;
using transport::LoopbackServer;
using Clock = std::chrono::steady_clock;

constexpr char kCluster[] = "test-cluster";
constexpr size_t kPiece = 256 * 1024;
// Generous bound for anything the options bound by a few hundred milliseconds.
constexpr auto kBound = 5s;

using testing_bytes::Bytes;

PeerClientOptions TestOptions(NodeId self, std::string cluster = kCluster) {
  PeerClientOptions o;
  o.self = self;
  o.cluster_id = std::move(cluster);
  o.call_timeout = 2000ms;
  o.stall_timeout = 2000ms;  // generous: a loaded CI machine must not look like a stalled peer
  o.finish_timeout = 3000ms;
  o.max_attempts = 3;
  o.backoff_base = 10ms;
  o.backoff_max = 50ms;
  o.health_interval = 50ms;
  o.health_ttl = 1500ms;
  return o;
}

// Polls `done` until it holds or `limit` passes.
bool Eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = kBound) {
  const auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

struct TestNode {
  TestNode(NodeId node_id, const PeerClientOptions& options) : id(node_id) {
    auto opened = OpenBlobStore(DefaultFileSystem(), dir.path());
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    store = std::move(opened).value();
    client = std::make_unique<PeerClient>(options, store.get());
    service = std::make_unique<ReplicationService>(store.get(), id, kCluster, client.get(),
                                                   [this] { return applied_index.load(); });
    auto started = LoopbackServer::Start({service->service()}, transport::GrpcTransportOptions{});
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    server = std::move(started).value();
    address = server->address();
  }
  ~TestNode() { StopServer(); }
  void StopServer() {
    if (server) server->Shutdown();
  }

  std::string BlobPath(const std::string& file_id) const {
    const Sha256::Digest d = Sha256Digest(file_id);
    return dir.path() + "/blobs/" + ToHex(d.data(), 1) + "/" + file_id;
  }
  // Flips one content byte of the blob on disk.
  void Corrupt(const std::string& file_id, uint64_t content_offset) const {
    std::fstream f(BlobPath(file_id), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.is_open());
    const auto at = static_cast<std::streamoff>(BlobStore::kHeaderSize + content_offset);
    f.seekg(at);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(at);
    f.write(&c, 1);
    ASSERT_TRUE(f.good());
  }
  size_t TempFiles() const {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path() + "/blobs/.tmp"))
      ++n;
    return n;
  }
  bool HasBlob(const std::string& file_id) const { return store->Exists(file_id); }

  const NodeId id;
  TempDir dir;
  std::atomic<uint64_t> applied_index{0};
  std::unique_ptr<BlobStore> store;
  std::unique_ptr<PeerClient> client;
  std::unique_ptr<ReplicationService> service;
  std::unique_ptr<LoopbackServer> server;
  std::string address;
};

class PeerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint64_t i = 1; i <= 3; ++i) {
      nodes_.push_back(std::make_unique<TestNode>(NodeId(i), TestOptions(NodeId(i))));
    }
    for (auto& n : nodes_) n->client->SetPeers(Addresses());
  }

  std::map<NodeId, std::string> Addresses() const {
    std::map<NodeId, std::string> a;
    for (const auto& n : nodes_) a[n->id] = n->address;
    return a;
  }
  TestNode& node(uint64_t i) { return *nodes_[i - 1]; }
  PeerClient& client() { return *node(1).client; }  // node 1's client: node 1 is "self"

  static std::vector<std::shared_ptr<const std::string>> Pieces(const std::string& content) {
    std::vector<std::shared_ptr<const std::string>> out;
    for (size_t at = 0; at < content.size(); at += kPiece) {
      out.push_back(std::make_shared<const std::string>(content.substr(at, kPiece)));
    }
    return out;
  }

  static Status Write(PeerClient& c, NodeId to, const std::string& file_id, const std::string& content,
                      const WriteExpectations& expect = {}) {
    auto w = c.OpenWriter(to, file_id, expect);
    if (!w.ok()) return w.status();
    for (auto& piece : Pieces(content)) DISPOTIFY_RETURN_IF_ERROR((*w)->Append(piece));
    return (*w)->Finish(content.size(), Sha256Hex(content));
  }

  static Status Read(PeerClient& c, NodeId from, const std::string& file_id, std::string* out,
                     BlobInfo* info = nullptr, uint64_t offset = 0, uint64_t length = 0) {
    out->clear();
    int infos = 0;
    Status s = c.ReadFile(
        from, file_id, offset, length,
        [&](const BlobInfo& i) {
          ++infos;
          if (info != nullptr) *info = i;
          EXPECT_TRUE(out->empty()) << "on_info after data";
          return Status::Ok();
        },
        [&](std::string_view piece) {
          out->append(piece);
          return Status::Ok();
        });
    EXPECT_LE(infos, 1);
    return s;
  }

  std::vector<std::unique_ptr<TestNode>> nodes_;
};

TEST_F(PeerClientTest, WriteToSelfAndTwoRemotesReadsBackIdenticalFromEach) {
  const std::string content = Bytes(5 * 1024 * 1024 + 12345, 1);
  const std::string sha = Sha256Hex(content);
  std::vector<std::unique_ptr<ReplicaWriter>> writers;
  for (uint64_t i = 1; i <= 3; ++i) {
    auto w = client().OpenWriter(NodeId(i), "song-1.flac", {});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_EQ((*w)->node(), NodeId(i));
    writers.push_back(std::move(w).value());
  }
  for (auto& piece : Pieces(content)) {
    for (auto& w : writers) ASSERT_TRUE(w->Append(piece).ok()) << "node " << w->node();
  }
  for (auto& w : writers) ASSERT_TRUE(w->Finish(content.size(), sha).ok()) << "node " << w->node();

  for (uint64_t i = 1; i <= 3; ++i) {
    std::string got;
    BlobInfo info;
    ASSERT_TRUE(Read(client(), NodeId(i), "song-1.flac", &got, &info).ok()) << "node " << i;
    EXPECT_EQ(info.size, content.size());
    EXPECT_EQ(info.sha256, sha);
    EXPECT_TRUE(got == content) << "node " << i;
    auto verified = client().VerifyFile(NodeId(i), "song-1.flac");
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    EXPECT_EQ(verified->sha256, sha);
    EXPECT_EQ(node(i).TempFiles(), 0u);
  }
  // Node 1 seen from node 2 (remote for it).
  std::string got;
  ASSERT_TRUE(Read(*node(2).client, NodeId(1), "song-1.flac", &got).ok());
  EXPECT_TRUE(got == content);
}

TEST_F(PeerClientTest, EmptyFileAndExpectationsGivenUpFront) {
  ASSERT_TRUE(Write(client(), NodeId(2), "empty", "").ok());
  std::string got = "x";
  BlobInfo info;
  ASSERT_TRUE(Read(client(), NodeId(2), "empty", &got, &info).ok());
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(info.size, 0u);
  EXPECT_EQ(info.sha256, Sha256Hex(""));

  const std::string content = Bytes(300000, 2);
  WriteExpectations expect;
  expect.size = content.size();
  expect.sha256 = Sha256Hex(content);
  EXPECT_TRUE(Write(client(), NodeId(2), "known", content, expect).ok());
  expect.sha256 = Sha256Hex("something else");
  EXPECT_EQ(Write(client(), NodeId(3), "known", content, expect).code(), StatusCode::kCorruption);
  EXPECT_FALSE(node(3).HasBlob("known"));
  EXPECT_EQ(node(3).TempFiles(), 0u);
}

TEST_F(PeerClientTest, FullReadOfCorruptCopyFailsAndNeverDeliversTheWholeContent) {
  const std::string content = Bytes(3 * 1024 * 1024 + 7, 3);
  for (uint64_t i = 1; i <= 2; ++i) ASSERT_TRUE(Write(client(), NodeId(i), "bad", content).ok());
  node(1).Corrupt("bad", 12345);
  node(2).Corrupt("bad", content.size() - 1);  // in the very last piece
  for (uint64_t i = 1; i <= 2; ++i) {
    std::string got;
    EXPECT_EQ(Read(client(), NodeId(i), "bad", &got).code(), StatusCode::kCorruption) << "node " << i;
    EXPECT_LT(got.size(), content.size()) << "node " << i;
    EXPECT_EQ(client().VerifyFile(NodeId(i), "bad").status().code(), StatusCode::kCorruption);
  }
}

TEST_F(PeerClientTest, RangedReads) {
  const std::string content = Bytes(2 * 1024 * 1024 + 99, 4);
  for (uint64_t i = 1; i <= 2; ++i) ASSERT_TRUE(Write(client(), NodeId(i), "ranged", content).ok());
  for (uint64_t i = 1; i <= 2; ++i) {
    std::string got;
    BlobInfo info;
    ASSERT_TRUE(Read(client(), NodeId(i), "ranged", &got, &info, 1000, 700000).ok());
    EXPECT_TRUE(got == content.substr(1000, 700000));
    EXPECT_EQ(info.size, content.size());
    ASSERT_TRUE(Read(client(), NodeId(i), "ranged", &got, nullptr, content.size() - 10, 100).ok());
    EXPECT_EQ(got, content.substr(content.size() - 10));
    ASSERT_TRUE(Read(client(), NodeId(i), "ranged", &got, nullptr, 5000, 0).ok());  // to the end
    EXPECT_TRUE(got == content.substr(5000));
    ASSERT_TRUE(Read(client(), NodeId(i), "ranged", &got, nullptr, content.size() + 5, 10).ok());
    EXPECT_TRUE(got.empty());
  }
  // A ranged read is not verified: a flipped byte elsewhere does not stop it.
  node(2).Corrupt("ranged", 0);
  std::string got;
  ASSERT_TRUE(Read(client(), NodeId(2), "ranged", &got, nullptr, 1000, 10).ok());
  EXPECT_EQ(got, content.substr(1000, 10));
}

TEST_F(PeerClientTest, NotFoundAndInvalidIds) {
  std::string got;
  EXPECT_EQ(Read(client(), NodeId(2), "missing", &got).code(), StatusCode::kNotFound);
  EXPECT_EQ(Read(client(), NodeId(1), "missing", &got).code(), StatusCode::kNotFound);
  EXPECT_EQ(client().VerifyFile(NodeId(2), "missing").status().code(), StatusCode::kNotFound);
  // Ids are checked by the receiving node too (VerifyFile and DeleteFile leave it to the server).
  EXPECT_EQ(client().VerifyFile(NodeId(2), "../escape").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client().DeleteFile(NodeId(2), "a/b", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client().OpenWriter(NodeId(2), "..", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client().ReadFile(NodeId(99), "x", 0, 0, nullptr, nullptr).code(), StatusCode::kUnavailable);
}

TEST_F(PeerClientTest, TrailerMismatchLeavesNothing) {
  const std::string content = Bytes(1024 * 1024 + 5, 5);
  for (uint64_t i = 1; i <= 2; ++i) {
    auto w = client().OpenWriter(NodeId(i), "t", {});
    ASSERT_TRUE(w.ok());
    for (auto& piece : Pieces(content)) ASSERT_TRUE((*w)->Append(piece).ok());
    EXPECT_EQ((*w)->Finish(content.size(), Sha256Hex("not the content")).code(), StatusCode::kCorruption);
    EXPECT_FALSE(node(i).HasBlob("t"));
    EXPECT_EQ(node(i).TempFiles(), 0u);

    w = client().OpenWriter(NodeId(i), "t", {});
    ASSERT_TRUE(w.ok());
    for (auto& piece : Pieces(content)) ASSERT_TRUE((*w)->Append(piece).ok());
    EXPECT_EQ((*w)->Finish(content.size() + 1, Sha256Hex(content)).code(), StatusCode::kCorruption);
    EXPECT_FALSE(node(i).HasBlob("t"));
    EXPECT_EQ(node(i).TempFiles(), 0u);
    EXPECT_EQ(client().VerifyFile(NodeId(i), "t").status().code(), StatusCode::kNotFound);
  }
}

TEST_F(PeerClientTest, AnotherVersionNeedsOverwrite) {
  const std::string v1 = Bytes(100000, 6), v2 = Bytes(100000, 7);
  ASSERT_TRUE(Write(client(), NodeId(2), "v", v1).ok());
  EXPECT_EQ(Write(client(), NodeId(2), "v", v2).code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(Write(client(), NodeId(2), "v", v1).ok());  // same version again: idempotent
  WriteExpectations overwrite;
  overwrite.overwrite = true;
  ASSERT_TRUE(Write(client(), NodeId(2), "v", v2, overwrite).ok());
  std::string got;
  ASSERT_TRUE(Read(client(), NodeId(2), "v", &got).ok());
  EXPECT_TRUE(got == v2);
}

TEST_F(PeerClientTest, StreamEndingWithoutTrailerLeavesNothing) {
  // A sender that half-closes after some data, without a trailer.
  auto channel = grpc::CreateChannel(node(2).address, grpc::InsecureChannelCredentials());
  auto stub = v1::Replication::NewStub(channel);
  {
    grpc::ClientContext ctx;
    v1::ReplicateFileResponse response;
    auto stream = stub->ReplicateFile(&ctx, &response);
    v1::ReplicateFileChunk msg;
    msg.mutable_header()->set_file_id("dropped");
    msg.mutable_header()->set_cluster_id(kCluster);
    ASSERT_TRUE(stream->Write(msg));
    msg.set_data(Bytes(600000, 8));
    ASSERT_TRUE(stream->Write(msg));
    ASSERT_TRUE(stream->WritesDone());
    const grpc::Status st = stream->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
  }
  EXPECT_FALSE(node(2).HasBlob("dropped"));
  EXPECT_EQ(node(2).TempFiles(), 0u);

  // A sender that gives up (the ReplicaWriter cancels its stream).
  auto w = client().OpenWriter(NodeId(2), "dropped", {});
  ASSERT_TRUE(w.ok());
  for (auto& piece : Pieces(Bytes(2 * 1024 * 1024, 9))) ASSERT_TRUE((*w)->Append(piece).ok());
  (*w)->Abort();
  (*w)->Abort();  // idempotent
  EXPECT_FALSE((*w)->Finish(1, Sha256Hex("")).ok());
  EXPECT_TRUE(Eventually([&] { return node(2).TempFiles() == 0; }));
  EXPECT_FALSE(node(2).HasBlob("dropped"));

  // And the writer's destructor does the same.
  w = client().OpenWriter(NodeId(3), "dropped", {});
  ASSERT_TRUE(w.ok());
  for (auto& piece : Pieces(Bytes(1024 * 1024, 10))) ASSERT_TRUE((*w)->Append(piece).ok());
  w = Status::Aborted("gone");
  EXPECT_TRUE(Eventually([&] { return node(3).TempFiles() == 0; }));
  EXPECT_FALSE(node(3).HasBlob("dropped"));
}

TEST_F(PeerClientTest, PullFileFromGoodSource) {
  const std::string content = Bytes(2 * 1024 * 1024 + 3, 11);
  const std::string sha = Sha256Hex(content);
  ASSERT_TRUE(Write(client(), NodeId(1), "pulled", content).ok());
  // Remote target, source = the caller's own node.
  ASSERT_TRUE(client().PullFile(NodeId(2), NodeId(1), "pulled", content.size(), sha, false).ok());
  // Remote target, remote source.
  ASSERT_TRUE(client().PullFile(NodeId(3), NodeId(2), "pulled", content.size(), sha, false).ok());
  for (uint64_t i = 2; i <= 3; ++i) {
    std::string got;
    ASSERT_TRUE(Read(client(), NodeId(i), "pulled", &got).ok());
    EXPECT_TRUE(got == content) << "node " << i;
  }
  // Target = the caller itself.
  ASSERT_TRUE(node(1).store->Delete("pulled").ok());
  ASSERT_TRUE(client().PullFile(NodeId(1), NodeId(3), "pulled", content.size(), sha, false).ok());
  std::string got;
  ASSERT_TRUE(Read(client(), NodeId(1), "pulled", &got).ok());
  EXPECT_TRUE(got == content);
  // The wrong expected version is refused.
  EXPECT_EQ(client().PullFile(NodeId(1), NodeId(2), "other", 5, Sha256Hex("12345"), false).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(client().PullFile(NodeId(1), NodeId(2), "pulled", 5, Sha256Hex("12345"), true).code(),
            StatusCode::kCorruption);
}

TEST_F(PeerClientTest, PullFileFromCorruptSourceWritesNothing) {
  const std::string content = Bytes(1024 * 1024 + 77, 12);
  const std::string sha = Sha256Hex(content);
  ASSERT_TRUE(Write(client(), NodeId(1), "rotten", content).ok());
  node(1).Corrupt("rotten", 4242);
  EXPECT_EQ(client().PullFile(NodeId(2), NodeId(1), "rotten", content.size(), sha, false).code(),
            StatusCode::kCorruption);
  EXPECT_FALSE(node(2).HasBlob("rotten"));
  EXPECT_EQ(node(2).TempFiles(), 0u);
  // Pulled by the caller itself.
  EXPECT_EQ(node(3).client->PullFile(NodeId(3), NodeId(1), "rotten", content.size(), sha, false).code(),
            StatusCode::kCorruption);
  EXPECT_FALSE(node(3).HasBlob("rotten"));
  EXPECT_EQ(node(3).TempFiles(), 0u);
}

TEST_F(PeerClientTest, DeleteOnlyTheNamedVersion) {
  const std::string content = Bytes(50000, 13);
  const std::string sha = Sha256Hex(content);
  for (uint64_t i = 1; i <= 2; ++i) {
    ASSERT_TRUE(Write(client(), NodeId(i), "d", content).ok());
    EXPECT_EQ(client().DeleteFile(NodeId(i), "d", Sha256Hex("newer")).code(),
              StatusCode::kFailedPrecondition);
    EXPECT_TRUE(client().VerifyFile(NodeId(i), "d").ok()) << "node " << i;
    EXPECT_TRUE(client().DeleteFile(NodeId(i), "d", sha).ok());
    EXPECT_FALSE(node(i).HasBlob("d"));
    EXPECT_TRUE(client().DeleteFile(NodeId(i), "d", sha).ok()) << "absent is OK";
    ASSERT_TRUE(Write(client(), NodeId(i), "d", content).ok());
    EXPECT_TRUE(client().DeleteFile(NodeId(i), "d", "").ok());
    EXPECT_FALSE(node(i).HasBlob("d"));
  }
}

TEST_F(PeerClientTest, DeadPeerFailsWithinTimeouts) {
  const std::string content = Bytes(4 * 1024 * 1024, 14);
  ASSERT_TRUE(Write(client(), NodeId(3), "dead", content).ok());
  node(3).StopServer();

  auto start = Clock::now();
  auto w = client().OpenWriter(NodeId(3), "x", {});
  ASSERT_TRUE(w.ok());
  Status s;
  for (auto& piece : Pieces(content)) {
    s = (*w)->Append(piece);
    if (!s.ok()) break;
  }
  if (s.ok()) s = (*w)->Finish(content.size(), Sha256Hex(content));
  EXPECT_FALSE(s.ok());
  EXPECT_LT(Clock::now() - start, kBound);

  start = Clock::now();
  EXPECT_EQ(client().VerifyFile(NodeId(3), "dead").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(client().DeleteFile(NodeId(3), "dead", "").code(), StatusCode::kUnavailable);
  std::string got;
  EXPECT_EQ(Read(client(), NodeId(3), "dead", &got).code(), StatusCode::kUnavailable);
  EXPECT_EQ(client().PullFile(NodeId(2), NodeId(3), "dead", content.size(), Sha256Hex(content), false).code(),
            StatusCode::kUnavailable);
  EXPECT_LT(Clock::now() - start, 4 * kBound);
  EXPECT_FALSE(node(2).HasBlob("dead"));
}

// A Replication server whose ReplicateFile reads the header and then nothing, until cancelled.
class StallingService final : public v1::Replication::Service {
 public:
  grpc::Status ReplicateFile(grpc::ServerContext* ctx, grpc::ServerReader<v1::ReplicateFileChunk>* reader,
                             v1::ReplicateFileResponse*) override {
    v1::ReplicateFileChunk chunk;
    reader->Read(&chunk);
    while (!ctx->IsCancelled()) std::this_thread::sleep_for(5ms);
    return {grpc::StatusCode::CANCELLED, "stalled"};
  }
  // Sends the first message (size, SHA-256 and 10 bytes), then nothing, until cancelled.
  grpc::Status ReadFile(grpc::ServerContext* ctx, const v1::ReadFileRequest*,
                        grpc::ServerWriter<v1::ReadFileChunk>* writer) override {
    v1::ReadFileChunk chunk;
    chunk.set_size(1000);
    chunk.set_sha256(Sha256Hex("whatever"));
    chunk.set_data("0123456789");
    writer->Write(chunk);
    while (!ctx->IsCancelled()) std::this_thread::sleep_for(5ms);
    return {grpc::StatusCode::CANCELLED, "stalled"};
  }
};

TEST_F(PeerClientTest, StalledPeerIsDroppedAfterStallTimeoutOthersComplete) {
  StallingService stalling;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  // No window growth: the sender's writes block once the first windows are full.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.RegisterService(&stalling);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_TRUE(server != nullptr && port != 0);
  auto addresses = Addresses();
  addresses[NodeId(4)] = "127.0.0.1:" + std::to_string(port);
  client().SetPeers(addresses);

  const std::string content = Bytes(8 * 1024 * 1024, 15);
  auto pieces = Pieces(content);
  std::vector<std::unique_ptr<ReplicaWriter>> good;
  for (uint64_t i = 1; i <= 3; ++i)
    good.push_back(std::move(client().OpenWriter(NodeId(i), "s", {})).value());
  auto stalled = client().OpenWriter(NodeId(4), "s", {});
  ASSERT_TRUE(stalled.ok());

  Status stalled_status;
  Clock::duration longest_append{};
  auto append_stalled = [&](const std::shared_ptr<const std::string>& piece) {
    const auto t0 = Clock::now();
    stalled_status = (*stalled)->Append(piece);
    longest_append = std::max(longest_append, Clock::now() - t0);
  };
  for (auto& piece : pieces) {
    for (auto& w : good) ASSERT_TRUE(w->Append(piece).ok());
    if (stalled_status.ok()) append_stalled(piece);
  }
  // Far more than any flow-control window and socket buffer, if the file was not enough.
  for (int i = 0; i < 512 && stalled_status.ok(); ++i) append_stalled(pieces[0]);
  EXPECT_EQ(stalled_status.code(), StatusCode::kTimeout) << stalled_status.ToString();
  EXPECT_LT(longest_append, kBound);
  EXPECT_FALSE((*stalled)->Append(pieces[0]).ok()) << "a failed writer stays failed";

  for (auto& w : good)
    EXPECT_TRUE(w->Finish(content.size(), Sha256Hex(content)).ok()) << "node " << w->node();
  const auto t0 = Clock::now();
  stalled->reset();  // aborts: cancels the stream
  EXPECT_LT(Clock::now() - t0, kBound);
  server->Shutdown(std::chrono::system_clock::now());
  for (uint64_t i = 1; i <= 3; ++i) {
    std::string got;
    ASSERT_TRUE(Read(client(), NodeId(i), "s", &got).ok());
    EXPECT_TRUE(got == content);
  }
}

TEST_F(PeerClientTest, FinishOnStalledPeerWaitsAtMostFinishTimeout) {
  StallingService stalling;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&stalling);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_TRUE(server != nullptr && port != 0);
  auto addresses = Addresses();
  addresses[NodeId(4)] = "127.0.0.1:" + std::to_string(port);
  client().SetPeers(addresses);

  auto w = client().OpenWriter(NodeId(4), "f", {});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(std::make_shared<const std::string>("tiny")).ok());
  const auto t0 = Clock::now();
  EXPECT_EQ((*w)->Finish(4, Sha256Hex("tiny")).code(), StatusCode::kTimeout);
  EXPECT_LT(Clock::now() - t0, 3000ms + kBound);  // finish_timeout is 3 s
  server->Shutdown(std::chrono::system_clock::now());
}

TEST_F(PeerClientTest, ReadFromStalledPeerTimesOut) {
  StallingService stalling;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&stalling);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_TRUE(server != nullptr && port != 0);
  auto addresses = Addresses();
  addresses[NodeId(4)] = "127.0.0.1:" + std::to_string(port);
  client().SetPeers(addresses);

  for (uint64_t length : {uint64_t{0}, uint64_t{100}}) {  // full (last piece held back) and ranged
    std::string got;
    BlobInfo info;
    const auto t0 = Clock::now();
    EXPECT_EQ(Read(client(), NodeId(4), "r", &got, &info, 0, length).code(), StatusCode::kTimeout);
    EXPECT_LT(Clock::now() - t0, kBound);
    EXPECT_EQ(info.size, 1000u);
    EXPECT_EQ(got, length == 0 ? "" : "0123456789");
  }
  server->Shutdown(std::chrono::system_clock::now());
}

TEST_F(PeerClientTest, HealthTable) {
  node(2).applied_index = 42;
  ASSERT_TRUE(Write(client(), NodeId(2), "h", Bytes(1000, 16)).ok());
  node(3).StopServer();
  PeerClient& c = client();
  EXPECT_TRUE(c.IsAlive(NodeId(3))) << "no probe yet: alive";
  EXPECT_EQ(c.DownFor(NodeId(3)).count(), 0);
  c.Start();
  c.Start();  // idempotent
  EXPECT_TRUE(c.IsAlive(NodeId(1))) << "self";
  EXPECT_FALSE(c.IsAlive(NodeId(99))) << "unknown";

  ASSERT_TRUE(Eventually([&] { return c.Peers()[NodeId(2)].ever_answered; }));
  EXPECT_TRUE(c.IsAlive(NodeId(2)));
  PeerStats two = c.Peers()[NodeId(2)];
  EXPECT_EQ(two.applied_index, 42u);
  EXPECT_EQ(two.files, 1u);
  EXPECT_EQ(two.bytes, 1000u);
  EXPECT_GT(two.total_bytes, 0u);

  ASSERT_TRUE(Eventually([&] { return !c.IsAlive(NodeId(3)); }));
  PeerStats three = c.Peers()[NodeId(3)];
  EXPECT_FALSE(three.alive);
  EXPECT_FALSE(three.ever_answered);
  EXPECT_FALSE(three.last_error.empty());
  // Never answered: down since the first probe, at least health_ttl ago, and it keeps growing.
  const auto three_down = c.DownFor(NodeId(3));
  EXPECT_GE(three_down, TestOptions(NodeId(1)).health_ttl);
  EXPECT_TRUE(Eventually([&] { return c.DownFor(NodeId(3)) > three_down; }));
  EXPECT_TRUE(c.IsAlive(NodeId(2)));
  EXPECT_EQ(c.DownFor(NodeId(2)).count(), 0) << "alive";
  EXPECT_EQ(c.DownFor(NodeId(1)).count(), 0) << "self";
  EXPECT_EQ(c.DownFor(NodeId(99)).count(), 0) << "unknown";
  EXPECT_EQ(c.Peers().count(NodeId(1)), 0u) << "self is not listed";

  node(2).StopServer();
  ASSERT_TRUE(Eventually([&] { return !c.IsAlive(NodeId(2)); }));
  EXPECT_TRUE(c.Peers()[NodeId(2)].ever_answered);
  EXPECT_GE(c.DownFor(NodeId(2)), TestOptions(NodeId(1)).health_ttl) << "down since its last answer";

  const auto t0 = Clock::now();
  c.Stop();
  c.Stop();
  EXPECT_LT(Clock::now() - t0, kBound);
  EXPECT_EQ(c.Address(NodeId(2)), node(2).address);
  EXPECT_EQ(c.Address(NodeId(1)), node(1).address);
  EXPECT_EQ(c.Address(NodeId(99)), std::nullopt);
}

TEST_F(PeerClientTest, PeerChangesAreTracked) {
  PeerClient& c = client();
  c.Start();
  ASSERT_TRUE(Eventually([&] { return c.Peers()[NodeId(2)].ever_answered; }));
  auto addresses = Addresses();
  addresses.erase(NodeId(3));
  c.SetPeers(addresses);
  EXPECT_EQ(c.Peers().count(NodeId(3)), 0u);
  EXPECT_FALSE(c.IsAlive(NodeId(3)));
  EXPECT_TRUE(c.Peers()[NodeId(2)].ever_answered) << "unchanged address: kept";
  c.Stop();
}

TEST_F(PeerClientTest, OtherClusterIsRefused) {
  TempDir dir;
  auto store = OpenBlobStore(DefaultFileSystem(), dir.path());
  ASSERT_TRUE(store.ok());
  PeerClient stranger(TestOptions(NodeId(9), "other-cluster"), store->get());
  stranger.SetPeers(Addresses());
  const std::string content = Bytes(100000, 17);
  ASSERT_TRUE(Write(client(), NodeId(2), "c", content).ok());

  EXPECT_EQ(stranger.VerifyFile(NodeId(2), "c").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(stranger.DeleteFile(NodeId(2), "c", "").code(), StatusCode::kFailedPrecondition);
  std::string got;
  EXPECT_EQ(Read(stranger, NodeId(2), "c", &got).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Write(stranger, NodeId(3), "c", content).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(stranger.PullFile(NodeId(3), NodeId(2), "c", content.size(), Sha256Hex(content), false).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(node(2).HasBlob("c"));
  EXPECT_FALSE(node(3).HasBlob("c"));
  EXPECT_EQ(node(3).TempFiles(), 0u);

  stranger.Start();
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(stranger.Peers()[NodeId(2)].ever_answered);
  EXPECT_TRUE(Eventually([&] { return !stranger.IsAlive(NodeId(2)); }));
  stranger.Stop();
}

}  // namespace
}  // namespace dispotify::replication
