#include "model/tensor_parallel.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace glm4v {

absl::StatusOr<TensorParallelShard> PlanShard(const ModelConfig& config, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor-parallel rank ", rank, " outside a group of ", size));
  }
  const int heads = config.num_attention_heads, groups = config.multi_query_group_num;
  auto fail = [&](auto... what) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot split the decoder ", size, " ways: ", what...));
  };
  if (heads <= 0 || groups <= 0 || heads % groups != 0) {
    return fail(heads, " attention heads are not a multiple of ", groups, " KV groups");
  }
  if (heads % size != 0) return fail(heads, " attention heads are not divisible by ", size);
  if (groups % size != 0 && size % groups != 0) {
    return fail(groups, " KV groups neither divide nor are divisible by ", size);
  }
  if (config.ffn_hidden_size % size != 0) {
    return fail("ffn_hidden_size ", config.ffn_hidden_size, " is not divisible by ", size);
  }
  if (config.padded_vocab_size % size != 0) {
    return fail("padded_vocab_size ", config.padded_vocab_size, " is not divisible by ", size);
  }
  TensorParallelShard s;
  s.rank = rank;
  s.size = size;
  s.num_heads = heads / size;
  s.first_head = rank * s.num_heads;
  // With more ranks than groups every rank keeps the one group its (consecutive) heads use.
  s.num_kv_heads = std::max(1, groups / size);
  s.first_kv_head = s.first_head / (heads / groups);
  s.ffn = config.ffn_hidden_size / size;
  s.first_ffn = rank * s.ffn;
  s.vocab = config.padded_vocab_size / size;
  s.first_vocab = rank * s.vocab;
  return s;
}

absl::Status CheckDecodeContextParallel(const ModelConfig& config, int size, int dcp) {
  if (dcp == 1) return absl::OkStatus();
  const int groups = config.multi_query_group_num;
  if (dcp < 1) return absl::InvalidArgumentError("decode_context_parallel must be >= 1");
  if (groups <= 0 || size <= groups || size % groups != 0 || (size / groups) % dcp != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decode_context_parallel ", dcp, " needs more tensor-parallel ranks than KV groups and "
        "must divide the ranks per group: tp_size ", size, ", ", groups, " KV groups"));
  }
  return absl::OkStatus();
}

int DefaultDecodeContextParallel(const ModelConfig& config, int size) {
  const int groups = config.multi_query_group_num;
  if (groups <= 0 || size <= groups || size % groups != 0) return 1;
  return size / groups;
}

}  // namespace glm4v
