#pragma once
// Every node's own housekeeping of its blob store, in the background:
//  - inventory (every inventory_interval): a blob that no song references (a failed or crashed
//    upload, a deleted song, a copy trimmed while this node was down) is deleted once it has been
//    seen unreferenced for orphan_grace — longer than an upload holds its lock, so an upload in
//    flight is never swept; a copy the catalog says this node holds but the disk lacks is reported
//    missing.
//  - scrub (every scrub_interval; 0 = never): re-hash every referenced blob, throttled to
//    scrub_bytes_per_second; a copy that fails is reported corrupt (the leader's repair replaces
//    it from a good copy).
//  - re-seal (with the inventory, when the blob store has a keyring): a referenced blob that is
//    plaintext or sealed under an older key is rewritten under the keyring's current key
//    (BlobStore::Reseal: authenticated, SHA-256 checked before the rename, synced), throttled to
//    scrub_bytes_per_second, so a key rotation completes in the background while the old key
//    still reads what is not yet done. Orphans are left as they are (they are deleted anyway).
// Reports go through the catalog (a Raft command), so the leader's repair sees them.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/ids.h"
#include "node/catalog/metadata_store.h"
#include "node/catalog/proposer.h"

namespace dispotify::replication {

class BlobStore;
class PeerClient;

struct ScrubberOptions {
  NodeId self;
  std::chrono::milliseconds inventory_interval{30000};
  std::chrono::milliseconds orphan_grace{15 * 60 * 1000};
  std::chrono::milliseconds scrub_interval{3600 * 1000};
  uint64_t scrub_bytes_per_second = 32ull << 20;
};

struct ScrubberStats {
  uint64_t inventories = 0;
  uint64_t scrubs = 0;
  uint64_t orphans_deleted = 0;
  uint64_t corrupt_found = 0;
  uint64_t missing_found = 0;
};

class Scrubber {
 public:
  Scrubber(ScrubberOptions options, BlobStore* blobs, catalog::MetadataStore* store,
           catalog::Proposer* proposer, PeerClient* peers);
  ~Scrubber();
  Scrubber(const Scrubber&) = delete;
  Scrubber& operator=(const Scrubber&) = delete;

  void Start();
  void Stop();
  ScrubberStats Stats() const;

 private:
  void Loop();
  void Inventory();
  void Scrub();
  // Re-seals one blob, then waits out its share of the throttle; true when it was rewritten.
  bool ResealThrottled(const std::string& file_id, uint64_t size);
  void Report(const std::string& file_id, catalog::ReplicaState state);
  bool Stopping();

  const ScrubberOptions options_;
  BlobStore* blobs_;
  catalog::MetadataStore* store_;
  catalog::Proposer* proposer_;
  PeerClient* peers_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  ScrubberStats stats_;
  std::thread thread_;
  // Loop thread only: when each unreferenced blob was first seen so.
  std::map<std::string, std::chrono::steady_clock::time_point> orphans_;
};

}  // namespace dispotify::replication
