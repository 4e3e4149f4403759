#include "tests/mocks/fault_injecting_file_system.h"

#include <algorithm>
#include <utility>

namespace dispotify::mocks {

class FaultFile final : public File {
 public:
  FaultFile(FaultInjectingFileSystem* fs, std::unique_ptr<File> inner,
            std::shared_ptr<FaultInjectingFileSystem::FileState> state, uint64_t generation, uint64_t end)
      : fs_(fs), inner_(std::move(inner)), state_(std::move(state)), generation_(generation), end_(end) {}

  Status Append(std::string_view data) override { return PWrite(end_, data); }

  Status PWrite(uint64_t offset, std::string_view data) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    DISPOTIFY_RETURN_IF_ERROR(CheckAliveLocked());
    ++fs_->writes_;
    FaultInjectingFileSystem::Fired fired;
    if (fs_->MaybeFailLocked(FsOp::kWrite, path(), &fired)) {
      const size_t n = std::min(fired.partial_bytes, data.size());
      if (n > 0) DISPOTIFY_RETURN_IF_ERROR(WriteLocked(offset, data.substr(0, n)));
      return Status::FromErrno(fired.err, "pwrite " + path() + " (injected)");
    }
    return WriteLocked(offset, data);
  }

  Result<size_t> PRead(uint64_t offset, size_t n, char* buf) const override {
    {
      std::lock_guard<std::mutex> lock(fs_->mu_);
      DISPOTIFY_RETURN_IF_ERROR(CheckAliveLocked());
    }
    return inner_->PRead(offset, n, buf);
  }

  Status Sync() override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    DISPOTIFY_RETURN_IF_ERROR(CheckAliveLocked());
    ++fs_->syncs_;
    FaultInjectingFileSystem::Fired fired;
    if (fs_->MaybeFailLocked(FsOp::kSync, path(), &fired)) {
      return Status::FromErrno(fired.err, "fdatasync " + path() + " (injected)");
    }
    DISPOTIFY_RETURN_IF_ERROR(inner_->Sync());
    auto size = inner_->Size();
    if (!size.ok()) return size.status();
    state_->synced_len = *size;
    state_->undo.clear();
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    DISPOTIFY_RETURN_IF_ERROR(CheckAliveLocked());
    FaultInjectingFileSystem::Fired fired;
    if (fs_->MaybeFailLocked(FsOp::kTruncate, path(), &fired)) {
      return Status::FromErrno(fired.err, "ftruncate " + path() + " (injected)");
    }
    DISPOTIFY_RETURN_IF_ERROR(inner_->Truncate(size));
    end_ = size;
    state_->synced_len = std::min(state_->synced_len, size);  // truncation is durable at once
    return Status::Ok();
  }

  Result<uint64_t> Size() const override {
    {
      std::lock_guard<std::mutex> lock(fs_->mu_);
      DISPOTIFY_RETURN_IF_ERROR(CheckAliveLocked());
    }
    return inner_->Size();
  }

  const std::string& path() const override { return inner_->path(); }

 private:
  Status CheckAliveLocked() const {
    if (generation_ != fs_->generation_)
      return Status::IoError(path() + ": file handle from before a simulated crash");
    return Status::Ok();
  }

  // Writes through, remembering the durable bytes it overwrites.
  Status WriteLocked(uint64_t offset, std::string_view data) {
    if (offset < state_->synced_len) {
      const uint64_t n = std::min<uint64_t>(data.size(), state_->synced_len - offset);
      std::string old(n, '\0');
      auto got = inner_->PRead(offset, n, old.data());
      if (!got.ok()) return got.status();
      old.resize(*got);
      state_->undo.push_back({offset, std::move(old)});
    }
    Status s = inner_->PWrite(offset, data);
    auto size = inner_->Size();
    if (size.ok()) end_ = std::max(end_, std::min<uint64_t>(*size, offset + data.size()));
    return s;
  }

  FaultInjectingFileSystem* fs_;
  std::unique_ptr<File> inner_;
  std::shared_ptr<FaultInjectingFileSystem::FileState> state_;
  const uint64_t generation_;
  uint64_t end_;
};

std::shared_ptr<FaultInjectingFileSystem::FileState> FaultInjectingFileSystem::StateLocked(
    const std::string& path) {
  auto it = files_.find(path);
  if (it != files_.end()) return it->second;
  auto state = std::make_shared<FileState>();
  auto size = base_.FileSize(path);
  state->synced_len = size.ok() ? *size : 0;
  files_[path] = state;
  return state;
}

bool FaultInjectingFileSystem::MaybeFailLocked(FsOp op, const std::string& path, Fired* fired) {
  for (size_t i = 0; i < faults_.size(); ++i) {
    Fault& f = faults_[i];
    if (f.op != op || (!f.path_substr.empty() && path.find(f.path_substr) == std::string::npos)) continue;
    if (fault_fired_[i]) {
      if (!f.sticky) continue;
    } else if (--f.nth > 0) {
      continue;
    }
    fault_fired_[i] = true;
    fired->err = f.err;
    fired->partial_bytes = f.partial_bytes;
    return true;
  }
  return false;
}

void FaultInjectingFileSystem::Inject(Fault fault) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fault.nth == 0) fault.nth = 1;
  faults_.push_back(std::move(fault));
  fault_fired_.push_back(false);
}

void FaultInjectingFileSystem::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.clear();
  fault_fired_.clear();
}

Result<std::unique_ptr<File>> FaultInjectingFileSystem::Open(const std::string& path, OpenMode mode) {
  std::lock_guard<std::mutex> lock(mu_);
  Fired fired;
  if (MaybeFailLocked(FsOp::kOpen, path, &fired))
    return Status::FromErrno(fired.err, "open " + path + " (injected)");
  const bool existed = base_.Exists(path);
  auto inner = base_.Open(path, mode);
  if (!inner.ok()) return inner.status();
  std::shared_ptr<FileState> state;
  if (!existed) {
    state = std::make_shared<FileState>();
    state->unsynced_create = true;
    files_[path] = state;
  } else {
    state = StateLocked(path);
    if (mode == OpenMode::kCreateTruncate) {
      state->synced_len = 0;
      state->undo.clear();
    }
  }
  auto size = (*inner)->Size();
  if (!size.ok()) return size.status();
  return std::unique_ptr<File>(
      std::make_unique<FaultFile>(this, std::move(inner).value(), state, generation_, *size));
}

Status FaultInjectingFileSystem::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  Fired fired;
  if (MaybeFailLocked(FsOp::kRename, from, &fired)) {
    return Status::FromErrno(fired.err, "rename " + from + " (injected)");
  }
  const bool to_existed = base_.Exists(to);
  std::shared_ptr<FileState> state = StateLocked(from);
  DISPOTIFY_RETURN_IF_ERROR(base_.Rename(from, to));
  files_.erase(from);
  if (to_existed) state->unsynced_create = false;  // see the crash model
  files_[to] = state;
  return Status::Ok();
}

Status FaultInjectingFileSystem::Remove(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  Fired fired;
  if (MaybeFailLocked(FsOp::kRemove, path, &fired)) {
    return Status::FromErrno(fired.err, "remove " + path + " (injected)");
  }
  DISPOTIFY_RETURN_IF_ERROR(base_.Remove(path));
  files_.erase(path);
  return Status::Ok();
}

Status FaultInjectingFileSystem::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  Fired fired;
  if (MaybeFailLocked(FsOp::kSyncDir, dir, &fired)) {
    return Status::FromErrno(fired.err, "fsync directory " + dir + " (injected)");
  }
  DISPOTIFY_RETURN_IF_ERROR(base_.SyncDir(dir));
  for (auto& [path, state] : files_) {
    if (ParentDir(path) == ParentDir(JoinPath(dir, "x"))) state->unsynced_create = false;
  }
  return Status::Ok();
}

Status FaultInjectingFileSystem::Crash(uint64_t keep_unsynced_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  Status first_error;
  auto note = [&](Status s) {
    if (!s.ok() && first_error.ok()) first_error = s;
  };
  for (auto& [path, state] : files_) {
    if (!base_.Exists(path)) continue;
    if (state->unsynced_create) {
      note(base_.Remove(path));
      continue;
    }
    auto file = base_.Open(path, OpenMode::kReadWrite);
    if (!file.ok()) {
      note(file.status());
      continue;
    }
    for (auto it = state->undo.rbegin(); it != state->undo.rend(); ++it) {
      if (it->offset >= state->synced_len) continue;  // cut below by a later truncation
      const uint64_t n = std::min<uint64_t>(it->old_bytes.size(), state->synced_len - it->offset);
      note((*file)->PWrite(it->offset, std::string_view(it->old_bytes).substr(0, n)));
    }
    auto size = (*file)->Size();
    if (!size.ok()) {
      note(size.status());
      continue;
    }
    const uint64_t keep = std::min(*size, state->synced_len + keep_unsynced_bytes);
    if (keep < *size) note((*file)->Truncate(keep));
  }
  files_.clear();
  return first_error;
}

Status FaultInjectingFileSystem::FlipByte(const std::string& path, uint64_t offset, uint8_t mask) {
  auto file = base_.Open(path, OpenMode::kReadWrite);
  if (!file.ok()) return file.status();
  char c = 0;
  auto n = (*file)->PRead(offset, 1, &c);
  if (!n.ok()) return n.status();
  if (*n != 1) return Status::InvalidArgument("FlipByte: offset past the end of " + path);
  c = static_cast<char>(static_cast<uint8_t>(c) ^ mask);
  return (*file)->PWrite(offset, std::string_view(&c, 1));
}

uint64_t FaultInjectingFileSystem::SyncedLength(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return StateLocked(path)->synced_len;
}

uint64_t FaultInjectingFileSystem::write_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return writes_;
}

uint64_t FaultInjectingFileSystem::sync_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syncs_;
}

}  // namespace dispotify::mocks
