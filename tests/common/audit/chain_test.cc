#include "common/audit/chain.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace dispotify::audit {
namespace {

Entry Unchained(int i) {
  Entry e;
  e.time_ms = 1765000000000 + i;
  e.actor = "user" + std::to_string(i % 7);
  e.client = "10.0.0." + std::to_string(i % 250) + ":4000";
  e.action = static_cast<Action>(1 + i % kMaxAction);
  e.target = "file/" + std::to_string(i);
  e.code = "ok";
  e.request_id = "r" + std::to_string(i);
  return e;
}

std::vector<Entry> BuildChain(size_t n, ChainHead head = {}) {
  std::vector<Entry> chain;
  for (size_t i = 0; i < n; ++i) {
    auto e = AppendEntry(head, Unchained(static_cast<int>(i)));
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    head = HeadOf(*e);
    chain.push_back(std::move(*e));
  }
  return chain;
}

// Recomputes an entry's own hash after a change, as a forger with write access would.
void Rehash(Entry* e) {
  e->hash = *ComputeHash(*e);
}

TEST(AuditChainTest, AppendLinksAndVerifies) {
  auto chain = BuildChain(10);
  ASSERT_EQ(chain.size(), 10u);
  EXPECT_EQ(chain[0].seq, 1u);
  EXPECT_EQ(chain[0].prev_hash, Hash{});
  for (size_t i = 1; i < chain.size(); ++i) {
    EXPECT_EQ(chain[i].seq, i + 1);
    EXPECT_EQ(chain[i].prev_hash, chain[i - 1].hash);
  }
  auto head = Verify(chain, Checkpoint{});
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(*head, HeadOf(chain.back()));
  EXPECT_TRUE(Verify(chain, Checkpoint{}, HeadOf(chain.back())).ok());
  // A shorter expected head is fine: the chain grew past it.
  EXPECT_TRUE(Verify(chain, Checkpoint{}, HeadOf(chain[4])).ok());
  // The empty chain verifies to its start.
  EXPECT_EQ(*Verify({}, Checkpoint{}), ChainHead{});
}

TEST(AuditChainTest, AppendRefusesInvalidEntries) {
  Entry e = Unchained(1);
  e.detail = std::string(kMaxDetailBytes + 1, 'x');
  EXPECT_EQ(AppendEntry({}, e).status().code(), StatusCode::kInvalidArgument);
  ChainHead last{UINT64_MAX, {}};
  EXPECT_EQ(AppendEntry(last, Unchained(1)).status().code(), StatusCode::kFailedPrecondition);
}

struct TamperCase {
  std::string name;
  std::function<void(std::vector<Entry>*)> tamper;
  uint64_t seq;
  Fault fault;
  bool with_expected_head = false;
};

// Chains of 10 entries (seq 1..10); index i holds seq i + 1.
std::vector<TamperCase> TamperCases() {
  return {
      {"modified field", [](auto* c) { (*c)[4].actor = "mallory"; }, 5, Fault::kModified},
      {"modified time", [](auto* c) { (*c)[0].time_ms -= 1; }, 1, Fault::kModified},
      {"modified stored hash", [](auto* c) { (*c)[9].hash[0] ^= 1; }, 10, Fault::kModified},
      {"modified and rehashed",
       [](auto* c) {
         (*c)[4].outcome = Outcome::kError;
         Rehash(&(*c)[4]);
       },
       6, Fault::kBrokenLink},
      {"deleted middle", [](auto* c) { c->erase(c->begin() + 3); }, 4, Fault::kMissing},
      {"deleted first", [](auto* c) { c->erase(c->begin()); }, 1, Fault::kMissing},
      {"deleted then renumbered and rehashed",
       [](auto* c) {
         c->erase(c->begin() + 3);
         for (size_t i = 3; i < c->size(); ++i) {
           (*c)[i].seq--;
           Rehash(&(*c)[i]);
         }
       },
       4, Fault::kBrokenLink},
      {"swapped neighbours", [](auto* c) { std::swap((*c)[2], (*c)[3]); }, 3, Fault::kReordered},
      {"moved to the end", [](auto* c) { std::rotate(c->begin() + 1, c->begin() + 2, c->end()); }, 2,
       Fault::kReordered},
      {"inserted with a taken seq",
       [](auto* c) {
         auto forged = AppendEntry(HeadOf((*c)[5]), Unchained(99));
         c->insert(c->begin() + 6, *forged);  // a valid seq 7 ahead of the real seq 7
       },
       8, Fault::kDuplicate},
      {"duplicated entry", [](auto* c) { c->insert(c->begin() + 2, (*c)[1]); }, 3, Fault::kDuplicate},
      {"inserted on another base",
       [](auto* c) {
         Entry forged = Unchained(99);
         forged.seq = 5;
         forged.prev_hash[0] = 0x42;
         Rehash(&forged);
         (*c)[4] = forged;
       },
       5, Fault::kBrokenLink},
      {"malformed", [](auto* c) { (*c)[6].actor.clear(); }, 7, Fault::kMalformed},
      {"truncated tail", [](auto* c) { c->resize(7); }, 8, Fault::kTruncated, true},
      {"everything dropped", [](auto* c) { c->clear(); }, 1, Fault::kTruncated, true},
      {"rewritten with consistent hashes",
       [](auto* c) {
         (*c)[2].target = "file/forged";
         Rehash(&(*c)[2]);
         for (size_t i = 3; i < c->size(); ++i) {
           (*c)[i].prev_hash = (*c)[i - 1].hash;
           Rehash(&(*c)[i]);
         }
       },
       10, Fault::kHeadMismatch, true},
  };
}

TEST(AuditChainTest, DetectsEveryTamperCase) {
  const auto pristine = BuildChain(10);
  const ChainHead head = HeadOf(pristine.back());
  for (const auto& tc : TamperCases()) {
    auto chain = pristine;
    tc.tamper(&chain);
    const auto expected = tc.with_expected_head ? std::optional<ChainHead>(head) : std::nullopt;
    const Verification v = Check(chain, Checkpoint{}, expected);
    ASSERT_TRUE(v.fault.has_value()) << tc.name;
    EXPECT_EQ(v.fault->seq, tc.seq) << tc.name;
    EXPECT_EQ(v.fault->fault, tc.fault) << tc.name << ": got " << FaultName(v.fault->fault);
    // The reported head is the last entry that verified.
    EXPECT_EQ(v.head.seq, tc.seq - 1) << tc.name;
    auto r = Verify(chain, Checkpoint{}, expected);
    ASSERT_FALSE(r.ok()) << tc.name;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
    EXPECT_NE(r.status().message().find("seq " + std::to_string(tc.seq) + ":"), std::string::npos)
        << r.status().message();
  }
}

TEST(AuditChainTest, StreamingVerifierAgreesExceptOnReorder) {
  const auto pristine = BuildChain(10);
  const ChainHead head = HeadOf(pristine.back());
  for (const auto& tc : TamperCases()) {
    auto chain = pristine;
    tc.tamper(&chain);
    ChainVerifier verifier({}, tc.with_expected_head ? std::optional<ChainHead>(head) : std::nullopt);
    std::optional<ChainFault> fault;
    for (const auto& e : chain) {
      if ((fault = verifier.Add(e))) break;
    }
    if (!fault) fault = verifier.Finish();
    ASSERT_TRUE(fault.has_value()) << tc.name;
    EXPECT_EQ(fault->seq, tc.seq) << tc.name;
    EXPECT_EQ(fault->fault, tc.fault == Fault::kReordered ? Fault::kMissing : tc.fault) << tc.name;
  }
}

TEST(AuditChainTest, VerifiesFromACheckpointAfterDroppingAPrefix) {
  const auto chain = BuildChain(50);
  const ChainHead head = HeadOf(chain.back());
  for (size_t dropped : {0u, 1u, 17u, 49u, 50u}) {
    const Checkpoint cp = dropped == 0 ? Checkpoint{} : HeadOf(chain[dropped - 1]);
    std::vector<Entry> kept(chain.begin() + static_cast<ptrdiff_t>(dropped), chain.end());
    auto r = Verify(kept, cp, head);
    ASSERT_TRUE(r.ok()) << dropped << ": " << r.status().ToString();
    EXPECT_EQ(*r, head);
    // Without its checkpoint (from genesis) a pruned chain does not verify.
    if (dropped > 0 && dropped < 50) {
      auto v = Check(kept, Checkpoint{});
      ASSERT_TRUE(v.fault.has_value());
      EXPECT_EQ(v.fault->seq, 1u);
      EXPECT_EQ(v.fault->fault, Fault::kMissing);
    }
  }
  // A forged checkpoint hash breaks the first kept link.
  Checkpoint forged = HeadOf(chain[16]);
  forged.hash[5] ^= 1;
  std::vector<Entry> kept(chain.begin() + 17, chain.end());
  auto v = Check(kept, forged);
  ASSERT_TRUE(v.fault.has_value());
  EXPECT_EQ(*v.fault, (ChainFault{18, Fault::kBrokenLink}));
  // Dropping one more entry than the checkpoint admits is a gap.
  std::vector<Entry> short_kept(chain.begin() + 18, chain.end());
  v = Check(short_kept, HeadOf(chain[16]));
  EXPECT_EQ(*v.fault, (ChainFault{18, Fault::kMissing}));
  // A checkpoint past the expected head makes no sense.
  v = Check(kept, HeadOf(chain[16]), HeadOf(chain[3]));
  EXPECT_EQ(*v.fault, (ChainFault{17, Fault::kBadCheckpoint}));
  // Everything dropped: the checkpoint is the head, and must match the expected one.
  EXPECT_TRUE(Verify({}, head, head).ok());
  ChainHead other = head;
  other.hash[0] ^= 1;
  EXPECT_EQ(*Check({}, head, other).fault, (ChainFault{50, Fault::kHeadMismatch}));
}

// Random single tampers on random chains: each is found, at or before the tampered seq.
TEST(AuditChainTest, RandomTampersAreDetected) {
  uint64_t seed = std::random_device{}();
  if (const char* env = std::getenv("DISPOTIFY_AUDIT_SEED")) seed = std::strtoull(env, nullptr, 10);
  std::printf("seed %llu (rerun with DISPOTIFY_AUDIT_SEED)\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const auto pristine = BuildChain(64);
  const ChainHead head = HeadOf(pristine.back());
  for (int round = 0; round < 2000; ++round) {
    auto chain = pristine;
    const size_t i = rng() % chain.size();
    const uint64_t tampered_seq = chain[i].seq;
    uint64_t lowest_seq = tampered_seq;
    std::string what;
    switch (rng() % 7) {
      case 0:
        what = "flip a byte of a string field";
        chain[i].target[rng() % chain[i].target.size()] ^= static_cast<char>(1 + rng() % 0x3F);
        if (!Validate(chain[i]).ok()) chain[i].target = "file/x";
        break;
      case 1:
        what = "change time";
        chain[i].time_ms += 1 + static_cast<int64_t>(rng() % 1000);
        break;
      case 2:
        what = "flip a bit of prev_hash";
        chain[i].prev_hash[rng() % kHashSize] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 3:
        what = "flip a bit of hash";
        chain[i].hash[rng() % kHashSize] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 4:
        what = "delete";
        chain.erase(chain.begin() + static_cast<ptrdiff_t>(i));
        break;
      case 5: {
        what = "swap";
        size_t j = rng() % chain.size();
        if (j == i) j = (i + 1) % chain.size();
        lowest_seq = std::min(tampered_seq, chain[j].seq);
        std::swap(chain[i], chain[j]);
        break;
      }
      case 6:
        what = "rewrite and rehash";
        chain[i].actor = "mallory";
        Rehash(&chain[i]);
        break;
    }
    const Verification v = Check(chain, Checkpoint{}, head);
    ASSERT_TRUE(v.fault.has_value()) << "seed " << seed << " round " << round << ": " << what;
    // Found at the tampered seq, or one later for a rewrite whose own hash was recomputed (the
    // next link breaks); a swap at the smaller of the two seqs.
    EXPECT_GE(v.fault->seq, lowest_seq) << "seed " << seed << " round " << round << ": " << what;
    EXPECT_LE(v.fault->seq, tampered_seq + 1) << "seed " << seed << " round " << round << ": " << what;
    EXPECT_EQ(v.head.seq, v.fault->seq - 1);
  }
}

}  // namespace
}  // namespace dispotify::audit
