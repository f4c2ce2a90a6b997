// Runs a parameterized test once per SIMD level (simd_level.h): the level is set for the test
// and restored after; levels this CPU lacks are reported as skipped.
//
//   class MyTest : public glm4v::cpu::SimdLevelTest {};
//   TEST_P(MyTest, ...) { ... }
//   GLM4V_INSTANTIATE_SIMD_LEVELS(MyTest);
#pragma once

#include <string>

#include "gtest/gtest.h"
#include "kernels/cpu/simd_level.h"

namespace glm4v::cpu {

class SimdLevelTest : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (static_cast<int>(GetParam()) > static_cast<int>(DetectedSimdLevel())) {
      GTEST_SKIP() << SimdLevelName(GetParam()) << " not available on this CPU (it has "
                   << SimdLevelName(DetectedSimdLevel()) << ")";
    }
    saved_ = ActiveSimdLevel();
    ASSERT_EQ(SetSimdLevelForTesting(GetParam()), GetParam());
  }
  void TearDown() override { SetSimdLevelForTesting(saved_); }

 private:
  SimdLevel saved_ = SimdLevel::kScalar;
};

inline std::string SimdLevelTestName(const ::testing::TestParamInfo<SimdLevel>& info) {
  return SimdLevelName(info.param);
}

}  // namespace glm4v::cpu

#define GLM4V_INSTANTIATE_SIMD_LEVELS(fixture)                                              \
  INSTANTIATE_TEST_SUITE_P(Levels, fixture,                                                 \
                           ::testing::Values(::glm4v::cpu::SimdLevel::kScalar,              \
                                             ::glm4v::cpu::SimdLevel::kAvx2,                \
                                             ::glm4v::cpu::SimdLevel::kAvx512),             \
                           ::glm4v::cpu::SimdLevelTestName)
