#include "worker/tp/step_message.h"

#include "gtest/gtest.h"

namespace glm4v::worker::tp {
namespace {

TEST(StepMessageTest, StepRoundTrips) {
  StepMessage m;
  m.kind = StepMessage::Kind::kStep;
  SequenceChunk a;
  a.token_ids = {5, 6, 7};
  a.positions = {0, 1, 1};
  a.embedding_rows = {-1, 0, 1};
  a.embeddings = Tensor::FromF32({2, 3}, {1, 2, 3, 4, 5, 6});
  a.num_cached = 9;
  a.block_table = {4, 2};
  a.logits = SequenceChunk::Logits::kAll;
  SequenceChunk b;
  b.token_ids = {1};
  b.positions = {30};
  b.block_table = {0};
  b.logits = SequenceChunk::Logits::kNone;
  m.batch.sequences = {a, b};
  auto bytes = EncodeStepMessage(m);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto back = DecodeStepMessage(*bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->kind, StepMessage::Kind::kStep);
  ASSERT_EQ(back->batch.sequences.size(), 2u);
  const SequenceChunk& x = back->batch.sequences[0];
  EXPECT_EQ(x.token_ids, a.token_ids);
  EXPECT_EQ(x.positions, a.positions);
  EXPECT_EQ(x.embedding_rows, a.embedding_rows);
  EXPECT_EQ(x.num_cached, 9);
  EXPECT_EQ(x.block_table, a.block_table);
  EXPECT_EQ(x.logits, SequenceChunk::Logits::kAll);
  ASSERT_TRUE(x.embeddings.defined());
  EXPECT_EQ(x.embeddings.shape(), (Shape{2, 3}));
  EXPECT_EQ(x.embeddings.data<float>()[5], 6.0f);
  const SequenceChunk& y = back->batch.sequences[1];
  EXPECT_FALSE(y.embeddings.defined());
  EXPECT_TRUE(y.embedding_rows.empty());
  EXPECT_EQ(y.positions, b.positions);
  EXPECT_EQ(y.logits, SequenceChunk::Logits::kNone);

  // Every truncation is an error, never a read past the end.
  for (size_t n = 0; n < bytes->size(); ++n) {
    EXPECT_FALSE(DecodeStepMessage(absl::string_view(*bytes).substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(DecodeStepMessage(*bytes + "x").ok());
}

TEST(StepMessageTest, ControlMessages) {
  StepMessage alloc;
  alloc.kind = StepMessage::Kind::kAllocateKvCache;
  alloc.num_blocks = 77;
  alloc.block_size = 16;
  auto back = DecodeStepMessage(*EncodeStepMessage(alloc));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->kind, StepMessage::Kind::kAllocateKvCache);
  EXPECT_EQ(back->num_blocks, 77);
  EXPECT_EQ(back->block_size, 16);
  StepMessage stop;
  stop.kind = StepMessage::Kind::kStop;
  EXPECT_EQ(DecodeStepMessage(*EncodeStepMessage(stop))->kind, StepMessage::Kind::kStop);
  EXPECT_FALSE(DecodeStepMessage("garbage!").ok());
}

}  // namespace
}  // namespace glm4v::worker::tp
