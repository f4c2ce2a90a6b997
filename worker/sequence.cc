#include "worker/sequence.h"

#include <cassert>
#include <utility>

namespace glm4v::worker {

Sequence::Sequence(std::string request_id_in, uint64_t arrival_index_in,
                   SequencePrompt prompt_in, SamplingParams params_in, uint64_t seed_in,
                   absl::flat_hash_set<int32_t> seen_tokens_in, int max_total_tokens_in)
    : request_id(std::move(request_id_in)),
      arrival_index(arrival_index_in),
      prompt(std::move(prompt_in)),
      params(std::move(params_in)),
      seed(seed_in),
      max_total_tokens(max_total_tokens_in),
      seen_tokens(std::move(seen_tokens_in)),
      arrival_time(absl::Now()) {}

int32_t Sequence::TokenId(int i) const {
  if (i < prompt_len()) return prompt.token_ids[i];
  return i < num_known_tokens() ? output_ids[i - prompt_len()] : kPendingTokenId;
}

int32_t Sequence::Position(int i) const {
  return i < prompt_len() ? prompt.positions[i] : prompt.next_position + (i - prompt_len());
}

int32_t Sequence::EmbeddingRow(int i) const {
  if (i >= prompt_len() || prompt.embedding_rows.empty()) return -1;
  return prompt.embedding_rows[i];
}

const std::vector<BlockHash>& Sequence::BlockHashes(int num_blocks, int block_size) {
  assert(num_blocks * block_size <= num_known_tokens());
  std::vector<RowIdentity> rows(block_size);
  while (static_cast<int>(block_hashes_.size()) < num_blocks) {
    const int block = static_cast<int>(block_hashes_.size());
    for (int slot = 0; slot < block_size; ++slot) {
      const int i = block * block_size + slot;
      RowIdentity& row = rows[slot];
      row = RowIdentity{};
      row.token_id = TokenId(i);
      row.position = Position(i);
      row.cache_index = i;
      const int32_t feature_row = EmbeddingRow(i);
      if (feature_row >= 0) {
        for (const SequenceImage& image : prompt.images) {
          if (feature_row >= image.first_feature_row &&
              feature_row < image.first_feature_row + image.num_rows) {
            row.image_hash = &image.content_hash;
            row.image_row = feature_row - image.first_feature_row;
            break;
          }
        }
      }
    }
    const BlockHash parent = block == 0 ? BlockHash{} : block_hashes_.back();
    block_hashes_.push_back(HashBlock(parent, rows));
  }
  return block_hashes_;
}

void Sequence::AppendToken(int32_t token_id) {
  assert(num_pending_tokens == 0);
  output_ids.push_back(token_id);
  seen_tokens.insert(token_id);
  if (params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f) {
    ++output_counts[token_id];
  }
}

void Sequence::StartPendingToken() {
  assert(num_pending_tokens == 0);
  num_pending_tokens = 1;
}

void Sequence::ResolvePendingToken(int32_t token_id) {
  assert(num_pending_tokens == 1);
  num_pending_tokens = 0;
  AppendToken(token_id);
}

void Sequence::DropPendingToken() { num_pending_tokens = 0; }

}  // namespace glm4v::worker
