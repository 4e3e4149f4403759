#include "node/auth/key_cache.h"

#include <gtest/gtest.h>

#include <future>
#include <latch>
#include <map>
#include <random>
#include <thread>

#include "tests/node/auth/test_signer.h"

namespace dispotify::auth {
namespace {

using namespace std::chrono_literals;
using testing::TestKey;
using web::json::value;

constexpr const char* kIssuer = "https://id.example/realms/dispotify";
constexpr const char* kDiscoveryUrl = "https://id.example/realms/dispotify/.well-known/openid-configuration";
constexpr const char* kJwksUrl = "https://id.example/realms/dispotify/certs";
constexpr int64_t kNow = 1'800'000'000;

// The issuer as the cache sees it: documents by URL, a switch to make it fail, and a count of
// requests per URL.
class FakeIssuer {
 public:
  FakeIssuer() {
    Set(kDiscoveryUrl, std::string(R"({"issuer": ")") + kIssuer + R"(", "jwks_uri": ")" + kJwksUrl + "\"}");
  }
  void Set(const std::string& url, std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    docs_[url] = std::move(body);
  }
  void SetFailing(bool failing) {
    std::lock_guard<std::mutex> lock(mu_);
    failing_ = failing;
  }
  void SetDelay(std::chrono::milliseconds delay) { delay_ = delay; }
  int Requests(const std::string& url) {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_[url];
  }

  KeyCache::Fetcher Fetcher() {
    return [this](const std::string& url) -> Result<std::string> {
      std::this_thread::sleep_for(delay_);
      std::lock_guard<std::mutex> lock(mu_);
      ++requests_[url];
      if (failing_) return Status::Unavailable("connection refused");
      auto it = docs_.find(url);
      if (it == docs_.end()) return Status::NotFound("404");
      return it->second;
    };
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> docs_;
  std::map<std::string, int> requests_;
  bool failing_ = false;
  std::chrono::milliseconds delay_{0};
};

class FakeClock {
 public:
  KeyCache::Now Now() {
    return [this] {
      std::lock_guard<std::mutex> lock(mu_);
      return now_;
    };
  }
  void Advance(std::chrono::seconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

 private:
  std::mutex mu_;
  KeyCache::Clock::time_point now_{std::chrono::hours(1000)};
};

class KeyCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    key1_ = new TestKey(TestKey::Rsa());
    key2_ = new TestKey(TestKey::EcP256());
  }
  static void TearDownTestSuite() {
    delete key1_;
    delete key2_;
  }

  void SetUp() override {
    issuer_.Set(kJwksUrl, testing::Jwks({key1_->Jwk("k1")}));
    policy_.issuer = kIssuer;
    policy_.audience = "dispotify";
  }

  KeyCache MakeCache() {
    return KeyCache(KeyCache::Options{.issuer = kIssuer}, issuer_.Fetcher(), clock_.Now());
  }

  static std::string Token(const TestKey& key, const std::string& kid) {
    auto header = value::object();
    header["alg"] = value::string(key.type() == KeyType::kRsa ? "RS256" : "ES256");
    header["kid"] = value::string(kid);
    auto payload = value::object();
    payload["iss"] = value::string(kIssuer);
    payload["aud"] = value::string("dispotify");
    payload["sub"] = value::string("someone");
    payload["exp"] = value::number(kNow + 600);
    return testing::SignedToken(header, payload, key);
  }

  static TestKey* key1_;
  static TestKey* key2_;
  FakeIssuer issuer_;
  FakeClock clock_;
  JwtPolicy policy_;
};

TestKey* KeyCacheTest::key1_ = nullptr;
TestKey* KeyCacheTest::key2_ = nullptr;

TEST_F(KeyCacheTest, FirstUseFetchesDiscoveryThenJwksOnce) {
  KeyCache cache = MakeCache();
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 0);
  auto result = cache.Validate(Token(*key1_, "k1"), policy_, kNow);
  ASSERT_TRUE(result.ok()) << result.failure().detail;
  EXPECT_EQ(result->subject, "someone");
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(cache.Validate(Token(*key1_, "k1"), policy_, kNow).ok());
  EXPECT_EQ(issuer_.Requests(kDiscoveryUrl), 1);
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 1);
}

TEST_F(KeyCacheTest, UnknownKidRefetchesTheJwks) {
  KeyCache cache = MakeCache();
  ASSERT_TRUE(cache.Keys().ok());
  issuer_.Set(kJwksUrl, testing::Jwks({key1_->Jwk("k1"), key2_->Jwk("k2")}));  // the issuer rotates
  clock_.Advance(30s);
  auto result = cache.Validate(Token(*key2_, "k2"), policy_, kNow);
  ASSERT_TRUE(result.ok()) << result.failure().detail;
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 2);
  EXPECT_EQ(issuer_.Requests(kDiscoveryUrl), 1);  // the JWKS location is remembered
}

TEST_F(KeyCacheTest, UnknownKidRightAfterAFetchWaitsForTheInterval) {
  KeyCache cache = MakeCache();
  ASSERT_TRUE(cache.Keys().ok());
  issuer_.Set(kJwksUrl, testing::Jwks({key1_->Jwk("k1"), key2_->Jwk("k2")}));
  clock_.Advance(29s);
  EXPECT_EQ(cache.Validate(Token(*key2_, "k2"), policy_, kNow).code(), JwtError::kUnknownKey);
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 1);
  clock_.Advance(1s);
  EXPECT_TRUE(cache.Validate(Token(*key2_, "k2"), policy_, kNow).ok());
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 2);
}

TEST_F(KeyCacheTest, AFloodOfUnknownKidsCostsOneFetchPerInterval) {
  KeyCache cache = MakeCache();
  ASSERT_TRUE(cache.Keys().ok());
  clock_.Advance(31s);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000; ++i) {
    const std::string kid = "random-" + std::to_string(rng());
    ASSERT_EQ(cache.Validate(Token(*key1_, kid), policy_, kNow).code(), JwtError::kUnknownKey);
  }
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 2);  // the first fetch, and one for the whole flood
  EXPECT_TRUE(cache.Validate(Token(*key1_, "k1"), policy_, kNow).ok());
  clock_.Advance(30s);
  for (int i = 0; i < 100; ++i) (void)cache.Validate(Token(*key1_, "other"), policy_, kNow);
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 3);
  EXPECT_EQ(issuer_.Requests(kDiscoveryUrl), 1);
}

TEST_F(KeyCacheTest, RefreshesAfterMaxAge) {
  KeyCache cache = MakeCache();
  auto first = cache.Keys();
  ASSERT_TRUE(first.ok());
  clock_.Advance(3599s);
  ASSERT_TRUE(cache.Keys().ok());
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 1);
  issuer_.Set(kJwksUrl, testing::Jwks({key2_->Jwk("k2")}));  // k1 retired
  clock_.Advance(1s);
  auto second = cache.Keys();
  ASSERT_TRUE(second.ok());
  EXPECT_NE(*first, *second);
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 2);
  EXPECT_EQ(issuer_.Requests(kDiscoveryUrl), 2);  // a periodic refresh reads the discovery document too
  EXPECT_EQ(cache.Validate(Token(*key1_, "k1"), policy_, kNow).code(), JwtError::kUnknownKey);
  EXPECT_TRUE(cache.Validate(Token(*key2_, "k2"), policy_, kNow).ok());
}

TEST_F(KeyCacheTest, AFailedFetchKeepsTheOldKeys) {
  KeyCache cache = MakeCache();
  auto first = cache.Keys();
  ASSERT_TRUE(first.ok());
  issuer_.SetFailing(true);
  clock_.Advance(3600s);
  auto during = cache.Keys();
  ASSERT_TRUE(during.ok()) << during.status().ToString();
  EXPECT_EQ(*during, *first);
  EXPECT_TRUE(cache.Validate(Token(*key1_, "k1"), policy_, kNow).ok());
  const int attempts = issuer_.Requests(kDiscoveryUrl);
  EXPECT_EQ(attempts, 2);
  // An issuer that is down is asked once per interval, not once per request.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(cache.Keys().ok());
  EXPECT_EQ(issuer_.Requests(kDiscoveryUrl), attempts);

  // A JWKS with nothing usable is a failure too.
  issuer_.SetFailing(false);
  auto oct = value::object();
  oct["kty"] = value::string("oct");
  issuer_.Set(kJwksUrl, testing::Jwks({oct}));
  clock_.Advance(30s);
  auto after = cache.Keys();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *first);
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 2);
}

TEST_F(KeyCacheTest, NoKeysYetIsUnavailable) {
  issuer_.SetFailing(true);
  KeyCache cache = MakeCache();
  EXPECT_EQ(cache.Keys().status().code(), StatusCode::kUnavailable);
  auto result = cache.Validate(Token(*key1_, "k1"), policy_, kNow);
  EXPECT_EQ(result.code(), JwtError::kKeysUnavailable);
  EXPECT_EQ(result.failure().ToStatus().code(), StatusCode::kUnavailable);
  EXPECT_EQ(issuer_.Requests(kDiscoveryUrl), 1);
  issuer_.SetFailing(false);
  clock_.Advance(30s);
  EXPECT_TRUE(cache.Validate(Token(*key1_, "k1"), policy_, kNow).ok());
}

TEST_F(KeyCacheTest, DiscoveryForAnotherIssuerIsRefused) {
  issuer_.Set(kDiscoveryUrl,
              R"({"issuer": "https://id.example/realms/other", "jwks_uri": "https://x/certs"})");
  KeyCache cache = MakeCache();
  EXPECT_EQ(cache.Keys().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(issuer_.Requests("https://x/certs"), 0);
}

TEST_F(KeyCacheTest, AFetcherThatThrowsIsAFailure) {
  KeyCache cache(
      KeyCache::Options{.issuer = kIssuer},
      [](const std::string&) -> Result<std::string> { throw std::runtime_error("boom"); }, clock_.Now());
  EXPECT_EQ(cache.Keys().status().code(), StatusCode::kUnavailable);
  clock_.Advance(30s);
  EXPECT_EQ(cache.Keys().status().code(), StatusCode::kUnavailable);  // not stuck in a fetch
}

TEST_F(KeyCacheTest, ConcurrentCallersShareOneFetch) {
  issuer_.SetDelay(100ms);
  KeyCache cache = MakeCache();
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<std::shared_ptr<const KeySet>> seen(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto keys = cache.Keys();
      if (keys.ok()) seen[static_cast<size_t>(i)] = *keys;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(issuer_.Requests(kDiscoveryUrl), 1);
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 1);
  for (const auto& keys : seen) {
    ASSERT_NE(keys, nullptr);
    EXPECT_EQ(keys, seen[0]);
  }
}

TEST_F(KeyCacheTest, ConcurrentUnknownKidsShareOneRefetch) {
  KeyCache cache = MakeCache();
  ASSERT_TRUE(cache.Keys().ok());
  issuer_.Set(kJwksUrl, testing::Jwks({key1_->Jwk("k1"), key2_->Jwk("k2")}));
  clock_.Advance(30s);
  issuer_.SetDelay(100ms);
  constexpr int kThreads = 8;
  const std::string token = Token(*key2_, "k2");
  std::latch start(kThreads);
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      if (cache.Validate(token, policy_, kNow).ok()) ++accepted;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), kThreads);
  EXPECT_EQ(issuer_.Requests(kJwksUrl), 2);
}

TEST_F(KeyCacheTest, ARefetchInFlightDoesNotHoldUpKnownKids) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> calls{0};
  KeyCache::Fetcher inner = issuer_.Fetcher();
  KeyCache cache(
      KeyCache::Options{.issuer = kIssuer},
      [&](const std::string& url) {
        if (++calls == 3) {  // discovery, JWKS, then the unknown-kid refetch blocks
          entered.set_value();
          released.wait();
        }
        return inner(url);
      },
      clock_.Now());
  ASSERT_TRUE(cache.Keys().ok());
  clock_.Advance(30s);
  std::thread refetching([&] { (void)cache.Validate(Token(*key1_, "new-kid"), policy_, kNow); });
  entered.get_future().wait();
  auto valid =
      std::async(std::launch::async, [&] { return cache.Validate(Token(*key1_, "k1"), policy_, kNow).ok(); });
  EXPECT_EQ(valid.wait_for(10s), std::future_status::ready);
  release.set_value();
  EXPECT_TRUE(valid.get());
  refetching.join();
  EXPECT_EQ(calls.load(), 3);
}

}  // namespace
}  // namespace dispotify::auth
