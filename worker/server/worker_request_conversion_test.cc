#include "worker/server/worker_request_conversion.h"

#include "gtest/gtest.h"
#include "services/common/feature_codec.h"

namespace glm4v::worker {
namespace {

ModelConfig TinyConfig() {
  ModelConfig config;
  config.hidden_size = 4;
  config.padded_vocab_size = 1024;
  config.boi_token_id = 1001;
  config.eoi_token_id = 1002;
  return config;
}

internal::SubmitRequest ImageRequest(uint32_t boi_index) {
  internal::SubmitRequest request;
  request.set_request_id("r1");
  for (uint32_t id : {1004u, 1005u, 1001u, 1000u, 1002u, 7u}) request.add_prompt_token_ids(id);
  internal::PromptImage* image = request.add_images();
  image->set_boi_index(boi_index);
  Tensor features = Tensor::FromF32({3, 4}, std::vector<float>(12, 0.5f));
  EXPECT_TRUE(
      EncodeFeatures(features, internal::FEATURE_DTYPE_BFLOAT16, image->mutable_features()).ok());
  image->mutable_features()->set_content_hash("hash");
  request.mutable_sampling()->set_max_tokens(5);
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_seed(9);
  request.mutable_sampling()->set_has_seed(true);
  request.mutable_sampling()->add_stop_token_ids(1000);
  return request;
}

TEST(WorkerRequestConversionTest, ConvertsIdsImagesAndSampling) {
  auto request = ToEngineRequest(ImageRequest(2), TinyConfig());
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->request_id, "r1");
  EXPECT_EQ(request->prompt_token_ids, (std::vector<int32_t>{1004, 1005, 1001, 1000, 1002, 7}));
  ASSERT_EQ(request->images.size(), 1u);
  EXPECT_EQ(request->images[0].features.dim(0), 3);
  EXPECT_EQ(request->images[0].features.data<float>()[5], 0.5f);
  EXPECT_EQ(request->images[0].content_hash, "hash");
  EXPECT_EQ(request->sampling.max_tokens, 5);
  EXPECT_TRUE(request->sampling.greedy());
  EXPECT_EQ(request->sampling.seed, std::optional<uint64_t>(9));
  EXPECT_EQ(request->sampling.stop_token_ids, std::vector<int32_t>{1000});
}

TEST(WorkerRequestConversionTest, RejectsAMisplacedImage) {
  EXPECT_EQ(ToEngineRequest(ImageRequest(3), TinyConfig()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(WorkerRequestConversionTest, RejectsIdsOutsideTheVocabulary) {
  internal::SubmitRequest request = ImageRequest(2);
  request.set_prompt_token_ids(5, 4000000000u);
  EXPECT_EQ(ToEngineRequest(request, TinyConfig()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(WorkerRequestConversionTest, RejectsFeaturesOfTheWrongWidth) {
  internal::SubmitRequest request = ImageRequest(2);
  request.mutable_images(0)->mutable_features()->set_hidden_size(2);
  request.mutable_images(0)->mutable_features()->set_rows(6);
  EXPECT_EQ(ToEngineRequest(request, TinyConfig()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm4v::worker
