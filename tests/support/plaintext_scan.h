#pragma once
// Does a file hold any run of a plaintext? For the encryption-at-rest tests: every `window`-byte
// window of the plaintext, at every offset, is looked up among the file's windows (a hash set, so
// the scan is linear in both sizes; a find() per window would be quadratic). Windows of one
// repeated byte are skipped: they are not the content's (header padding is all zeros).

#include <cstddef>
#include <optional>
#include <string_view>
#include <unordered_set>

namespace dispotify::testing_bytes {

// The offset in `plain` of a window found in `file`, or nullopt when none is.
inline std::optional<size_t> FindPlaintextRun(std::string_view file, std::string_view plain,
                                              size_t window = 32) {
  if (plain.size() < window || file.size() < window) return std::nullopt;
  auto uniform = [](std::string_view w) { return w.find_first_not_of(w.front()) == std::string_view::npos; };
  std::unordered_set<std::string_view> windows;
  windows.reserve(plain.size());
  for (size_t i = 0; i + window <= plain.size(); ++i) {
    std::string_view w = plain.substr(i, window);
    if (!uniform(w)) windows.insert(w);
  }
  for (size_t i = 0; i + window <= file.size(); ++i) {
    auto it = windows.find(file.substr(i, window));
    if (it != windows.end()) return static_cast<size_t>(it->data() - plain.data());
  }
  return std::nullopt;
}

}  // namespace dispotify::testing_bytes
