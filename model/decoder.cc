#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "common/status_macros.h"
#include "model/context_parallel_attention.h"

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
                                                       const TensorParallelContext& tp,
                                                       const WeightLoadOptions& weight_options) {
  RETURN_IF_ERROR(CheckConfig(config));
  ASSIGN_OR_RETURN(TensorParallelShard shard, PlanShard(config, tp.rank, tp.size));
  ASSIGN_OR_RETURN(DecoderWeights weights,
                   LoadDecoderWeights(checkpoint, config, backend, shard, weight_options));
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
  RETURN_IF_ERROR(CheckDecodeContextParallel(config, tp.size, tp.decode_context_parallel));
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
    : config_(config),
      weights_(std::move(weights)),
      backend_(backend),
      tp_(tp),
      share_{std::max(1, tp.decode_context_parallel),
             tp.rank % std::max(1, tp.decode_context_parallel)} {}

absl::Status Decoder::AllReduce(Tensor* t) const {
  if (tp_.comm == nullptr || t->numel() == 0) return absl::OkStatus();
  comm::Communicator& comm = *tp_.comm;
  const bool host_tensor = t->device() == Device::kCpu;
  const size_t n = static_cast<size_t>(t->numel());
  if (comm.memory_space() == comm::MemorySpace::kDevice || host_tensor) {
    if (host_tensor && comm.memory_space() == comm::MemorySpace::kDevice) {
      return absl::FailedPreconditionError(absl::StrCat(
          comm.backend_name(), " reduces device memory; backend ", backend_->name(),
          " keeps activations on the host"));
    }
    if (t->dtype() == DType::kBF16) {
      return comm.AllReduceSumBF16(static_cast<uint16_t*>(t->raw_data()), n);
    }
    return comm.AllReduceSum(t->data<float>(), n);
  }
  // Host collectives over device activations (sharded GPU math with the socket backend, e.g.
  // on a one-GPU machine): stage through host memory (Download gives f32; the sum is rounded
  // to the activation dtype once, identically on every rank).
  ASSIGN_OR_RETURN(Tensor host, backend_->Download(*t));
  RETURN_IF_ERROR(comm.AllReduceSum(host.data<float>(), n));
  ASSIGN_OR_RETURN(Tensor device, backend_->Upload(host, t->dtype()));
  return backend_->CopyRows(device, 0, t->dim(0), t, 0);
}

absl::Status Decoder::GatherLogits(const Tensor& local, Tensor* logits) const {
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
  Tensor full = Tensor::Empty(DType::kF32, {rows, vocab});
  for (int r = 0; r < tp_.size; ++r) {
    for (int64_t i = 0; i < rows; ++i) {
      const float* src = gathered.data() + (r * rows + i) * part;
      std::copy(src, src + part, full.data<float>() + i * vocab + r * part);
    }
  }
  ASSIGN_OR_RETURN(Tensor device, backend_->Upload(full));
  return backend_->CopyRows(device, 0, rows, logits, 0);
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
  if (cache.device() != backend_->device() ||
      (cache.dtype() != DType::kF32 && cache.dtype() != DType::kBF16)) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache of ", std::string(DTypeName(cache.dtype())), " is not an f32/bf16 cache on ",
                     backend_->name(), "'s device"));
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
            (e.dtype() != DType::kF32 && e.dtype() != DType::kBF16) ||
            (e.device() != Device::kCpu && e.device() != backend_->device())) {
          return bad("embedding_rows given but embeddings is not an f32/bf16 [rows, ",
                     config_.hidden_size, "] tensor on the host or the backend's device");
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
    const int64_t blocks_needed =
        (share_.LocalTokens(total) + cs.block_size - 1) / cs.block_size;
    if (static_cast<int64_t>(seq.block_table.size()) < blocks_needed) {
      return bad("block table has ", seq.block_table.size(), " blocks, ", total, " tokens need ",
                 blocks_needed, " (blocks of ", cs.block_size * share_.size, " tokens)");
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

absl::StatusOr<DecoderPlan> Decoder::Plan(const DecoderBatch& batch,
                                          const PagedKvCache& cache) const {
  RETURN_IF_ERROR(Validate(batch, cache));
  const int block_size = cache.shape().block_size;
  DecoderPlan plan;
  std::vector<PagedSequence> spans;
  plan.row_offsets.push_back(0);
  for (const SequenceChunk& seq : batch.sequences) {
    const int64_t begin = plan.num_tokens(), n = seq.token_ids.size();
    for (int64_t i = 0; i < n; ++i) {
      const bool image_row = !seq.embedding_rows.empty() && seq.embedding_rows[i] >= 0;
      plan.ids.push_back(image_row ? 0 : seq.token_ids[i]);  // overwritten by the image row
      plan.positions.push_back(seq.positions[i]);
      // With DCP only the tokens of this rank's share are written (the j-th of them at local
      // slot j); the other ranks of the KV group write the rest.
      const int64_t t = seq.num_cached + i;
      if (t % share_.size != share_.rank) {
        plan.slots.push_back(-1);
        continue;
      }
      const int64_t j = t / share_.size;
      plan.slots.push_back(seq.block_table[j / block_size] * block_size + j % block_size);
    }
    const int64_t blocks_needed =
        (share_.LocalTokens(seq.num_cached + n) + block_size - 1) / block_size;
    spans.push_back({begin, n, seq.num_cached,
                     absl::MakeConstSpan(seq.block_table).subspan(0, blocks_needed)});
    if (seq.logits == SequenceChunk::Logits::kAll) {
      for (int64_t i = 0; i < n; ++i) plan.logit_rows.push_back(static_cast<int32_t>(begin + i));
    } else if (seq.logits == SequenceChunk::Logits::kLast) {
      plan.logit_rows.push_back(static_cast<int32_t>(begin + n - 1));
    }
    plan.row_offsets.push_back(static_cast<int32_t>(plan.logit_rows.size()));
    // Image rows: each run of consecutive embedding rows is one copy.
    int source = -1;
    for (size_t i = 0; i < seq.embedding_rows.size(); ++i) {
      if (seq.embedding_rows[i] < 0) continue;
      if (source < 0) {
        source = static_cast<int>(plan.image_sources.size());
        plan.image_sources.push_back(seq.embeddings);
      }
      size_t j = i + 1;
      while (j < seq.embedding_rows.size() &&
             seq.embedding_rows[j] == seq.embedding_rows[j - 1] + 1) {
        ++j;
      }
      plan.image_rows.push_back({source, seq.embedding_rows[i], static_cast<int64_t>(j - i),
                                 begin + static_cast<int64_t>(i)});
      i = j - 1;
    }
  }
  plan.attention = PagedBatchHost::From(spans, share_);

  const TensorParallelShard& shard = weights_.shard;
  if (shard.size > 1) {
    // Vocab-parallel: ids owned by other ranks (and image rows) gather the zero row.
    for (int32_t& id : plan.ids) {
      const int64_t local = id - shard.first_vocab;
      id = static_cast<int32_t>(local >= 0 && local < shard.vocab ? local : shard.vocab);
    }
    for (const DecoderPlan::ImageRows& r : plan.image_rows) {
      for (int64_t i = 0; i < r.num_rows; ++i) {
        plan.ids[r.dst_row + i] = static_cast<int32_t>(shard.vocab);
      }
    }
  }
  return plan;
}

absl::StatusOr<DecoderStepInputs> Decoder::UploadPlan(const DecoderPlan& plan) const {
  Backend& be = *backend_;
  DecoderStepInputs in;
  ASSIGN_OR_RETURN(in.ids, be.UploadIndices(plan.ids));
  ASSIGN_OR_RETURN(in.positions, be.UploadIndices(plan.positions));
  ASSIGN_OR_RETURN(in.slots, be.UploadIndices(plan.slots));
  ASSIGN_OR_RETURN(in.logit_rows, be.UploadIndices(plan.logit_rows));
  ASSIGN_OR_RETURN(in.attention, be.UploadPagedBatch(plan.attention));
  for (const Tensor& source : plan.image_sources) {
    if (source.device() == be.device() && source.device() != Device::kCpu) {
      in.image_sources.push_back(source);  // already on the device
    } else {
      ASSIGN_OR_RETURN(Tensor device,
                       be.Upload(source.is_contiguous() ? source : source.Clone(),
                                 be.activation_dtype()));
      in.image_sources.push_back(std::move(device));
    }
  }
  in.image_rows = plan.image_rows;
  return in;
}

absl::Status Decoder::Run(const DecoderStepInputs& step, PagedKvCache* cache,
                          Tensor* logits) const {
  Backend& be = *backend_;
  const ModelConfig& c = config_;
  const DType act = be.activation_dtype();
  const int64_t hidden = c.hidden_size, head_dim = c.kv_channels;
  const int64_t total = step.ids.dim(0);
  const TensorParallelShard& shard = weights_.shard;
  // Without collectives the row-parallel outputs are complete: the residual add fuses into
  // their GEMM. Sharded, the partial sums are all-reduced first, then added.
  const bool fuse_residual = tp_.comm == nullptr;

  // Embeddings: word embeddings, then image rows copied over their placeholders.
  Tensor x = be.Empty(act, {total, hidden});
  RETURN_IF_ERROR(be.GatherRows(weights_.word_embeddings, step.ids, &x));
  RETURN_IF_ERROR(AllReduce(&x));
  for (const DecoderPlan::ImageRows& r : step.image_rows) {
    RETURN_IF_ERROR(
        be.CopyRows(step.image_sources[r.source], r.src_row, r.num_rows, &x, r.dst_row));
  }

  const float eps = static_cast<float>(c.layernorm_epsilon);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  Tensor h = be.Empty(act, {total, hidden});
  // Per-rank widths (the whole model when unsharded).
  const int num_heads = shard.num_heads;
  const int64_t q_size = num_heads * head_dim, kv_size = shard.num_kv_heads * head_dim;
  Tensor qkv = be.Empty(act, {total, q_size + 2 * kv_size});
  Tensor q = be.Empty(act, {total, q_size});
  Tensor k = be.Empty(act, {total, kv_size});
  Tensor v = be.Empty(act, {total, kv_size});
  Tensor attn = be.Empty(act, {total, q_size});
  Tensor out = fuse_residual ? Tensor() : be.Empty(act, {total, hidden});
  Tensor up = be.Empty(act, {total, 2 * shard.ffn});
  Tensor ffn_act = be.Empty(act, {total, shard.ffn});
  auto bias = [](const Tensor& t) { return t.defined() ? &t : nullptr; };
  // x += row-parallel projection of `in` (all-reduced over the group when sharded).
  auto residual = [&](const Tensor& in, const LinearWeight& weight,
                      const Tensor& b) -> absl::Status {
    if (fuse_residual) return be.Linear(in, weight, bias(b), &x, /*accumulate=*/true);
    RETURN_IF_ERROR(be.Linear(in, weight, bias(b), &out));
    RETURN_IF_ERROR(AllReduce(&out));  // partial sums over the local heads / FFN slice
    return be.AddInPlace(out, &x);
  };
  for (int l = 0; l < c.num_layers; ++l) {
    const DecoderLayerWeights& w = weights_.layers[l];
    // Attention block (pre-norm).
    RETURN_IF_ERROR(be.RmsNorm(x, w.input_norm, eps, &h));
    RETURN_IF_ERROR(be.Linear(h, w.qkv_weight, bias(w.qkv_bias), &qkv));
    Tensor* parts[] = {&q, &k, &v};
    RETURN_IF_ERROR(be.SplitColumns(qkv, parts));
    RETURN_IF_ERROR(be.ApplyRope(&q, step.positions, head_dim, c.rotary_dim(), c.rope_base()));
    RETURN_IF_ERROR(be.ApplyRope(&k, step.positions, head_dim, c.rotary_dim(), c.rope_base()));
    RETURN_IF_ERROR(be.WriteKvCache(k, v, step.slots, l, cache));
    if (share_.size > 1) {
      RETURN_IF_ERROR(ContextParallelAttention({backend_, tp_.comm, share_, num_heads, scale}, q,
                                               *cache, l, step.attention, &attn));
    } else {
      RETURN_IF_ERROR(
          be.PagedAttention(q, *cache, l, step.attention, num_heads, scale, &attn));
    }
    RETURN_IF_ERROR(residual(attn, w.dense_weight, w.dense_bias));
    // MLP block: silu(a) * b over the two halves of dense_h_to_4h.
    RETURN_IF_ERROR(be.RmsNorm(x, w.post_norm, eps, &h));
    RETURN_IF_ERROR(be.Linear(h, w.h_to_4h_weight, bias(w.h_to_4h_bias), &up));
    RETURN_IF_ERROR(be.SiluAndMul(up, &ffn_act));
    RETURN_IF_ERROR(residual(ffn_act, w.four_h_to_h_weight, w.four_h_to_h_bias));
  }

  // Final norm and output layer only on the rows that need logits.
  const int64_t rows = step.logit_rows.dim(0);
  if (rows == 0) return absl::OkStatus();  // same on every rank: nothing to gather
  Tensor selected = be.Empty(act, {rows, hidden});
  RETURN_IF_ERROR(be.GatherRows(x, step.logit_rows, &selected));
  Tensor normed = be.Empty(act, {rows, hidden});
  RETURN_IF_ERROR(be.RmsNorm(selected, weights_.final_norm, eps, &normed));
  if (tp_.comm == nullptr) return be.Linear(normed, weights_.output_layer, nullptr, logits);
  Tensor local = be.Empty(DType::kF32, {rows, shard.vocab});
  RETURN_IF_ERROR(be.Linear(normed, weights_.output_layer, nullptr, &local));
  return GatherLogits(local, logits);
}

absl::StatusOr<DecoderOutput> Decoder::Forward(const DecoderBatch& batch,
                                               PagedKvCache* cache) const {
  if (cache == nullptr) return absl::InvalidArgumentError("null KV cache");
  ASSIGN_OR_RETURN(DecoderPlan plan, Plan(batch, *cache));
  return RunPlan(std::move(plan), cache);
}

absl::StatusOr<DecoderOutput> Decoder::RunPlan(DecoderPlan plan, PagedKvCache* cache) const {
  ASSIGN_OR_RETURN(DecoderStepInputs step, UploadPlan(plan));
  DecoderOutput output;
  output.row_offsets = std::move(plan.row_offsets);
  output.logits = backend_->Empty(DType::kF32, {plan.num_logit_rows(), config_.padded_vocab_size});
  RETURN_IF_ERROR(Run(step, cache, &output.logits));
  return output;
}

}  // namespace glm4v
