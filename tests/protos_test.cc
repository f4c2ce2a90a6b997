// The generated API types round-trip through the wire format and keep proto3 presence.
#include <gtest/gtest.h>

#include "protos/glm4v/internal/vision.grpc.pb.h"
#include "protos/glm4v/internal/worker.grpc.pb.h"
#include "protos/glm4v/v1/glm4v.grpc.pb.h"
#include "protos/grpc/health/v1/health.grpc.pb.h"

TEST(Protos, GenerateRequestRoundTrip) {
  glm4v::v1::GenerateRequest req;
  req.set_request_id("r1");
  auto* msg = req.add_messages();
  msg->set_role(glm4v::v1::ROLE_USER);
  msg->add_content()->mutable_image()->set_data(std::string("\x89PNG", 4));
  msg->add_content()->set_text("What is this?");
  req.mutable_sampling()->set_temperature(0.0f);
  std::string wire = req.SerializeAsString();
  glm4v::v1::GenerateRequest back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.messages(0).content(1).text(), "What is this?");
  EXPECT_TRUE(back.sampling().has_temperature());  // explicit 0 (greedy) survives
  EXPECT_FALSE(back.sampling().has_top_p());
}

TEST(Protos, WorkerSubmitCarriesImageFeatures) {
  glm4v::internal::SubmitRequest req;
  auto* img = req.add_images();
  img->set_boi_index(4);
  img->mutable_features()->set_rows(18);
  img->mutable_features()->set_dtype(glm4v::internal::FEATURE_DTYPE_BFLOAT16);
  glm4v::internal::SubmitRequest back;
  ASSERT_TRUE(back.ParseFromString(req.SerializeAsString()));
  EXPECT_EQ(back.images(0).features().rows(), 18u);
  EXPECT_EQ(back.images(0).boi_index(), 4u);
}
