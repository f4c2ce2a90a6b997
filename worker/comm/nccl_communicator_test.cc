// Runs only where a GPU is present; TP=1 because a single GPU cannot host two NCCL ranks.
#include "worker/comm/nccl_communicator.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/device_info.h"
#include "worker/comm/socket_communicator.h"

namespace glm4v::comm {
namespace {

class NcclCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (glm4v::cuda::DeviceCount() == 0) {
      GTEST_SKIP() << "no CUDA device, NCCL tests skipped: " << glm4v::cuda::NoDeviceReason();
    }
    absl::StatusOr<std::unique_ptr<SocketCommunicator>> host =
        SocketCommunicator::Create(SocketCommunicatorOptions{});  // rank 0 of 1
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = *std::move(host);
    NcclCommunicatorOptions options;
    options.timeout = absl::Seconds(20);
    absl::StatusOr<std::unique_ptr<NcclCommunicator>> nccl =
        NcclCommunicator::Create(*host_, options);
    ASSERT_TRUE(nccl.ok()) << nccl.status();
    nccl_ = *std::move(nccl);
  }

  template <typename T>
  T* Upload(const std::vector<T>& host) {
    void* dev = nullptr;
    EXPECT_EQ(cudaMalloc(&dev, std::max<size_t>(1, host.size() * sizeof(T))), cudaSuccess);
    if (!host.empty()) {
      EXPECT_EQ(cudaMemcpy(dev, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
                cudaSuccess);
    }
    buffers_.push_back(dev);
    return static_cast<T*>(dev);
  }

  template <typename T>
  std::vector<T> Download(const T* dev, size_t count) {
    std::vector<T> host(count);
    if (count > 0) {
      EXPECT_EQ(cudaMemcpy(host.data(), dev, count * sizeof(T), cudaMemcpyDeviceToHost),
                cudaSuccess);
    }
    return host;
  }

  void TearDown() override {
    nccl_.reset();
    for (void* p : buffers_) cudaFree(p);
  }

  std::unique_ptr<SocketCommunicator> host_;
  std::unique_ptr<NcclCommunicator> nccl_;
  std::vector<void*> buffers_;
};

TEST_F(NcclCommunicatorTest, SingleRankCollectivesAreIdentities) {
  EXPECT_EQ(nccl_->rank(), 0);
  EXPECT_EQ(nccl_->world_size(), 1);
  EXPECT_EQ(nccl_->memory_space(), MemorySpace::kDevice);
  for (size_t count : {size_t{0}, size_t{1}, size_t{4097}}) {
    std::vector<float> f(count);
    for (size_t i = 0; i < count; ++i) f[i] = 0.25f * i - 3.0f;
    float* df = Upload(f);
    ASSERT_TRUE(nccl_->AllReduceSum(df, count).ok());
    EXPECT_EQ(Download(df, count), f);

    std::vector<uint16_t> b(count);
    for (size_t i = 0; i < count; ++i) b[i] = static_cast<uint16_t>(0x3f80 + (i % 64));
    uint16_t* db = Upload(b);
    ASSERT_TRUE(nccl_->AllReduceSumBF16(db, count).ok());
    EXPECT_EQ(Download(db, count), b);

    std::vector<uint8_t> bytes(count, 7);
    uint8_t* in = Upload(bytes);
    uint8_t* out = Upload(std::vector<uint8_t>(count, 0));
    ASSERT_TRUE(nccl_->AllGather(in, out, count).ok());
    EXPECT_EQ(Download(out, count), bytes);
    ASSERT_TRUE(nccl_->Broadcast(in, count, 0).ok());
    EXPECT_EQ(Download(in, count), bytes);
  }
  EXPECT_TRUE(nccl_->Barrier().ok());
}

TEST_F(NcclCommunicatorTest, AsynchronousModeCompletesOnSynchronize) {
  NcclCommunicatorOptions options;
  options.synchronous = false;  // enqueue only; results are stream-ordered
  absl::StatusOr<std::unique_ptr<NcclCommunicator>> async =
      NcclCommunicator::Create(*host_, options);
  ASSERT_TRUE(async.ok()) << async.status();
  std::vector<float> f(1 << 20, 1.5f);
  float* df = Upload(f);
  ASSERT_TRUE((*async)->AllReduceSum(df, f.size()).ok());
  ASSERT_TRUE((*async)->Synchronize().ok());
  EXPECT_EQ(Download(df, f.size()), f);
}

TEST_F(NcclCommunicatorTest, BadArgumentsAreErrors) {
  int8_t byte = 0;
  EXPECT_EQ(nccl_->Broadcast(&byte, 1, 1).code(), absl::StatusCode::kInvalidArgument);
  NcclCommunicatorOptions bad_device;
  bad_device.device = 1 << 20;
  absl::Status st = NcclCommunicator::Create(*host_, bad_device).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  // The unique id must travel over a host channel, never a device communicator.
  st = NcclCommunicator::Create(*nccl_, NcclCommunicatorOptions{}).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
}

}  // namespace
}  // namespace glm4v::comm
