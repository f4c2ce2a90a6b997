#include "kernels/cuda/gemm.h"

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_check.h"

namespace glm4v::cuda {
namespace {

absl::StatusOr<cudaDataType_t> CudaType(DType t) {
  switch (t) {
    case DType::kBF16:
      return CUDA_R_16BF;
    case DType::kF32:
      return CUDA_R_32F;
    case DType::kF16:
      return CUDA_R_16F;
    default:
      return absl::InvalidArgumentError(absl::StrCat("GEMM dtype ", std::string(DTypeName(t))));
  }
}

void DestroyPlan(GemmRunner* /*unused*/, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a,
                 cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c) {
  if (a) cublasLtMatrixLayoutDestroy(a);
  if (b) cublasLtMatrixLayoutDestroy(b);
  if (c) cublasLtMatrixLayoutDestroy(c);
  if (op) cublasLtMatmulDescDestroy(op);
}

// The largest power of two (<= 256) dividing the address: cuBLASLt's alignment preference.
uint32_t Alignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && a % align != 0) align /= 2;
  return align;
}

}  // namespace

GemmRunner::~GemmRunner() {
  absl::MutexLock lock(&mu_);
  for (auto& [key, plan] : plans_) DestroyPlan(this, plan.op, plan.a, plan.b, plan.c);
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

absl::Status GemmRunner::Init(size_t workspace_bytes) {
  if (handle_ != nullptr) return absl::OkStatus();
  CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&handle_));
  CUDA_RETURN_IF_ERROR(cudaMalloc(&workspace_, workspace_bytes));
  workspace_bytes_ = workspace_bytes;
  return absl::OkStatus();
}

size_t GemmRunner::cached_plans() const {
  absl::MutexLock lock(&mu_);
  return plans_.size();
}

// cuBLASLt is column-major. A row-major y[m, n] is a column-major y^T[n, m], and
// y^T = w[n, k] (row-major, i.e. column-major k x n, transposed) * x^T (column-major k x m).
// So A = w with op T, B = x with op N, and the bias (one value per row of y^T) is per n.
absl::Status GemmRunner::MakePlan(const Key& key, Plan* plan) {
  auto in = key.fp8 ? absl::StatusOr<cudaDataType_t>(CUDA_R_8F_E4M3) : CudaType(key.in_type);
  auto out = CudaType(key.out_type);
  if (!in.ok()) return in.status();
  if (!out.ok()) return out.status();
  // fp32 inputs use full fp32 math (the f32 interface path is compared against fp32 references).
  const cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&plan->op, compute, CUDA_R_32F));
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA,
                                                        &trans_a, sizeof(trans_a)));
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB,
                                                        &trans_b, sizeof(trans_b)));
  if (key.fp8) {
    // Per-channel weight scales on cuBLASLt's A (M = n rows of y^T), per-token activation
    // scales on B (N = m): both outer vectors of f32.
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan->op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof(mode)));
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan->op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof(mode)));
  }
  const cublasLtEpilogue_t epilogue = key.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                        &epilogue, sizeof(epilogue)));
  if (key.bias) {
    const cudaDataType_t bias_type = *out;
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
  }
  CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&plan->a, *in, key.k, key.n, key.k));
  CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&plan->b, *in, key.k, key.m, key.k));
  CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&plan->c, *out, key.n, key.m, key.ldy));

  cublasLtMatmulPreference_t pref;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&pref));
  absl::Status status = absl::OkStatus();
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_, sizeof(workspace_bytes_));
  // cuBLASLt's A is w, B is x, C and D are y.
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_w},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_x},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_y},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_y},
  };
  for (const auto& [attr, bytes] : alignments) {
    if (st == CUBLAS_STATUS_SUCCESS) {
      st = cublasLtMatmulPreferenceSetAttribute(pref, attr, &bytes, sizeof(bytes));
    }
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(handle_, plan->op, plan->a, plan->b, plan->c, plan->c,
                                        pref, 1, &result, &found);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  CUBLAS_RETURN_IF_ERROR(st);
  if (found == 0) {
    return absl::InvalidArgumentError(absl::StrCat("no cuBLASLt algorithm for m=", key.m,
                                                   " n=", key.n, " k=", key.k));
  }
  plan->algo = result.algo;
  return status;
}

absl::Status GemmRunner::Run(const GemmArgs& args, cudaStream_t stream, bool allow_new_plan) {
  if (handle_ == nullptr) return absl::FailedPreconditionError("GemmRunner not initialized");
  if (args.m < 0 || args.n <= 0 || args.k <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("GEMM shape m=", args.m, " n=", args.n, " k=", args.k));
  }
  if (args.m == 0) return absl::OkStatus();
  const int64_t ldy = args.ldy == 0 ? args.n : args.ldy;
  if (ldy < args.n) return absl::InvalidArgumentError("GEMM ldy < n");
  const Key key{args.m,
                args.n,
                args.k,
                ldy,
                args.in_type,
                args.out_type,
                args.bias != nullptr,
                args.beta != 0.f,
                args.fp8,
                Alignment(args.x),
                Alignment(args.w),
                Alignment(args.y),
                args.bias != nullptr ? Alignment(args.bias) : 256u};
  Plan plan;
  {
    absl::MutexLock lock(&mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) {
      plan = it->second;
    } else if (!allow_new_plan) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no cached GEMM plan for m=", args.m, " n=", args.n, " k=", args.k,
          " inside a CUDA graph capture: the eager warm-up of this step ran other shapes"));
    } else {
      absl::Status s = MakePlan(key, &plan);
      if (!s.ok()) {
        DestroyPlan(this, plan.op, plan.a, plan.b, plan.c);
        return s;
      }
      plans_.emplace(key, plan);
    }
  }
  if (args.fp8 && (args.x_scales == nullptr || args.w_scales == nullptr)) {
    return absl::InvalidArgumentError("fp8 GEMM without its scale vectors");
  }
  // The bias and scale pointers are per call; set them on the cached descriptor (cheap
  // host-side attributes). Calls from several threads on one runner are serialized by the
  // caller's stream anyway.
  if (args.bias != nullptr || args.fp8) {
    absl::MutexLock lock(&mu_);
    if (args.fp8) {
      CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
          plan.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &args.w_scales, sizeof(args.w_scales)));
      CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
          plan.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &args.x_scales, sizeof(args.x_scales)));
    }
    if (args.bias != nullptr) {
      CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
          plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &args.bias, sizeof(args.bias)));
    }
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(handle_, plan.op, &args.alpha, args.w, plan.a, args.x,
                                          plan.b, &args.beta, args.y, plan.c, args.y, plan.c,
                                          &plan.algo, workspace_, workspace_bytes_, stream));
    return absl::OkStatus();
  }
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(handle_, plan.op, &args.alpha, args.w, plan.a, args.x,
                                        plan.b, &args.beta, args.y, plan.c, args.y, plan.c,
                                        &plan.algo, workspace_, workspace_bytes_, stream));
  return absl::OkStatus();
}

}  // namespace glm4v::cuda
