#include "model/decoder.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace glm4v {

namespace {

absl::Status CheckConfig(const ModelConfig& config) {
  if (config.num_attention_heads <= 0 || config.multi_query_group_num <= 0 ||
      config.num_attention_heads % config.multi_query_group_num != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_attention_heads ", config.num_attention_heads,
                     " must be a multiple of multi_query_group_num ",
                     config.multi_query_group_num));
  }
  if (config.kv_channels <= 0 || config.kv_channels % 4 != 0) {
    // Half of each head rotates, in pairs.
    return absl::InvalidArgumentError("kv_channels must be a positive multiple of 4");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Decoder>> Decoder::Load(const Checkpoint& checkpoint,
                                                       const ModelConfig& config,
                                                       Backend* backend,
                                                       const TensorParallelContext& tp) {
  RETURN_IF_ERROR(CheckConfig(config));
  ASSIGN_OR_RETURN(TensorParallelShard shard, PlanShard(config, tp.rank, tp.size));
  ASSIGN_OR_RETURN(DecoderWeights weights,
                   LoadDecoderWeights(checkpoint, config, backend, shard));
  return Create(config, std::move(weights), backend, tp);
}

absl::StatusOr<std::unique_ptr<Decoder>> Decoder::Create(const ModelConfig& config,
                                                         DecoderWeights weights, Backend* backend,
                                                         const TensorParallelContext& tp) {
  RETURN_IF_ERROR(CheckConfig(config));
  ASSIGN_OR_RETURN(TensorParallelShard shard, PlanShard(config, tp.rank, tp.size));
  if (weights.shard.rank != shard.rank || weights.shard.size != shard.size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "weights are shard ", weights.shard.rank, " of ", weights.shard.size,
        ", the decoder is rank ", tp.rank, " of ", tp.size));
  }
  if (tp.size > 1 && tp.comm == nullptr) {
    return absl::InvalidArgumentError("tensor parallelism needs a communicator");
  }
  if (tp.comm != nullptr) {  // also with size 1: its (identity) collectives then run too
    if (tp.comm->rank() != tp.rank || tp.comm->world_size() != tp.size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "communicator is rank ", tp.comm->rank(), " of ", tp.comm->world_size(),
          ", the decoder shard rank ", tp.rank, " of ", tp.size));
    }
  }
  return std::make_unique<Decoder>(config, std::move(weights), backend, tp);
}

Decoder::Decoder(const ModelConfig& config, DecoderWeights weights, Backend* backend,
                 const TensorParallelContext& tp)
    : config_(config), weights_(std::move(weights)), backend_(backend), tp_(tp) {}

absl::Status Decoder::AllReduce(Tensor* t) const {
  if (tp_.comm == nullptr || t->numel() == 0) return absl::OkStatus();
  comm::Communicator& comm = *tp_.comm;
  const bool host_tensor = t->device() == Device::kCpu;
  if (comm.memory_space() == comm::MemorySpace::kDevice || host_tensor) {
    if (host_tensor && comm.memory_space() == comm::MemorySpace::kDevice) {
      return absl::FailedPreconditionError(absl::StrCat(
          comm.backend_name(), " reduces device memory; backend ", backend_->name(),
          " keeps activations on the host"));
    }
    return comm.AllReduceSum(t->data<float>(), static_cast<size_t>(t->numel()));
  }
  // Host collectives over device activations (sharded GPU math with the socket backend, e.g.
  // on a one-GPU machine): stage through host memory.
  ASSIGN_OR_RETURN(Tensor host, backend_->Download(*t));
  RETURN_IF_ERROR(comm.AllReduceSum(host.data<float>(), static_cast<size_t>(host.numel())));
  ASSIGN_OR_RETURN(Tensor device, backend_->Upload(host));
  return backend_->CopyRows(device, 0, t->dim(0), t, 0);
}

absl::StatusOr<Tensor> Decoder::GatherLogits(const Tensor& local) const {
  if (tp_.comm == nullptr) return local;
  comm::Communicator& comm = *tp_.comm;
  const int64_t rows = local.dim(0), part = local.dim(1), vocab = part * tp_.size;
  const size_t part_bytes = static_cast<size_t>(rows * part) * sizeof(float);
  // All-gather is rank-major ([rank][row][column]); logits rows need [row][rank][column].
  std::vector<float> gathered(static_cast<size_t>(rows * vocab));
  if (comm.memory_space() == comm::MemorySpace::kDevice) {
    if (local.device() == Device::kCpu) {
      return absl::FailedPreconditionError("device communicator with host activations");
    }
    Tensor all = backend_->Empty(DType::kF32, {tp_.size * rows, part});
    RETURN_IF_ERROR(comm.AllGather(local.raw_data(), all.raw_data(), part_bytes));
    ASSIGN_OR_RETURN(Tensor host, backend_->Download(all));
    std::copy(host.data<float>(), host.data<float>() + host.numel(), gathered.data());
  } else {
    ASSIGN_OR_RETURN(Tensor host, backend_->Download(local));
    RETURN_IF_ERROR(comm.AllGather(host.raw_data(), gathered.data(), part_bytes));
  }
  Tensor logits = Tensor::Empty(DType::kF32, {rows, vocab});
  for (int r = 0; r < tp_.size; ++r) {
    for (int64_t i = 0; i < rows; ++i) {
      const float* src = gathered.data() + (r * rows + i) * part;
      std::copy(src, src + part, logits.data<float>() + i * vocab + r * part);
    }
  }
  return backend_->Upload(logits);
}

KvCacheShape Decoder::CacheShape(int num_blocks, int block_size) const {
  KvCacheShape shape;
  shape.num_layers = config_.num_layers;
  shape.num_blocks = num_blocks;
  shape.block_size = block_size;
  shape.num_kv_heads = weights_.shard.num_kv_heads;
  shape.head_dim = config_.kv_channels;
  return shape;
}

absl::Status Decoder::Validate(const DecoderBatch& batch, const PagedKvCache& cache) const {
  const KvCacheShape& cs = cache.shape();
  if (cs.num_layers != config_.num_layers || cs.num_kv_heads != weights_.shard.num_kv_heads ||
      cs.head_dim != config_.kv_channels || cs.block_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV cache shape (layers ", cs.num_layers, ", kv heads ", cs.num_kv_heads, ", head dim ",
        cs.head_dim, ", block size ", cs.block_size, ") does not match the model"));
  }
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    const SequenceChunk& seq = batch.sequences[s];
    auto bad = [s](auto... what) {
      return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": ", what...));
    };
    const size_t n = seq.token_ids.size();
    if (n == 0) return bad("no new tokens");
    if (seq.positions.size() != n) {
      return bad(seq.positions.size(), " positions for ", n, " tokens");
    }
    if (!seq.embedding_rows.empty() && seq.embedding_rows.size() != n) {
      return bad(seq.embedding_rows.size(), " embedding_rows for ", n, " tokens");
    }
    if (seq.num_cached < 0) return bad("negative num_cached");
    for (size_t i = 0; i < n; ++i) {
      if (seq.positions[i] < 0) return bad("negative position at token ", i);
      const bool image_row = !seq.embedding_rows.empty() && seq.embedding_rows[i] >= 0;
      if (image_row) {
        const Tensor& e = seq.embeddings;
        if (!e.defined() || e.ndim() != 2 || e.dim(1) != config_.hidden_size ||
            e.dtype() != DType::kF32) {
          return bad("embedding_rows given but embeddings is not f32 [rows, ",
                     config_.hidden_size, "]");
        }
        if (seq.embedding_rows[i] >= e.dim(0)) {
          return bad("embedding row ", seq.embedding_rows[i], " outside [0, ", e.dim(0), ")");
        }
      } else if (seq.token_ids[i] < 0 || seq.token_ids[i] >= config_.padded_vocab_size) {
        return bad("token id ", seq.token_ids[i], " at ", i, " outside the vocabulary [0, ",
                   config_.padded_vocab_size, ")");
      }
    }
    const int64_t total = static_cast<int64_t>(seq.num_cached) + static_cast<int64_t>(n);
    const int64_t blocks_needed = (total + cs.block_size - 1) / cs.block_size;
    if (static_cast<int64_t>(seq.block_table.size()) < blocks_needed) {
      return bad("block table has ", seq.block_table.size(), " blocks, ", total, " tokens need ",
                 blocks_needed);
    }
    for (int64_t b = 0; b < blocks_needed; ++b) {
      if (seq.block_table[b] < 0 || seq.block_table[b] >= cs.num_blocks) {
        return bad("block id ", seq.block_table[b], " outside the cache's ", cs.num_blocks,
                   " blocks");
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<DecoderOutput> Decoder::Forward(const DecoderBatch& batch,
                                               PagedKvCache* cache) const {
  if (cache == nullptr) return absl::InvalidArgumentError("null KV cache");
  RETURN_IF_ERROR(Validate(batch, *cache));
  Backend& be = *backend_;
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size, head_dim = c.kv_channels;
  const int block_size = cache->shape().block_size;

  // Flatten the batch: token rows, RoPE positions, KV slots, per-sequence attention spans and
  // which rows need logits.
  std::vector<int32_t> ids, positions, slots, logit_rows;
  std::vector<PagedSequence> spans;
  DecoderOutput output;
  output.row_offsets.push_back(0);
  for (const SequenceChunk& seq : batch.sequences) {
    const int64_t begin = static_cast<int64_t>(ids.size()), n = seq.token_ids.size();
    for (int64_t i = 0; i < n; ++i) {
      const bool image_row = !seq.embedding_rows.empty() && seq.embedding_rows[i] >= 0;
      ids.push_back(image_row ? 0 : seq.token_ids[i]);  // overwritten below
      positions.push_back(seq.positions[i]);
      const int64_t t = seq.num_cached + i;
      slots.push_back(seq.block_table[t / block_size] * block_size + t % block_size);
    }
    spans.push_back({begin, n, seq.num_cached, seq.block_table});
    if (seq.logits == SequenceChunk::Logits::kAll) {
      for (int64_t i = 0; i < n; ++i) logit_rows.push_back(static_cast<int32_t>(begin + i));
    } else if (seq.logits == SequenceChunk::Logits::kLast) {
      logit_rows.push_back(static_cast<int32_t>(begin + n - 1));
    }
    output.row_offsets.push_back(static_cast<int32_t>(logit_rows.size()));
  }
  const int64_t total = ids.size();

  // Embeddings: word embeddings, then image rows copied over their placeholders.
  const TensorParallelShard& shard = weights_.shard;
  if (shard.size > 1) {
    // Vocab-parallel: ids owned by other ranks (and image rows) gather the zero row.
    for (int32_t& id : ids) {
      const int64_t local = id - shard.first_vocab;
      id = static_cast<int32_t>(local >= 0 && local < shard.vocab ? local : shard.vocab);
    }
    for (size_t s = 0; s < batch.sequences.size(); ++s) {
      const SequenceChunk& seq = batch.sequences[s];
      for (size_t i = 0; i < seq.embedding_rows.size(); ++i) {
        if (seq.embedding_rows[i] >= 0) {
          ids[spans[s].query_begin + i] = static_cast<int32_t>(shard.vocab);
        }
      }
    }
  }
  Tensor x = be.Empty(DType::kF32, {total, hidden});
  RETURN_IF_ERROR(be.GatherRows(weights_.word_embeddings, ids, &x));
  RETURN_IF_ERROR(AllReduce(&x));
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    const SequenceChunk& seq = batch.sequences[s];
    if (seq.embedding_rows.empty()) continue;
    Tensor image;
    for (size_t i = 0; i < seq.embedding_rows.size(); ++i) {
      if (seq.embedding_rows[i] < 0) continue;
      if (!image.defined()) {
        ASSIGN_OR_RETURN(image, be.Upload(seq.embeddings));
      }
      // Copy the whole run of consecutive rows at once.
      size_t j = i + 1;
      while (j < seq.embedding_rows.size() &&
             seq.embedding_rows[j] == seq.embedding_rows[j - 1] + 1) {
        ++j;
      }
      RETURN_IF_ERROR(be.CopyRows(image, seq.embedding_rows[i], j - i, &x, spans[s].query_begin + i));
      i = j - 1;
    }
  }

  const float eps = static_cast<float>(c.layernorm_epsilon);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  Tensor h = be.Empty(DType::kF32, {total, hidden});
  // Per-rank widths (the whole model when unsharded).
  const int num_heads = shard.num_heads;
  const int64_t q_size = num_heads * head_dim, kv_size = shard.num_kv_heads * head_dim;
  Tensor qkv = be.Empty(DType::kF32, {total, q_size + 2 * kv_size});
  Tensor q = be.Empty(DType::kF32, {total, q_size});
  Tensor k = be.Empty(DType::kF32, {total, kv_size});
  Tensor v = be.Empty(DType::kF32, {total, kv_size});
  Tensor attn = be.Empty(DType::kF32, {total, q_size});
  Tensor out = be.Empty(DType::kF32, {total, hidden});
  Tensor up = be.Empty(DType::kF32, {total, 2 * shard.ffn});
  Tensor act = be.Empty(DType::kF32, {total, shard.ffn});
  auto bias = [](const Tensor& t) { return t.defined() ? &t : nullptr; };
  for (int l = 0; l < c.num_layers; ++l) {
    const DecoderLayerWeights& w = weights_.layers[l];
    // Attention block (pre-norm).
    RETURN_IF_ERROR(be.RmsNorm(x, w.input_norm, eps, &h));
    RETURN_IF_ERROR(be.Linear(h, w.qkv_weight, bias(w.qkv_bias), &qkv));
    Tensor* parts[] = {&q, &k, &v};
    RETURN_IF_ERROR(be.SplitColumns(qkv, parts));
    RETURN_IF_ERROR(be.ApplyRope(&q, positions, head_dim, c.rotary_dim(), c.rope_base()));
    RETURN_IF_ERROR(be.ApplyRope(&k, positions, head_dim, c.rotary_dim(), c.rope_base()));
    RETURN_IF_ERROR(be.WriteKvCache(k, v, slots, l, cache));
    RETURN_IF_ERROR(be.PagedAttention(q, *cache, l, spans, num_heads, scale, &attn));
    RETURN_IF_ERROR(be.Linear(attn, w.dense_weight, bias(w.dense_bias), &out));
    RETURN_IF_ERROR(AllReduce(&out));  // row-parallel: partial sums over the local heads
    RETURN_IF_ERROR(be.AddInPlace(out, &x));
    // MLP block: silu(a) * b over the two halves of dense_h_to_4h.
    RETURN_IF_ERROR(be.RmsNorm(x, w.post_norm, eps, &h));
    RETURN_IF_ERROR(be.Linear(h, w.h_to_4h_weight, bias(w.h_to_4h_bias), &up));
    RETURN_IF_ERROR(be.SiluAndMul(up, &act));
    RETURN_IF_ERROR(be.Linear(act, w.four_h_to_h_weight, bias(w.four_h_to_h_bias), &out));
    RETURN_IF_ERROR(AllReduce(&out));  // row-parallel: partial sums over the local FFN slice
    RETURN_IF_ERROR(be.AddInPlace(out, &x));
  }

  // Final norm and output layer only on the rows that need logits.
  const int64_t rows = logit_rows.size();
  Tensor selected = be.Empty(DType::kF32, {rows, hidden});
  RETURN_IF_ERROR(be.GatherRows(x, logit_rows, &selected));
  Tensor normed = be.Empty(DType::kF32, {rows, hidden});
  RETURN_IF_ERROR(be.RmsNorm(selected, weights_.final_norm, eps, &normed));
  Tensor logits = be.Empty(DType::kF32, {rows, shard.vocab});
  RETURN_IF_ERROR(be.Linear(normed, weights_.output_layer, nullptr, &logits));
  if (rows == 0) {  // same on every rank: nothing to gather
    output.logits = be.Empty(DType::kF32, {0, c.padded_vocab_size});
    return output;
  }
  ASSIGN_OR_RETURN(output.logits, GatherLogits(logits));
  return output;
}

}  // namespace glm4v
