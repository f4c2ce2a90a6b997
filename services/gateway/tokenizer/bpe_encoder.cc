#include "services/gateway/tokenizer/bpe_encoder.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <queue>

namespace glm4v::tokenizer {
namespace {

constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();

uint32_t RankOf(const BpeRanks& ranks, absl::string_view bytes) {
  const TokenId r = ranks.Find(bytes);
  return r < 0 ? kNoRank : static_cast<uint32_t>(r);
}

}  // namespace

void BytePairEncodeScan(absl::string_view piece, const BpeRanks& ranks,
                        std::vector<TokenId>* out) {
  // parts[i].start: byte offset of part i; parts[i].rank: rank of part i merged with part i+1.
  // The last entry is a sentinel at piece.size(). Scratch is per thread to avoid allocation.
  struct Part {
    uint32_t start;
    uint32_t rank;
  };
  thread_local std::vector<Part> parts;
  parts.clear();
  const uint32_t n = static_cast<uint32_t>(piece.size());
  for (uint32_t i = 0; i <= n; ++i) parts.push_back({i, kNoRank});
  // Rank of the pair starting at parts[i] (bytes parts[i].start .. parts[i+2].start).
  auto pair_rank = [&](size_t i) -> uint32_t {
    if (i + 2 >= parts.size()) return kNoRank;
    return RankOf(ranks, piece.substr(parts[i].start, parts[i + 2].start - parts[i].start));
  };
  for (size_t i = 0; i + 2 < parts.size(); ++i) parts[i].rank = pair_rank(i);

  while (parts.size() > 2) {
    uint32_t best = kNoRank;
    size_t best_i = 0;
    for (size_t i = 0; i + 2 < parts.size(); ++i) {
      if (parts[i].rank < best) {  // Strict: the leftmost minimum wins.
        best = parts[i].rank;
        best_i = i;
      }
    }
    if (best == kNoRank) break;
    parts.erase(parts.begin() + best_i + 1);
    parts[best_i].rank = pair_rank(best_i);
    if (best_i > 0) parts[best_i - 1].rank = pair_rank(best_i - 1);
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    out->push_back(ranks.Find(piece.substr(parts[i].start, parts[i + 1].start - parts[i].start)));
  }
}

void BytePairEncodeHeap(absl::string_view piece, const BpeRanks& ranks,
                        std::vector<TokenId>* out) {
  // Doubly linked list of parts; heap entries are (rank, start) of a candidate pair, checked for
  // staleness on pop. Ordering by (rank, start) picks the leftmost lowest rank, like the scan.
  const uint32_t n = static_cast<uint32_t>(piece.size());
  constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  std::vector<uint32_t> next(n), prev(n);
  std::vector<uint32_t> pair_rank(n, kNoRank);  // Current rank of the pair starting at part i.
  std::vector<bool> alive(n, true);
  for (uint32_t i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? i + 1 : kNone;
    prev[i] = i > 0 ? i - 1 : kNone;
  }
  auto end_of = [&](uint32_t i) { return next[i] == kNone ? n : next[i]; };
  using Entry = std::pair<uint32_t, uint32_t>;  // (rank, start)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  auto refresh = [&](uint32_t i) {
    if (i == kNone || next[i] == kNone) {
      if (i != kNone) pair_rank[i] = kNoRank;
      return;
    }
    pair_rank[i] = RankOf(ranks, piece.substr(i, end_of(next[i]) - i));
    if (pair_rank[i] != kNoRank) heap.push({pair_rank[i], i});
  };
  for (uint32_t i = 0; i < n; ++i) refresh(i);
  while (!heap.empty()) {
    const auto [rank, i] = heap.top();
    heap.pop();
    if (!alive[i] || pair_rank[i] != rank) continue;  // Stale entry.
    const uint32_t j = next[i];
    // Merge part j into part i.
    alive[j] = false;
    next[i] = next[j];
    if (next[j] != kNone) prev[next[j]] = i;
    refresh(i);
    refresh(prev[i]);
  }
  for (uint32_t i = 0; i != kNone; i = next[i]) {
    out->push_back(ranks.Find(piece.substr(i, end_of(i) - i)));
  }
}

void BytePairEncode(absl::string_view piece, const BpeRanks& ranks, std::vector<TokenId>* out) {
  if (const TokenId whole = ranks.Find(piece); whole >= 0) {
    out->push_back(whole);
    return;
  }
  if (piece.size() < kHeapThreshold) {
    BytePairEncodeScan(piece, ranks, out);
  } else {
    BytePairEncodeHeap(piece, ranks, out);
  }
}

}  // namespace glm4v::tokenizer
