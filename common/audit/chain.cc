#include "common/audit/chain.h"

#include <limits>

#include "common/encoding.h"
#include "common/sha256.h"

namespace dispotify::audit {

Result<Entry> AppendEntry(const ChainHead& head, Entry entry) {
  if (head.seq == std::numeric_limits<uint64_t>::max()) {
    return Status::FailedPrecondition("audit chain: no seq left after " + std::to_string(head.seq));
  }
  entry.seq = head.seq + 1;
  entry.prev_hash = head.hash;
  auto hash = ComputeHash(entry);
  if (!hash.ok()) return hash.status();
  entry.hash = *hash;
  return entry;
}

std::string_view FaultName(Fault fault) {
  switch (fault) {
    case Fault::kMalformed: return "malformed entry";
    case Fault::kModified: return "entry modified (hash mismatch)";
    case Fault::kMissing: return "entry missing (seq gap)";
    case Fault::kReordered: return "entries reordered";
    case Fault::kDuplicate: return "duplicate seq (inserted entry)";
    case Fault::kBrokenLink: return "broken link (prev_hash mismatch)";
    case Fault::kTruncated: return "truncated before the expected head";
    case Fault::kHeadMismatch: return "head differs from the expected head (chain rewritten)";
    case Fault::kBadCheckpoint: return "expected head older than the checkpoint";
  }
  return "unknown fault";
}

ChainVerifier::ChainVerifier(const Checkpoint& start, const std::optional<ChainHead>& expected)
    : head_(start), expected_(expected) {
  if (expected_ && expected_->seq < start.seq) fault_ = ChainFault{start.seq, Fault::kBadCheckpoint};
}

std::optional<ChainFault> ChainVerifier::Fail(uint64_t seq, Fault fault) {
  fault_ = ChainFault{seq, fault};
  return fault_;
}

std::optional<ChainFault> ChainVerifier::Add(const Entry& entry) {
  if (fault_) return fault_;
  const uint64_t want = head_.seq + 1;
  // Seq first: a deleted or moved entry shows as a wrong seq before anything else, and the
  // reason names what happened rather than the hash it disturbed.
  if (!Validate(entry).ok()) return Fail(want, Fault::kMalformed);
  if (entry.seq > want) return Fail(want, Fault::kMissing);
  if (entry.seq < want) return Fail(want, Fault::kDuplicate);
  auto hash = ComputeHash(entry);
  if (!hash.ok() || *hash != entry.hash) return Fail(want, Fault::kModified);
  if (entry.prev_hash != head_.hash) return Fail(want, Fault::kBrokenLink);
  if (expected_ && entry.seq == expected_->seq && entry.hash != expected_->hash) {
    return Fail(want, Fault::kHeadMismatch);
  }
  head_ = HeadOf(entry);
  return std::nullopt;
}

std::optional<ChainFault> ChainVerifier::Finish() {
  if (fault_ || !expected_) return fault_;
  if (head_.seq < expected_->seq) return Fail(head_.seq + 1, Fault::kTruncated);
  // Only reachable with no entries at all (an entry at the expected seq was compared in Add).
  if (head_.seq == expected_->seq && head_.hash != expected_->hash) {
    return Fail(head_.seq, Fault::kHeadMismatch);
  }
  return std::nullopt;
}

Verification Check(std::span<const Entry> entries, const Checkpoint& start,
                   const std::optional<ChainHead>& expected) {
  ChainVerifier verifier(start, expected);
  for (size_t i = 0; i < entries.size(); ++i) {
    auto fault = verifier.Add(entries[i]);
    if (!fault) continue;
    if (fault->fault == Fault::kMissing) {
      // The whole span is at hand: a seq that turns up later was moved, not deleted.
      for (size_t j = i + 1; j < entries.size(); ++j) {
        if (entries[j].seq == fault->seq) {
          fault->fault = Fault::kReordered;
          break;
        }
      }
    }
    return {verifier.head(), fault};
  }
  return {verifier.head(), verifier.Finish()};
}

Result<ChainHead> Verify(std::span<const Entry> entries, const Checkpoint& start,
                         const std::optional<ChainHead>& expected) {
  Verification v = Check(entries, start, expected);
  if (v.fault) {
    return Status::Corruption("audit chain broken at seq " + std::to_string(v.fault->seq) + ": " +
                              std::string(FaultName(v.fault->fault)));
  }
  return v.head;
}

std::string FormatHead(const ChainHead& head) {
  return std::to_string(head.seq) + " " + ToHex(head.hash);
}

std::optional<ChainHead> ParseHead(std::string_view text) {
  const size_t space = text.find(' ');
  if (space == std::string_view::npos || text.size() - space - 1 != 2 * kHashSize) return std::nullopt;
  ChainHead h;
  if (!encoding::ParseU64(text.substr(0, space), &h.seq)) return std::nullopt;
  const std::string_view hex = text.substr(space + 1);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < kHashSize; ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    h.hash[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return h;
}

}  // namespace dispotify::audit
