#include "kernels/cuda/device_info.h"

#include <gtest/gtest.h>

#include <vector>

namespace glm4v::cuda {
namespace {

TEST(CudaDevice, AddScalarKernelRuns) {
  if (DeviceCount() == 0) GTEST_SKIP() << NoDeviceReason();
  std::vector<float> x = {1.f, 2.f, -3.f, 0.5f};
  std::string error;
  ASSERT_TRUE(AddScalarOnDevice(x.data(), static_cast<int>(x.size()), 1.5f, &error)) << error;
  EXPECT_FLOAT_EQ(x[0], 2.5f);
  EXPECT_FLOAT_EQ(x[2], -1.5f);
  EXPECT_FLOAT_EQ(x[3], 2.0f);
}

}  // namespace
}  // namespace glm4v::cuda
