#pragma once
// Strong types for the numbers that must never be mixed up: a term is not an index, a node id is
// neither. Each wraps a uint64_t (the width written to disk and the wire).

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace dispotify {

template <typename Tag>
class StrongId {
 public:
  constexpr StrongId() = default;
  constexpr explicit StrongId(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr auto operator<=>(const StrongId&) const = default;
  constexpr StrongId next() const { return StrongId(v_ + 1); }
  constexpr StrongId prev() const { return StrongId(v_ == 0 ? 0 : v_ - 1); }

 private:
  uint64_t v_ = 0;
};

template <typename Tag>
std::ostream& operator<<(std::ostream& os, StrongId<Tag> id) {
  return os << id.value();
}

using NodeId = StrongId<struct NodeIdTag>;  // 0 means "none"
using Term = StrongId<struct TermTag>;
using LogIndex = StrongId<struct LogIndexTag>;

inline constexpr NodeId kNoNode{};

}  // namespace dispotify

template <typename Tag>
struct std::hash<dispotify::StrongId<Tag>> {
  size_t operator()(dispotify::StrongId<Tag> id) const noexcept { return std::hash<uint64_t>{}(id.value()); }
};
