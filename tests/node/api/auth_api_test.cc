// AuthApi over a real catalog (the state machine on SQLite in a temp dir) with a proposer of the
// test's own that applies commands in this process: the sweep of expired credentials, and what a
// node does with a token it does not know yet (a follower behind its leader).

#include "node/api/auth_api.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "node/auth/records.h"
#include "node/catalog/catalog_state_machine.h"
#include "node/catalog/commands.h"
#include "node/catalog/metadata_store.h"
#include "node/catalog/proposer.h"
#include "tests/mocks/temp_dir.h"

namespace dispotify::api {
namespace {

// Applies each command to the local state machine. With `lagging`, commands wait until the next
// CatchUp, as on a follower that has not applied its leader's latest commits yet.
class LocalProposer final : public catalog::Proposer {
 public:
  LocalProposer(catalog::CatalogStateMachine* sm, int64_t* now_ms) : sm_(sm), now_ms_(now_ms) {}

  Result<std::string> Propose(const catalog::CommandBody& body, std::chrono::milliseconds) override {
    if (lagging) {
      pending_.push_back(body);
      return std::string();
    }
    return Apply(body);
  }
  bool HasLeader() const override { return true; }
  Status CatchUp(std::chrono::milliseconds) override {
    ++catch_ups;
    while (!pending_.empty()) {
      auto r = Apply(pending_.front());
      pending_.pop_front();
      if (!r.ok()) return r.status();
    }
    return Status::Ok();
  }

  bool lagging = false;
  int catch_ups = 0;

 private:
  Result<std::string> Apply(const catalog::CommandBody& body) {
    const std::string encoded = catalog::EncodeCommand(catalog::Command{*now_ms_, body});
    consensus::ApplyResult r =
        sm_->Apply(consensus::Entry{Term(1), LogIndex(++index_), consensus::EntryType::kNormal, encoded});
    if (!r.status.ok()) return r.status;
    return r.value;
  }

  catalog::CatalogStateMachine* sm_;
  int64_t* now_ms_;
  uint64_t index_ = 0;
  std::deque<catalog::CommandBody> pending_;
};

class AuthApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = catalog::OpenSqliteStore(tmp_.Sub("catalog.db"));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto sm = catalog::CatalogStateMachine::Open(store_.get());
    ASSERT_TRUE(sm.ok()) << sm.status().ToString();
    sm_ = std::move(sm).value();
    proposer_ = std::make_unique<LocalProposer>(sm_.get(), &now_ms_);
    AuthApiOptions options;
    options.now_ms = [this] { return now_ms_; };
    api_ = std::make_unique<AuthApi>(std::move(options), store_.get(), proposer_.get());

    auth::UserRecord alice;
    alice.name = "alice";
    alice.roles = {auth::Role::kListener};
    ASSERT_TRUE(proposer_->Propose(catalog::PutUserCmd{"alice", auth::EncodeUser(alice)}, {}).ok());
  }

  // A credential of alice's: its secret (what a client sends).
  std::string PutToken(auth::TokenKind kind, int64_t expires_ms) {
    auto secret =
        auth::MakeSecret(kind == auth::TokenKind::kSession ? auth::kSessionPrefix : auth::kApiTokenPrefix);
    EXPECT_TRUE(secret.ok());
    auth::TokenRecord t;
    t.id = auth::SecretId(secret->secret);
    t.owner = "alice";
    t.name = kind == auth::TokenKind::kSession ? "session" : "laptop";
    t.kind = kind;
    t.roles = {auth::Role::kListener};
    t.created_ms = now_ms_;
    t.expires_ms = expires_ms;
    EXPECT_TRUE(proposer_->Propose(catalog::PutTokenCmd{t.id, t.owner, auth::EncodeToken(t)}, {}).ok());
    return secret->secret;
  }

  size_t StoredTokens() {
    auto all = store_->ListSettings(catalog::kTokenKeyPrefix, "", 1000);
    EXPECT_TRUE(all.ok());
    return all.ok() ? all->size() : 0;
  }

  // The status AuthApi answers GET /auth/me with `bearer` (200 when admitted).
  int Me(const std::string& bearer) {
    http::Request req;
    req.method = "GET";
    req.target = req.path = "/auth/me";
    req.remote_address = "127.0.0.1:1";
    req.headers.Add("Authorization", "Bearer " + bearer);
    auto refused = api_->Admit(req, "/auth/me");
    return refused ? refused->status() : 200;
  }

  mocks::TempDir tmp_;
  int64_t now_ms_ = 1'000'000;
  std::unique_ptr<catalog::MetadataStore> store_;
  std::unique_ptr<catalog::CatalogStateMachine> sm_;
  std::unique_ptr<LocalProposer> proposer_;
  std::unique_ptr<AuthApi> api_;
};

TEST_F(AuthApiTest, SweepRemovesExpiredTokensAndSessionsOnly) {
  const std::string expired_token = PutToken(auth::TokenKind::kApi, now_ms_ + 1000);
  const std::string forever = PutToken(auth::TokenKind::kApi, 0);
  const std::string later = PutToken(auth::TokenKind::kApi, now_ms_ + 60'000);
  const std::string expired_session = PutToken(auth::TokenKind::kSession, now_ms_ + 500);
  const std::string live_session = PutToken(auth::TokenKind::kSession, now_ms_ + 60'000);
  ASSERT_EQ(StoredTokens(), 5u);

  auto none = api_->SweepExpired();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(*none, 0u) << "nothing has expired yet";

  now_ms_ += 1000;  // exactly at the first token's expiry: it is over (as the authenticator says)
  auto swept = api_->SweepExpired();
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(*swept, 2u);
  EXPECT_EQ(StoredTokens(), 3u);
  EXPECT_EQ(Me(expired_token), 401);
  EXPECT_EQ(Me(forever), 200);
  EXPECT_EQ(Me(later), 200);

  auto again = api_->SweepExpired();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u) << "a second sweep finds nothing more";
}

TEST_F(AuthApiTest, ATokenNotAppliedHereYetIsFoundAfterACatchUp) {
  proposer_->lagging = true;
  const std::string fresh = PutToken(auth::TokenKind::kApi, 0);
  EXPECT_EQ(StoredTokens(), 0u) << "the record is still on its way";
  const int before = proposer_->catch_ups;
  EXPECT_EQ(Me(fresh), 200);
  EXPECT_EQ(proposer_->catch_ups, before + 1);
  // Found locally now: no more barriers.
  EXPECT_EQ(Me(fresh), 200);
  EXPECT_EQ(proposer_->catch_ups, before + 1);
}

TEST_F(AuthApiTest, MadeUpTokensStartABoundedNumberOfCatchUps) {
  const int before = proposer_->catch_ups;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) {
    auto secret = auth::MakeSecret(auth::kApiTokenPrefix);
    ASSERT_TRUE(secret.ok());
    EXPECT_EQ(Me(secret->secret), 401);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int spent = proposer_->catch_ups - before;
  // The burst (20), plus what refills (20 a second) while the loop runs.
  EXPECT_GE(spent, 20);
  EXPECT_LE(spent, 21 + static_cast<int>(20 * seconds))
      << "a flood of made-up tokens must not turn into as many read rounds (" << seconds << " s)";
  EXPECT_LT(spent, 200);
}

}  // namespace
}  // namespace dispotify::api
