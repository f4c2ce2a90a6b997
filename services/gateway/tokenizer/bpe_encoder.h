// Byte-level BPE of one pre-tokenized piece: the tiktoken algorithm.
//
// Start from single bytes; repeatedly merge the adjacent pair whose concatenation has the lowest
// rank (leftmost on ties) until no adjacent pair is a token. A piece that is itself a token is
// returned directly. Short pieces use a linear scan (fast, no heap); long ones a min-heap over a
// linked list so a pathological megabyte-long "word" costs O(n log n), not O(n^2). Both produce
// the same ids (tested against each other).
#pragma once

#include <vector>

#include "absl/strings/string_view.h"
#include "services/gateway/tokenizer/bpe_ranks.h"

namespace glm4v::tokenizer {

// Appends the ids of `piece` (non-empty) to `out`. Every single byte must be a token of `ranks`
// (true for byte-level vocabularies; checked once by the Tokenizer at load).
void BytePairEncode(absl::string_view piece, const BpeRanks& ranks, std::vector<TokenId>* out);

// The two strategies, exposed for tests and the benchmark.
void BytePairEncodeScan(absl::string_view piece, const BpeRanks& ranks, std::vector<TokenId>* out);
void BytePairEncodeHeap(absl::string_view piece, const BpeRanks& ranks, std::vector<TokenId>* out);

// Pieces at least this long use the heap strategy.
inline constexpr size_t kHeapThreshold = 256;

}  // namespace glm4v::tokenizer
