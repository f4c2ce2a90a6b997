#include "kernels/cuda/cuda_graph.h"

#include "kernels/cuda/cuda_check.h"

namespace glm4v::cuda {

CudaGraphCache::~CudaGraphCache() { Clear(); }

void CudaGraphCache::Clear() {
  for (auto& [bucket, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
}

absl::Status CudaGraphCache::Run(int bucket, cudaStream_t stream,
                                 absl::FunctionRef<absl::Status(cudaStream_t)> record) {
  auto it = graphs_.find(bucket);
  if (it == graphs_.end()) {
    // Thread-local mode: other threads' unrelated CUDA calls do not invalidate the capture.
    CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    absl::Status recorded = record(stream);
    cudaGraph_t graph = nullptr;
    cudaError_t end = cudaStreamEndCapture(stream, &graph);
    if (!recorded.ok()) {
      if (graph != nullptr) cudaGraphDestroy(graph);
      return recorded;
    }
    if (end != cudaSuccess) {
      if (graph != nullptr) cudaGraphDestroy(graph);
      return CUDA_STATUS(end);
    }
    cudaGraphExec_t exec = nullptr;
    cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    CUDA_RETURN_IF_ERROR(inst);
    it = graphs_.emplace(bucket, exec).first;
  }
  CUDA_RETURN_IF_ERROR(cudaGraphLaunch(it->second, stream));
  return absl::OkStatus();
}

int BucketFor(int batch, absl::Span<const int> buckets) {
  for (int b : buckets) {
    if (b >= batch) return b;
  }
  return -1;
}

std::vector<int> DefaultDecodeBuckets(int max_batch) {
  std::vector<int> out;
  for (int b : {1, 2, 4, 8}) {
    if (b <= max_batch) out.push_back(b);
  }
  for (int b = 16; b <= max_batch; b += 8) out.push_back(b);
  if (out.empty() || out.back() < max_batch) out.push_back(max_batch);
  return out;
}

}  // namespace glm4v::cuda
