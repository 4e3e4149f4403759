#include "node/replication/scrubber.h"

#include <algorithm>

#include "common/logging.h"
#include "node/replication/blob_store.h"
#include "node/replication/peer_client.h"

namespace dispotify::replication {
namespace {

constexpr size_t kPage = 1000;
constexpr std::chrono::milliseconds kReportTimeout{3000};

}  // namespace

Scrubber::Scrubber(ScrubberOptions options, BlobStore* blobs, catalog::MetadataStore* store,
                   catalog::Proposer* proposer, PeerClient* peers)
    : options_(options), blobs_(blobs), store_(store), proposer_(proposer), peers_(peers) {}

Scrubber::~Scrubber() {
  Stop();
}

void Scrubber::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Scrubber::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ScrubberStats Scrubber::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool Scrubber::Stopping() {
  std::lock_guard lock(mu_);
  return stop_;
}

void Scrubber::Loop() {
  using Clock = std::chrono::steady_clock;
  auto next_inventory = Clock::now() + options_.inventory_interval;
  auto next_scrub = Clock::now() + options_.scrub_interval;
  while (true) {
    auto wake = next_inventory;
    if (options_.scrub_interval.count() > 0) wake = std::min(wake, next_scrub);
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, wake, [this] { return stop_; });
      if (stop_) return;
    }
    const auto now = Clock::now();
    if (now >= next_inventory) {
      Inventory();
      next_inventory = Clock::now() + options_.inventory_interval;
    }
    if (options_.scrub_interval.count() > 0 && now >= next_scrub) {
      Scrub();
      next_scrub = Clock::now() + options_.scrub_interval;
    }
  }
}

void Scrubber::Report(const std::string& file_id, catalog::ReplicaState state) {
  catalog::Replica replica{file_id, options_.self, state, 0};
  auto r = proposer_->Propose(catalog::SetReplicaCmd{replica}, kReportTimeout);
  if (!r.ok()) DLOG_WARN << "scrub: could not report " << file_id << ": " << r.status().ToString();
}

void Scrubber::Inventory() {
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, std::chrono::steady_clock::time_point> still_orphans;
  std::string after;
  uint64_t deleted = 0;
  uint64_t sealed = 0;
  uint64_t pending = 0;
  uint64_t resealed = 0;
  do {
    auto page = blobs_->List(after, kPage);
    if (!page.ok()) {
      DLOG_WARN << "inventory: cannot list blobs: " << page.status().ToString();
      return;
    }
    for (const auto& id : page->file_ids) {
      if (Stopping()) return;
      auto reader = blobs_->Open(id);
      if (!reader.ok()) continue;  // deleted meanwhile, or damaged (the scrub reports it)
      const std::string sha = (*reader)->sha256();
      const uint64_t size = (*reader)->size();
      const bool needs_reseal = blobs_->NeedsReseal(**reader);
      reader->reset();
      auto song = store_->GetSong(id);
      if (!song.ok()) return;
      const bool referenced = song->has_value() && (*song)->sha256 == sha;
      if (referenced) {
        if (!needs_reseal) {
          sealed += blobs_->has_keyring() ? 1 : 0;
        } else if (ResealThrottled(id, size)) {
          ++sealed;
          ++resealed;
        } else {
          ++pending;
        }
        continue;
      }
      if (needs_reseal)
        ++pending;  // an orphan: not worth re-sealing, it is on its way out
      else if (blobs_->has_keyring())
        ++sealed;
      auto seen = orphans_.find(id);
      const auto first = seen == orphans_.end() ? now : seen->second;
      if (now - first < options_.orphan_grace) {
        still_orphans[id] = first;
        continue;
      }
      Status s = peers_->DeleteFile(options_.self, id, sha);
      if (s.ok()) {
        ++deleted;
        DLOG_INFO << "inventory: deleted " << id << ", which no song references";
      }
    }
    after = page->next_after;
  } while (!after.empty());
  orphans_ = std::move(still_orphans);
  blobs_->RecordSealCensus(sealed, pending);
  if (resealed > 0) DLOG_INFO << "inventory: re-sealed " << resealed << " blobs under the current key";

  // Copies the catalog places here that the disk does not have.
  uint64_t missing = 0;
  std::string after_id;
  while (true) {
    auto reps = store_->ReplicasOnNode(options_.self, after_id, static_cast<uint32_t>(kPage));
    if (!reps.ok() || reps->empty()) break;
    for (const auto& rep : *reps) {
      if (Stopping()) return;
      if (rep.state == catalog::ReplicaState::kHealthy && !blobs_->Exists(rep.file_id)) {
        ++missing;
        Report(rep.file_id, catalog::ReplicaState::kMissing);
      }
    }
    after_id = reps->back().file_id;
    if (reps->size() < kPage) break;
  }
  std::lock_guard lock(mu_);
  ++stats_.inventories;
  stats_.orphans_deleted += deleted;
  stats_.missing_found += missing;
}

bool Scrubber::ResealThrottled(const std::string& file_id, uint64_t size) {
  const auto start = std::chrono::steady_clock::now();
  auto done = blobs_->Reseal(file_id);
  if (!done.ok()) {
    // kCorruption: the scrub reports the copy; anything else is retried on the next pass.
    DLOG_WARN << "inventory: cannot re-seal " << file_id << ": " << done.status().ToString();
  }
  // The rewrite reads and writes the whole file: throttled like the scrub, so a rotation of a
  // large store does not starve the streams.
  if (options_.scrub_bytes_per_second > 0) {
    const auto budget = std::chrono::microseconds(2 * size * 1000000 / options_.scrub_bytes_per_second);
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, start + budget, [this] { return stop_; });
  }
  return done.ok() && *done;
}

void Scrubber::Scrub() {
  uint64_t corrupt = 0;
  std::string after_id;
  while (true) {
    auto reps = store_->ReplicasOnNode(options_.self, after_id, static_cast<uint32_t>(kPage));
    if (!reps.ok() || reps->empty()) break;
    for (const auto& rep : *reps) {
      if (Stopping()) return;
      if (rep.state != catalog::ReplicaState::kHealthy) continue;
      const auto start = std::chrono::steady_clock::now();
      auto reader = blobs_->Open(rep.file_id);
      const uint64_t size = reader.ok() ? (*reader)->size() : 0;
      reader = Status::NotFound("closed");
      Status s = blobs_->VerifyChecksum(rep.file_id);
      if (s.code() == StatusCode::kCorruption) {
        ++corrupt;
        DLOG_WARN << "scrub: " << rep.file_id << " failed its checksum: " << s.message();
        Report(rep.file_id, catalog::ReplicaState::kCorrupt);
      }
      if (options_.scrub_bytes_per_second > 0) {
        const auto budget = std::chrono::microseconds(size * 1000000 / options_.scrub_bytes_per_second);
        std::unique_lock lock(mu_);
        cv_.wait_until(lock, start + budget, [this] { return stop_; });
      }
    }
    after_id = reps->back().file_id;
    if (reps->size() < kPage) break;
  }
  std::lock_guard lock(mu_);
  ++stats_.scrubs;
  stats_.corrupt_found += corrupt;
}

}  // namespace dispotify::replication
