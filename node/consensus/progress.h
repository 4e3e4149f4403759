#pragma once
// The leader's view of one member's replication (etcd/raft's tracker.Progress).
//   kProbe:     the match point is unknown; one AppendEntries at a time until a success.
//   kReplicate: the follower is in step; AppendEntries are pipelined up to a window.
//   kSnapshot:  the entries it needs were compacted; an InstallSnapshot is in progress.

#include <cstdint>
#include <deque>

#include "common/ids.h"
#include "node/consensus/types.h"

namespace dispotify::consensus {

struct Progress {
  enum class State : uint8_t { kProbe, kReplicate, kSnapshot };

  LogIndex match;
  LogIndex next;
  // The incarnation this progress was built for: a member added back with another one (it lost
  // its disk) starts from scratch, never from its predecessor's match.
  std::string node_uuid;
  State state = State::kProbe;
  bool probe_sent = false;        // kProbe: an append is outstanding; wait for a reply or a heartbeat
  std::deque<LogIndex> inflight;  // kReplicate: last index of each append not yet acknowledged
  bool recent_active = false;     // heard from since the last check-quorum round
  uint64_t acked_read_seq = 0;    // highest heartbeat round acknowledged (ReadIndex)
  // kSnapshot: the snapshot being sent and the next byte to send.
  SnapshotMeta snapshot;
  uint64_t snapshot_offset = 0;
  bool snapshot_chunk_inflight = false;
  int snapshot_idle_ticks = 0;  // ticks since the last chunk reply; resend past a timeout

  void BecomeProbe() {
    state = State::kProbe;
    next = match.next();
    probe_sent = false;
    inflight.clear();
  }
  void BecomeReplicate() {
    state = State::kReplicate;
    next = match.next();
    probe_sent = false;
    inflight.clear();
  }
  void BecomeSnapshot(const SnapshotMeta& meta) {
    state = State::kSnapshot;
    snapshot = meta;
    snapshot_offset = 0;
    snapshot_chunk_inflight = false;
    snapshot_idle_ticks = 0;
    inflight.clear();
  }
  // Records a success up to `index`; returns true if the match point moved forward.
  bool MaybeUpdate(LogIndex index) {
    bool updated = false;
    if (index > match) {
      match = index;
      updated = true;
      probe_sent = false;
    }
    if (next < index.next()) next = index.next();
    while (!inflight.empty() && inflight.front() <= index) inflight.pop_front();
    return updated;
  }
};

}  // namespace dispotify::consensus
