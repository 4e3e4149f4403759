#pragma once
// The core's in-memory view of the log: the snapshot it starts after, the entries after it, and
// how far they are durable (stable), committed and applied. Storage holds the durable copy; the
// core holds every entry since the last snapshot (compaction keeps that bounded), so it never
// reads the disk (LogCabin keeps its log in memory the same way).
//
//   snapshot.index < first_index() <= stable <= last_index()
//   applied <= committed;  applied <= stable (only durable entries are handed out to apply)
//
// Membership: the configuration in force is the one after the last ConfChange entry in the log,
// committed or not (thesis §4.1); conf_after_ remembers it per ConfChange entry so truncation
// and compaction restore the right one.

#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "node/consensus/types.h"

namespace dispotify::consensus {

class RaftLog {
 public:
  void Restore(const SnapshotMeta& snapshot, std::vector<Entry> entries, LogIndex committed,
               LogIndex applied);

  LogIndex first_index() const { return snapshot_.index.next(); }
  LogIndex last_index() const { return LogIndex(snapshot_.index.value() + entries_.size()); }
  Term last_term() const { return entries_.empty() ? snapshot_.term : entries_.back().term; }
  LogIndex committed() const { return committed_; }
  LogIndex applied() const { return applied_; }
  LogIndex stable() const { return stable_; }
  const SnapshotMeta& snapshot() const { return snapshot_; }

  // Term of the entry at `index`: the snapshot's term at snapshot.index; nullopt when compacted
  // away (below the snapshot) or past the end.
  std::optional<Term> TermAt(LogIndex index) const;
  bool Matches(LogIndex index, Term term) const {
    auto t = TermAt(index);
    return t.has_value() && *t == term;
  }
  // §5.4.1: is a log ending at (index, term) at least as up to date as ours?
  bool IsUpToDate(LogIndex index, Term term) const {
    return term > last_term() || (term == last_term() && index >= last_index());
  }
  const Entry& At(LogIndex index) const;
  // Entries [lo, hi] capped at max_count entries and max_bytes of data (at least one entry).
  std::vector<Entry> Slice(LogIndex lo, LogIndex hi, size_t max_count, size_t max_bytes) const;
  // Last index of `term` at or below `hint`, or nullopt when the log has no such entry.
  std::optional<LogIndex> LastIndexOfTerm(Term term, LogIndex hint) const;
  // First index whose term equals the term at `index` (fast backtracking hint).
  LogIndex FirstIndexOfTermAt(LogIndex index) const;

  // Appends entries, truncating a conflicting suffix first. entries.front().index must be in
  // (committed, last_index() + 1].
  void Append(std::vector<Entry> entries);
  void CommitTo(LogIndex index);
  void AppliedTo(LogIndex index);
  void StableTo(LogIndex index, Term term);
  // Entries not yet handed to storage.
  std::vector<Entry> UnstableEntries() const;
  bool HasUnstable() const { return unstable_from_ <= last_index(); }
  void MarkHandedToStorage() { unstable_from_ = last_index().next(); }
  // Committed, durable, not yet applied.
  std::vector<Entry> NextCommitted(size_t max_bytes) const;
  bool HasNextCommitted() const;

  // Drops [first_index(), index] (a snapshot of the state machine covers it). index <= applied.
  void Compact(LogIndex index);
  // Installs a received snapshot: entries after it survive only if the log holds the snapshot's
  // last entry (Figure 13 step 6); committed/applied/stable move to its index.
  void InstallSnapshot(const SnapshotMeta& meta);

  const ConfState& conf() const;
  // Index of the last ConfChange entry in the log (0 when none after the snapshot).
  LogIndex last_conf_index() const { return conf_after_.empty() ? LogIndex() : conf_after_.rbegin()->first; }

 private:
  void TruncateFrom(LogIndex index);
  void RecordConf(const Entry& e);

  SnapshotMeta snapshot_;
  std::deque<Entry> entries_;
  LogIndex committed_;
  LogIndex applied_;
  LogIndex stable_;
  LogIndex unstable_from_{1};
  std::map<LogIndex, ConfState> conf_after_;
};

}  // namespace dispotify::consensus
