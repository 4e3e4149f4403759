#include "node/replication/placement.h"

#include <algorithm>
#include <array>
#include <string>

#include "common/assert.h"
#include "common/sha256.h"

namespace dispotify::replication {

uint64_t RingPosition(std::string_view key) {
  const std::array<uint8_t, 16> d = Md5Digest(key);
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | d[i];
  return v;
}

PlacementRing::PlacementRing(const std::vector<NodeId>& nodes) : nodes_(nodes) {
  std::sort(nodes_.begin(), nodes_.end());
  nodes_.erase(std::unique(nodes_.begin(), nodes_.end()), nodes_.end());
  DISPOTIFY_CHECK(nodes_.empty() || nodes_.front() != kNoNode, "node id 0 on the placement ring");
  points_.reserve(nodes_.size() * kVirtualNodes);
  for (NodeId node : nodes_) {
    const std::string prefix = std::to_string(node.value()) + "#";
    for (size_t i = 0; i < kVirtualNodes; ++i) {
      points_.push_back(Point{RingPosition(prefix + std::to_string(i)), node});
    }
  }
  std::sort(points_.begin(), points_.end());
}

std::vector<NodeId> PlacementRing::Placement(std::string_view file_id, size_t replicas) const {
  std::vector<NodeId> out;
  const size_t want = std::min(replicas, nodes_.size());
  if (want == 0) return out;
  out.reserve(want);
  const uint64_t position = RingPosition(file_id);
  auto it = std::lower_bound(points_.begin(), points_.end(), position,
                             [](const Point& p, uint64_t pos) { return p.position < pos; });
  size_t start = static_cast<size_t>(it - points_.begin());
  for (size_t k = 0; k < points_.size() && out.size() < want; ++k) {
    const NodeId node = points_[(start + k) % points_.size()].node;
    if (std::find(out.begin(), out.end(), node) == out.end()) out.push_back(node);
  }
  return out;
}

NodeId PlacementRing::Primary(std::string_view file_id) const {
  std::vector<NodeId> p = Placement(file_id, 1);
  return p.empty() ? kNoNode : p.front();
}

}  // namespace dispotify::replication
