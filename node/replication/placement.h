#pragma once
// Where a file's replicas live: consistent hashing (Karger et al. 1997) on a ring of 2^64
// positions.
//
//  - A key's position is the first 8 bytes of MD5(key) read as a big-endian uint64. MD5 is for
//    placement only (spread, not security); integrity uses SHA-256.
//  - Every node owns kVirtualNodes points, at the positions of the keys "<node_id>#<i>" (node_id
//    in decimal, i = 0..kVirtualNodes-1). Two points at the same position are ordered by node id.
//  - Placement(file_id, R): from the position of file_id, walk clockwise (towards larger
//    positions, wrapping at 2^64) from the first point at or after it, and take the first R
//    distinct nodes; the first one is the primary. Fewer than R when the ring has fewer nodes.
//
// The result depends only on the set of node ids, so every process computes the same placement
// from the same membership. Adding a node moves only the files for which it lands among the
// first R (about R/N of them, each losing one old holder); removing a node moves only the files
// it held.
//
// A PlacementRing is immutable once built (safe to share between threads, e.g. through a
// std::shared_ptr<const PlacementRing>); a membership change builds a new one (N x 150 MD5s and a
// sort: well under a millisecond for tens of nodes).

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/ids.h"

namespace dispotify::replication {

// The position of `key` on the ring.
uint64_t RingPosition(std::string_view key);

class PlacementRing {
 public:
  static constexpr size_t kVirtualNodes = 150;

  // From a set of node ids (order and duplicates do not matter; kNoNode is not a node).
  explicit PlacementRing(const std::vector<NodeId>& nodes);

  // The first `replicas` distinct nodes clockwise from file_id's position; the primary first.
  std::vector<NodeId> Placement(std::string_view file_id, size_t replicas) const;
  // Placement(file_id, 1)[0], or kNoNode on an empty ring.
  NodeId Primary(std::string_view file_id) const;

  // The distinct node ids, in increasing order.
  const std::vector<NodeId>& nodes() const { return nodes_; }
  bool empty() const { return nodes_.empty(); }

 private:
  struct Point {
    uint64_t position;
    NodeId node;
    auto operator<=>(const Point&) const = default;
  };

  std::vector<NodeId> nodes_;
  std::vector<Point> points_;  // sorted by (position, node)
};

}  // namespace dispotify::replication
