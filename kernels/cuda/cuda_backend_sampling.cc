// CudaBackend::DoSampleRows: a step's sampling on the device. The additive adjustments
// (logit_bias, presence / frequency penalties), the repetition penalty and suppression are
// applied to the logits in place, in that order, each row is drawn (argmax for greedy rows,
// else temperature / top-k / top-p with the Gumbel-max draw of sampling.h keyed by the row's
// (seed, step)), and only the ids and the asked logprobs are copied back.
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/counter_rng.h"
#include "common/status_macros.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_backend_internal.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/sampling.h"

namespace glm4v::cuda {
absl::StatusOr<SampledRows> CudaBackend::DoSampleRows(Tensor* logits,
                                                      const SamplingBatchHost& batch) {
  RETURN_IF_ERROR(CheckNotInStep("SampleRows"));
  StreamUse use(this);
  const int64_t rows = logits->dim(0);
  const int64_t vocab = logits->dim(1);

  std::vector<SamplingParams> params(rows);
  std::vector<float> penalties(rows), divisors(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const RowSamplingParams& in = batch.rows[r];
    const bool greedy = !(in.temperature > 0.0f) || in.top_k == 1;
    params[r].temperature = greedy ? 0.0f : in.temperature;
    params[r].top_k = in.top_k;
    params[r].top_p = in.top_p;
    // The draw's key: the value the host sampler draws its uniform from, so keys of
    // different steps (or seeds) never collide.
    params[r].seed = CounterRandom64(in.seed, in.step);
    penalties[r] = in.repetition_penalty;
    // Logprobs are of the processed logits: temperature-scaled unless greedy.
    divisors[r] = greedy ? 1.0f : in.temperature;
  }
  auto upload = [&](const void* host, size_t bytes, DType dtype,
                    int64_t elements) -> absl::StatusOr<Tensor> {
    ASSIGN_OR_RETURN(Tensor t, Allocate(dtype, {std::max<int64_t>(elements, 1)}));
    if (bytes > 0) RETURN_IF_ERROR(CopyHostToDevice(t.raw_data(), host, bytes));
    return t;
  };
  // SamplingParams travel as bytes (a u8 tensor of the struct array).
  ASSIGN_OR_RETURN(Tensor d_params, upload(params.data(), rows * sizeof(SamplingParams),
                                           DType::kU8, rows * sizeof(SamplingParams)));
  ASSIGN_OR_RETURN(Tensor d_ids, Allocate(DType::kI32, {rows}));

  if (!batch.adjust_ids.empty()) {
    ASSIGN_OR_RETURN(Tensor d_adj_off, upload(batch.adjust_offsets.data(),
                                              (rows + 1) * sizeof(int32_t), DType::kI32, rows + 1));
    ASSIGN_OR_RETURN(Tensor d_adj_ids,
                     upload(batch.adjust_ids.data(), batch.adjust_ids.size() * sizeof(int32_t),
                            DType::kI32, batch.adjust_ids.size()));
    ASSIGN_OR_RETURN(Tensor d_adj_values,
                     upload(batch.adjust_values.data(), batch.adjust_values.size() * sizeof(float),
                            DType::kF32, batch.adjust_values.size()));
    CUDA_RETURN_IF_ERROR(AddToRows(logits->data<float>(), rows, vocab,
                                   d_adj_off.data<int32_t>(), d_adj_ids.data<int32_t>(),
                                   d_adj_values.data<float>(), stream_));
  }
  const bool any_penalty = !batch.penalty_ids.empty() || !batch.suppress_ids.empty();
  if (any_penalty) {
    ASSIGN_OR_RETURN(Tensor d_pen, upload(penalties.data(), rows * sizeof(float), DType::kF32, rows));
    ASSIGN_OR_RETURN(Tensor d_pen_off, upload(batch.penalty_offsets.data(),
                                              (rows + 1) * sizeof(int32_t), DType::kI32, rows + 1));
    ASSIGN_OR_RETURN(Tensor d_pen_ids,
                     upload(batch.penalty_ids.data(), batch.penalty_ids.size() * sizeof(int32_t),
                            DType::kI32, batch.penalty_ids.size()));
    ASSIGN_OR_RETURN(Tensor d_sup_off, upload(batch.suppress_offsets.data(),
                                              (rows + 1) * sizeof(int32_t), DType::kI32, rows + 1));
    ASSIGN_OR_RETURN(Tensor d_sup_ids,
                     upload(batch.suppress_ids.data(), batch.suppress_ids.size() * sizeof(int32_t),
                            DType::kI32, batch.suppress_ids.size()));
    CUDA_RETURN_IF_ERROR(ApplyPenaltiesRows(
        logits->data<float>(), rows, vocab, d_pen.data<float>(), d_pen_off.data<int32_t>(),
        d_pen_ids.data<int32_t>(), d_sup_off.data<int32_t>(), d_sup_ids.data<int32_t>(), stream_));
  }
  // (qualified: Backend::SampleRows would hide the kernel)
  CUDA_RETURN_IF_ERROR(::glm4v::cuda::SampleRows<float>(logits->data<float>(), rows, vocab,
                                         reinterpret_cast<const SamplingParams*>(d_params.raw_data()),
                                         d_ids.data<int32_t>(), stream_));

  SampledRows out;
  out.token_ids.resize(rows);
  out.logprobs.assign(rows, 0.0f);
  out.top_count = batch.max_top_logprobs();
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out.token_ids.data(), d_ids.raw_data(),
                                       rows * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  if (batch.any_logprobs()) {
    const int top_n = out.top_count;
    ASSIGN_OR_RETURN(Tensor d_div, upload(divisors.data(), rows * sizeof(float), DType::kF32, rows));
    ASSIGN_OR_RETURN(Tensor d_lp, Allocate(DType::kF32, {rows}));
    ASSIGN_OR_RETURN(Tensor d_top_ids, Allocate(DType::kI32, {std::max<int64_t>(rows * top_n, 1)}));
    ASSIGN_OR_RETURN(Tensor d_top_lp, Allocate(DType::kF32, {std::max<int64_t>(rows * top_n, 1)}));
    CUDA_RETURN_IF_ERROR(LogprobRows(logits->data<float>(), rows, vocab, d_div.data<float>(),
                                     d_ids.data<int32_t>(), top_n, d_lp.data<float>(),
                                     d_top_ids.data<int32_t>(), d_top_lp.data<float>(), stream_));
    out.top_ids.resize(rows * top_n);
    out.top_logprobs.resize(rows * top_n);
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out.logprobs.data(), d_lp.raw_data(), rows * sizeof(float),
                                         cudaMemcpyDeviceToHost, stream_));
    if (top_n > 0) {
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out.top_ids.data(), d_top_ids.raw_data(),
                                           rows * top_n * sizeof(int32_t),
                                           cudaMemcpyDeviceToHost, stream_));
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out.top_logprobs.data(), d_top_lp.raw_data(),
                                           rows * top_n * sizeof(float), cudaMemcpyDeviceToHost,
                                           stream_));
    }
  }
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  // Rows that asked for fewer alternatives (or none) keep only theirs.
  if (batch.any_logprobs()) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int k = batch.rows[r].top_logprobs; k < out.top_count; ++k) {
        out.top_ids[r * out.top_count + k] = -1;
      }
    }
  }
  return out;
}

}  // namespace glm4v::cuda
