#include "model/context_parallel_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace glm4v {
namespace {

// All-gathers `mine` (the same length on every rank) into `all` ([world][mine.size()]) through
// host memory, staging on the device for a device-memory communicator (NCCL).
absl::Status AllGatherFloats(comm::Communicator& comm, Backend& be, const std::vector<float>& mine,
                             std::vector<float>* all) {
  const size_t n = mine.size();
  all->resize(n * static_cast<size_t>(comm.world_size()));
  if (comm.memory_space() == comm::MemorySpace::kHost) {
    return comm.AllGather(mine.data(), all->data(), n * sizeof(float));
  }
  if (be.device() == Device::kCpu) {
    return absl::FailedPreconditionError(absl::StrCat(
        comm.backend_name(), " gathers device memory; backend ", be.name(), " has none"));
  }
  Tensor host = Tensor::Empty(DType::kF32, {static_cast<int64_t>(n)});
  std::copy(mine.begin(), mine.end(), host.data<float>());
  ASSIGN_OR_RETURN(Tensor device, be.Upload(host));
  Tensor gathered = be.Empty(DType::kF32, {static_cast<int64_t>(all->size())});
  RETURN_IF_ERROR(comm.AllGather(device.raw_data(), gathered.raw_data(), n * sizeof(float)));
  ASSIGN_OR_RETURN(Tensor back, be.Download(gathered));
  std::copy(back.data<float>(), back.data<float>() + back.numel(), all->data());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> ToHostFloats(Backend& be, const Tensor& t) {
  ASSIGN_OR_RETURN(Tensor host, be.Download(t));
  const Tensor f32 = host.dtype() == DType::kF32 ? host : host.ToF32();
  return std::vector<float>(f32.data<float>(), f32.data<float>() + f32.numel());
}

}  // namespace

void MergeAttentionPartials(absl::Span<const float* const> partials,
                            absl::Span<const float* const> lse, int64_t rows, int heads,
                            int head_dim, int first_head, int out_heads, float* out) {
  const size_t dcp = partials.size();
  std::vector<float> weight(dcp);
  for (int64_t t = 0; t < rows; ++t) {
    for (int hh = 0; hh < out_heads; ++hh) {
      const int64_t head = first_head + hh;
      float max_lse = -std::numeric_limits<float>::infinity();
      for (size_t p = 0; p < dcp; ++p) max_lse = std::max(max_lse, lse[p][t * heads + head]);
      float* dst = out + (t * out_heads + hh) * head_dim;
      std::fill(dst, dst + head_dim, 0.0f);
      if (max_lse == -std::numeric_limits<float>::infinity()) continue;
      double total = 0.0;
      for (size_t p = 0; p < dcp; ++p) {
        weight[p] = std::exp(lse[p][t * heads + head] - max_lse);  // 0 for an empty partial
        total += weight[p];
      }
      for (size_t p = 0; p < dcp; ++p) {
        const float w = static_cast<float>(weight[p] / total);
        if (w == 0.0f) continue;
        const float* src = partials[p] + (t * heads + head) * head_dim;
        for (int d = 0; d < head_dim; ++d) dst[d] += w * src[d];
      }
    }
  }
}

absl::Status ContextParallelAttention(const ContextParallelAttentionArgs& args, const Tensor& q,
                                      const PagedKvCache& cache, int layer,
                                      const PagedBatch& batch, Tensor* out) {
  Backend& be = *args.backend;
  comm::Communicator& comm = *args.comm;
  const int dcp = args.share.size, h = args.num_heads;
  if (!(batch.share == args.share) || dcp < 2 || comm.world_size() % dcp != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "context-parallel attention: share ", args.share.rank, "/", dcp, " of a group of ",
        comm.world_size(), " does not match the batch's ", batch.share.rank, "/",
        batch.share.size));
  }
  const int64_t rows = q.dim(0);
  const int head_dim = static_cast<int>(q.dim(1) / h);
  const int64_t row_width = static_cast<int64_t>(h) * head_dim;
  const int group_heads = dcp * h;                     // the KV group's query heads
  const int first_rank = comm.rank() - args.share.rank;  // the group's first TP rank

  // 1. The group's queries: [rows][dcp * h * head_dim], heads in rank order (ranks hold
  //    consecutive heads, so this is the group's head order).
  ASSIGN_OR_RETURN(std::vector<float> mine, ToHostFloats(be, q));
  std::vector<float> all;
  RETURN_IF_ERROR(AllGatherFloats(comm, be, mine, &all));
  Tensor q_group = Tensor::Empty(DType::kF32, {rows, group_heads * head_dim});
  for (int p = 0; p < dcp; ++p) {
    const float* src = all.data() + static_cast<size_t>(first_rank + p) * mine.size();
    for (int64_t t = 0; t < rows; ++t) {
      std::copy(src + t * row_width, src + (t + 1) * row_width,
                q_group.data<float>() + (t * dcp + p) * row_width);
    }
  }

  // 2. Attention of every group head over this rank's share.
  ASSIGN_OR_RETURN(Tensor q_device, be.Upload(q_group, q.dtype()));
  Tensor partial = be.Empty(q.dtype(), {rows, group_heads * head_dim});
  Tensor lse = be.Empty(DType::kF32, {rows, group_heads});
  RETURN_IF_ERROR(be.PagedAttention(q_device, cache, layer, batch, group_heads, args.scale,
                                    &partial, &lse));

  // 3. Every rank's partials and log-sum-exps.
  ASSIGN_OR_RETURN(std::vector<float> message, ToHostFloats(be, partial));
  const size_t partial_floats = message.size();
  ASSIGN_OR_RETURN(std::vector<float> lse_host, ToHostFloats(be, lse));
  message.insert(message.end(), lse_host.begin(), lse_host.end());
  RETURN_IF_ERROR(AllGatherFloats(comm, be, message, &all));

  // 4. Merge this rank's heads.
  std::vector<const float*> partials(dcp), lses(dcp);
  for (int p = 0; p < dcp; ++p) {
    const float* base = all.data() + static_cast<size_t>(first_rank + p) * message.size();
    partials[p] = base;
    lses[p] = base + partial_floats;
  }
  Tensor merged = Tensor::Empty(DType::kF32, {rows, row_width});
  MergeAttentionPartials(partials, lses, rows, group_heads, head_dim, args.share.rank * h, h,
                         merged.data<float>());
  ASSIGN_OR_RETURN(Tensor merged_device, be.Upload(merged, out->dtype()));
  return be.CopyRows(merged_device, 0, rows, out, 0);
}

}  // namespace glm4v
