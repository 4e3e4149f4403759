#include "node/consensus/raft_log.h"

#include <algorithm>

#include "common/assert.h"

namespace dispotify::consensus {

void RaftLog::Restore(const SnapshotMeta& snapshot, std::vector<Entry> entries, LogIndex committed,
                      LogIndex applied) {
  snapshot_ = snapshot;
  entries_.clear();
  conf_after_.clear();
  for (auto& e : entries) {
    DISPOTIFY_CHECK(e.index == last_index().next(), "restored log must be contiguous after the snapshot");
    RecordConf(e);
    entries_.push_back(std::move(e));
  }
  stable_ = last_index();
  unstable_from_ = last_index().next();
  committed_ = std::clamp(committed, snapshot.index, last_index());
  applied_ = std::clamp(applied, snapshot.index, committed_);
}

std::optional<Term> RaftLog::TermAt(LogIndex index) const {
  if (index == snapshot_.index) return snapshot_.term;
  if (index < snapshot_.index || index > last_index()) return std::nullopt;
  return At(index).term;
}

const Entry& RaftLog::At(LogIndex index) const {
  DISPOTIFY_DCHECK(index >= first_index() && index <= last_index(), "log index out of range");
  return entries_[index.value() - first_index().value()];
}

std::vector<Entry> RaftLog::Slice(LogIndex lo, LogIndex hi, size_t max_count, size_t max_bytes) const {
  std::vector<Entry> out;
  size_t bytes = 0;
  for (LogIndex i = lo; i <= hi && out.size() < max_count; i = i.next()) {
    const Entry& e = At(i);
    if (!out.empty() && bytes + e.data.size() > max_bytes) break;
    bytes += e.data.size();
    out.push_back(e);
  }
  return out;
}

std::optional<LogIndex> RaftLog::LastIndexOfTerm(Term term, LogIndex hint) const {
  LogIndex i = std::min(hint, last_index());
  while (i >= first_index()) {
    Term t = At(i).term;
    if (t == term) return i;
    if (t < term) return std::nullopt;  // terms only grow along the log
    i = i.prev();
  }
  if (i == snapshot_.index && snapshot_.term == term) return i;
  return std::nullopt;
}

LogIndex RaftLog::FirstIndexOfTermAt(LogIndex index) const {
  auto term = TermAt(index);
  if (!term) return index;
  LogIndex i = index;
  while (i > first_index() && At(i.prev()).term == *term) i = i.prev();
  return i;
}

void RaftLog::Append(std::vector<Entry> entries) {
  if (entries.empty()) return;
  LogIndex first = entries.front().index;
  DISPOTIFY_CHECK(first > committed_, "must never truncate a committed entry");
  DISPOTIFY_CHECK(first <= last_index().next(), "append would leave a gap in the log");
  if (first <= last_index()) TruncateFrom(first);
  for (auto& e : entries) {
    DISPOTIFY_DCHECK(e.index == last_index().next(), "appended entries must be contiguous");
    DISPOTIFY_DCHECK(e.term >= last_term(), "terms never decrease along the log");
    RecordConf(e);
    entries_.push_back(std::move(e));
  }
}

void RaftLog::TruncateFrom(LogIndex index) {
  DISPOTIFY_CHECK(index > committed_, "must never truncate a committed entry");
  entries_.resize(index.value() - first_index().value());
  conf_after_.erase(conf_after_.lower_bound(index), conf_after_.end());
  stable_ = std::min(stable_, index.prev());
  unstable_from_ = std::min(unstable_from_, index);
}

void RaftLog::RecordConf(const Entry& e) {
  if (e.type != EntryType::kConfChange) return;
  ConfState next = conf();
  ConfChange cc;
  if (DecodeConfChange(e.data, &cc)) (void)ApplyConfChange(cc, &next);
  conf_after_[e.index] = std::move(next);
}

void RaftLog::CommitTo(LogIndex index) {
  if (index <= committed_) return;
  DISPOTIFY_CHECK(index <= last_index(), "commit index beyond the end of the log");
  committed_ = index;
}

void RaftLog::AppliedTo(LogIndex index) {
  if (index <= applied_) return;
  DISPOTIFY_CHECK(index <= committed_, "applied an uncommitted entry");
  applied_ = index;
}

void RaftLog::StableTo(LogIndex index, Term term) {
  // The entry may have been truncated and replaced since it was handed to storage: only mark it
  // stable if the log still holds the same entry.
  if (index > stable_ && Matches(index, term)) stable_ = index;
}

std::vector<Entry> RaftLog::UnstableEntries() const {
  std::vector<Entry> out;
  for (LogIndex i = unstable_from_; i <= last_index(); i = i.next()) out.push_back(At(i));
  return out;
}

bool RaftLog::HasNextCommitted() const {
  return applied_ < std::min(committed_, stable_);
}

std::vector<Entry> RaftLog::NextCommitted(size_t max_bytes) const {
  std::vector<Entry> out;
  LogIndex hi = std::min(committed_, stable_);
  size_t bytes = 0;
  for (LogIndex i = applied_.next(); i <= hi; i = i.next()) {
    const Entry& e = At(i);
    if (!out.empty() && bytes + e.data.size() > max_bytes) break;
    bytes += e.data.size();
    out.push_back(e);
  }
  return out;
}

void RaftLog::Compact(LogIndex index) {
  if (index <= snapshot_.index) return;
  DISPOTIFY_CHECK(index <= applied_, "compacting entries that were not applied");
  SnapshotMeta meta;
  meta.index = index;
  meta.term = At(index).term;
  // The configuration as of `index`: after the last ConfChange at or below it.
  auto it = conf_after_.upper_bound(index);
  meta.conf = it == conf_after_.begin() ? snapshot_.conf : std::prev(it)->second;
  size_t drop = index.value() - snapshot_.index.value();
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(drop));
  conf_after_.erase(conf_after_.begin(), conf_after_.upper_bound(index));
  snapshot_ = std::move(meta);
}

void RaftLog::InstallSnapshot(const SnapshotMeta& meta) {
  if (Matches(meta.index, meta.term) && meta.index <= last_index()) {
    // Keep the suffix after the snapshot: it is consistent with the leader's log.
    size_t drop = meta.index.value() - snapshot_.index.value();
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(drop));
    conf_after_.erase(conf_after_.begin(), conf_after_.upper_bound(meta.index));
    snapshot_ = meta;
    committed_ = std::max(committed_, meta.index);
    applied_ = meta.index;
    stable_ = std::max(stable_, meta.index);
    unstable_from_ = std::max(unstable_from_, meta.index.next());
    return;
  }
  entries_.clear();
  conf_after_.clear();
  snapshot_ = meta;
  committed_ = meta.index;
  applied_ = meta.index;
  stable_ = meta.index;
  unstable_from_ = meta.index.next();
}

const ConfState& RaftLog::conf() const {
  return conf_after_.empty() ? snapshot_.conf : conf_after_.rbegin()->second;
}

}  // namespace dispotify::consensus
