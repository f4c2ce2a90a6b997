#include "services/vision/encode_batcher.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace glm4v {
namespace {

PixelTensor Pixel(float value) {
  PixelTensor p;
  p.channels = p.height = p.width = 1;
  p.data = {value};
  return p;
}

// Doubles each image's single value and records the batch sizes it saw.
struct Doubler {
  absl::Mutex mu;
  std::vector<int> batch_sizes;
  absl::Duration delay = absl::ZeroDuration();

  EncodeBatcher::EncodeFn Fn() {
    return
        [this](
            const std::vector<const PixelTensor*>& images) -> absl::StatusOr<std::vector<Tensor>> {
          absl::SleepFor(delay);
          {
            absl::MutexLock lock(&mu);
            batch_sizes.push_back(images.size());
          }
          std::vector<Tensor> out;
          for (const PixelTensor* p : images)
            out.push_back(Tensor::FromF32({1, 1}, {p->data[0] * 2}));
          return out;
        };
  }
};

TEST(EncodeBatcherTest, ConcurrentRequestsShareABatch) {
  Doubler doubler;
  EncodeBatcher batcher({/*max_batch=*/4, /*max_wait=*/absl::Seconds(20), 64}, doubler.Fn(), {});
  std::vector<std::thread> threads;
  std::vector<float> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i]() {
      std::vector<PixelTensor> images;
      images.push_back(Pixel(i));
      auto out = batcher.Encode(std::move(images), absl::InfiniteFuture());
      ASSERT_TRUE(out.ok()) << out.status();
      results[i] = (*out)[0].data<float>()[0];
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(results[i], 2.0f * i);
  absl::MutexLock lock(&doubler.mu);
  // max_wait is long: only max_batch = 4 can have closed the batch (the test would time out).
  EXPECT_EQ(doubler.batch_sizes, std::vector<int>({4}));
}

TEST(EncodeBatcherTest, ALoneRequestRunsAfterMaxWait) {
  Doubler doubler;
  EncodeBatcher batcher({8, absl::Milliseconds(20), 64}, doubler.Fn(), {});
  std::vector<PixelTensor> images;
  images.push_back(Pixel(3));
  images.push_back(Pixel(4));
  const absl::Time start = absl::Now();
  auto out = batcher.Encode(std::move(images), absl::InfiniteFuture());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(19));
  EXPECT_EQ((*out)[0].data<float>()[0], 6.0f);
  EXPECT_EQ((*out)[1].data<float>()[0], 8.0f);
}

TEST(EncodeBatcherTest, FullQueueIsResourceExhausted) {
  Doubler doubler;
  EncodeBatcher batcher({1, absl::ZeroDuration(), /*max_queue=*/2}, doubler.Fn(), {});
  std::vector<PixelTensor> images;
  for (int i = 0; i < 3; ++i) images.push_back(Pixel(i));
  EXPECT_EQ(batcher.Encode(std::move(images), absl::InfiniteFuture()).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(EncodeBatcherTest, DeadlineExpiresWhileTheTowerIsBusy) {
  Doubler doubler;
  doubler.delay = absl::Milliseconds(300);
  EncodeBatcher batcher({1, absl::ZeroDuration(), 64}, doubler.Fn(), {});
  std::thread busy([&]() {
    std::vector<PixelTensor> images;
    images.push_back(Pixel(1));
    EXPECT_TRUE(batcher.Encode(std::move(images), absl::InfiniteFuture()).ok());
  });
  absl::SleepFor(absl::Milliseconds(50));
  std::vector<PixelTensor> images;
  images.push_back(Pixel(2));
  EXPECT_EQ(batcher.Encode(std::move(images), absl::Now() + absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  busy.join();
}

TEST(EncodeBatcherTest, EncoderFailureFailsTheBatch) {
  EncodeBatcher batcher(
      {4, absl::ZeroDuration(), 64},
      [](const std::vector<const PixelTensor*>&) -> absl::StatusOr<std::vector<Tensor>> {
        return absl::InternalError("tower broke");
      },
      {});
  std::vector<PixelTensor> images;
  images.push_back(Pixel(1));
  auto out = batcher.Encode(std::move(images), absl::InfiniteFuture());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace glm4v
