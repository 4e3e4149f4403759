#pragma once
// A deterministic key-value state machine: the replicated state of the consensus tests and
// benchmark (the catalog replaces it as the node's main state machine later).
//
// Command encoding, carried in Entry.data of kNormal entries (integers little-endian):
//   u8 op (1 = put, 2 = delete) | u32 key length | key bytes | value bytes (the rest; empty for
//   delete)
//
// Snapshot payload format (version 1), written through a consensus::SnapshotSink:
//   "DKVS" | u8 version=1 | u64 applied index | u64 pair count |
//   count x (u32 key length | key | u32 value length | value) | u32 crc32c of every byte before it
// Pairs are in key order, so two servers with the same state write the same bytes.
//
// Threads: Apply/SaveSnapshot/Restore come from the driver's thread; Get may be called from any
// thread (a reader-writer lock guards the map).

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "node/consensus/state_machine.h"

namespace dispotify::kv {

enum class Op : uint8_t { kPut = 1, kDelete = 2 };

std::string EncodePut(std::string_view key, std::string_view value);
std::string EncodeDelete(std::string_view key);

struct Command {
  Op op = Op::kPut;
  std::string_view key;
  std::string_view value;
};
// Views into `data`; false when `data` is not a well-formed command.
bool DecodeCommand(std::string_view data, Command* out);

class KvStateMachine final : public consensus::StateMachine {
 public:
  consensus::ApplyResult Apply(const consensus::Entry& entry) override;
  Status SaveSnapshot(consensus::SnapshotSink& sink) override;
  Status Restore(const std::string& path) override;
  LogIndex applied_index() const override { return LogIndex(applied_.load(std::memory_order_acquire)); }

  // Thread-safe read of the current state.
  std::optional<std::string> Get(std::string_view key) const;
  size_t size() const;

 private:
  mutable std::shared_mutex mu_;
  std::map<std::string, std::string, std::less<>> data_;  // guarded by mu_
  std::atomic<uint64_t> applied_{0};
};

}  // namespace dispotify::kv
