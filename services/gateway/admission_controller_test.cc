#include "services/gateway/admission_controller.h"

#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace glm4v {
namespace {

TEST(AdmissionControllerTest, QueuesThenRefusesBeyondTheBound) {
  AdmissionController admission(/*max_inflight=*/1, /*max_queue=*/1);
  auto first = admission.Admit(absl::InfiniteFuture(), nullptr);
  ASSERT_TRUE(first.ok());
  std::optional<AdmissionController::Slot> held(std::move(*first));

  absl::StatusCode queued_code = absl::StatusCode::kUnknown;
  std::thread queued([&]() {
    auto slot = admission.Admit(absl::Now() + absl::Seconds(30), nullptr);
    queued_code = slot.status().code();
  });
  while (admission.waiting() == 0) absl::SleepFor(absl::Milliseconds(1));
  // One running, one queued: the third is refused at once.
  EXPECT_EQ(admission.Admit(absl::InfiniteFuture(), nullptr).status().code(),
            absl::StatusCode::kResourceExhausted);
  held.reset();  // frees the slot for the queued request
  queued.join();
  EXPECT_EQ(queued_code, absl::StatusCode::kOk);
  EXPECT_EQ(admission.inflight(), 0);
}

TEST(AdmissionControllerTest, QueuedRequestsTimeOutOrCancel) {
  AdmissionController admission(1, 4);
  auto first = admission.Admit(absl::InfiniteFuture(), nullptr);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(admission.Admit(absl::Now() + absl::Milliseconds(30), nullptr).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(admission.Admit(absl::InfiniteFuture(), []() { return true; }).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(admission.waiting(), 0);
}

}  // namespace
}  // namespace glm4v
