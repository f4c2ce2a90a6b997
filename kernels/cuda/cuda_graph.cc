#include "kernels/cuda/cuda_graph.h"

#include "kernels/cuda/cuda_check.h"

namespace glm4v::cuda {

CudaGraphCache::~CudaGraphCache() { Clear(); }

void CudaGraphCache::Clear() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
}

void CudaGraphCache::Erase(int64_t key) {
  auto it = graphs_.find(key);
  if (it == graphs_.end()) return;
  cudaGraphExecDestroy(it->second);
  graphs_.erase(it);
}

absl::Status CudaGraphCache::Run(int64_t key, cudaStream_t stream,
                                 absl::FunctionRef<absl::Status(cudaStream_t)> record) {
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    // Thread-local mode: other threads' unrelated CUDA calls do not invalidate the capture.
    CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    absl::Status recorded = record(stream);
    cudaGraph_t graph = nullptr;
    cudaError_t end = cudaStreamEndCapture(stream, &graph);
    if (!recorded.ok() || end != cudaSuccess) {
      if (graph != nullptr) cudaGraphDestroy(graph);
      // An invalidated capture also leaves its error as the thread's last error.
      cudaGetLastError();
      return !recorded.ok() ? recorded : CUDA_STATUS(end);
    }
    cudaGraphExec_t exec = nullptr;
    cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    CUDA_RETURN_IF_ERROR(inst);
    it = graphs_.emplace(key, exec).first;
  }
  CUDA_RETURN_IF_ERROR(cudaGraphLaunch(it->second, stream));
  return absl::OkStatus();
}

}  // namespace glm4v::cuda
