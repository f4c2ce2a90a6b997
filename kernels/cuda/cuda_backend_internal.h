// Pieces of CudaBackend shared by its implementation files (cuda_backend.cc and
// cuda_backend_sampling.cc); not for other users.
#pragma once

#include "kernels/cuda/cuda_backend.h"

namespace glm4v::cuda {

// Taken at the top of every public entry point (never nested: internal helpers do not take
// it). On the thread running a RunCaptured step it does nothing: that thread's work is what
// the capture records. Other threads hold capture_mu_ as readers, so they wait while a
// capture is in progress and a capture waits for their calls in flight.
class CudaBackend::StreamUse {
 public:
  explicit StreamUse(CudaBackend* backend) : backend_(backend) {
    if (!backend_->OnStepThread()) {
      backend_->capture_mu_.ReaderLock();
      locked_ = true;
    }
  }
  ~StreamUse() {
    if (locked_) backend_->capture_mu_.ReaderUnlock();
  }
  StreamUse(const StreamUse&) = delete;
  StreamUse& operator=(const StreamUse&) = delete;

 private:
  CudaBackend* backend_;
  bool locked_ = false;
};

}  // namespace glm4v::cuda
