#include "common/safetensors.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/glm4v_weight_names.h"
#include "common/model_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace glm4v {
namespace {

using ::testing::HasSubstr;

std::string TempDir() {
  const char* d = std::getenv("TEST_TMPDIR");
  return d != nullptr ? d : "/tmp";
}

// A fresh directory per test so file names never collide.
std::string MakeDir(const std::string& name) {
  std::string dir = absl::StrCat(TempDir(), "/", name);
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), bytes.size());
  ASSERT_TRUE(out.good()) << path;
}

// 8-byte little-endian length + header + data, with an explicit (possibly lying) length.
std::string Blob(const std::string& header, const std::string& data, uint64_t header_len) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header_len >> (8 * i)) & 0xff);
  return out + header + data;
}
std::string Blob(const std::string& header, const std::string& data) {
  return Blob(header, data, header.size());
}

struct FakeTensor {
  std::string name;
  std::string dtype;
  Shape shape;
  std::string bytes;
};

// Builds a valid file: tensors laid out back to back, header padded to 8 bytes like the
// reference writer does.
std::string GoodBlob(const std::vector<FakeTensor>& tensors, const std::string& metadata = "") {
  std::string header = "{";
  std::string data;
  if (!metadata.empty()) header += absl::StrCat("\"__metadata__\":", metadata, ",");
  for (size_t i = 0; i < tensors.size(); ++i) {
    const FakeTensor& t = tensors[i];
    std::string shape;
    for (size_t d = 0; d < t.shape.size(); ++d) shape += absl::StrCat(d ? "," : "", t.shape[d]);
    absl::StrAppend(&header, i ? "," : "", "\"", t.name, "\":{\"dtype\":\"", t.dtype,
                    "\",\"shape\":[", shape, "],\"data_offsets\":[", data.size(), ",",
                    data.size() + t.bytes.size(), "]}");
    data += t.bytes;
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  return Blob(header, data);
}

std::string F32Bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}
std::string U16Bytes(const std::vector<uint16_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(uint16_t));
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  // Writes `bytes` as <dir>/f.safetensors, opens it and expects an error naming the file
  // (and `detail`, e.g. the tensor name).
  void ExpectOpenError(const std::string& bytes, const std::string& detail) {
    const std::string path = dir_ + "/f.safetensors";
    WriteFile(path, bytes);
    absl::StatusOr<std::shared_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
    ASSERT_FALSE(f.ok()) << "opened a bad file; expected error about: " << detail;
    EXPECT_THAT(std::string(f.status().message()), HasSubstr(path));
    EXPECT_THAT(std::string(f.status().message()), HasSubstr(detail));
  }
  std::string dir_;
};

TEST_F(SafetensorsTest, GoodFileRoundTrip) {
  const std::string path = dir_ + "/model.safetensors";
  WriteFile(path, GoodBlob({{"a", "F32", {2, 2}, F32Bytes({1, 2, 3, 4})},
                            {"b", "BF16", {3}, U16Bytes({0x3f80, 0xc000, 0x0000})},
                            {"c", "F16", {1}, U16Bytes({0x3c00})},
                            {"empty", "F32", {0, 5}, ""}},
                           R"({"format":"pt"})"));
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->tensors().size(), 4u);
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  EXPECT_TRUE((*f)->Has("b"));
  EXPECT_FALSE((*f)->Has("__metadata__"));
  auto a = (*f)->Get("a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->shape(), (Shape{2, 2}));
  EXPECT_EQ(a->ToF32().data<float>()[3], 4.0f);
  EXPECT_EQ((*f)->Get("missing").status().code(), absl::StatusCode::kNotFound);

  // The view keeps the mapping alive after the file object and checkpoint go away.
  Tensor b;
  {
    auto ckpt = Checkpoint::Open(dir_);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    EXPECT_EQ(ckpt->TensorNames(), (std::vector<std::string>{"a", "b", "c", "empty"}));
    b = *ckpt->Get("b");
    auto bf = ckpt->GetF32("b", {3});
    ASSERT_TRUE(bf.ok()) << bf.status();
    EXPECT_EQ(bf->data<float>()[1], -2.0f);
    auto cf = ckpt->GetF32("c", {1});
    ASSERT_TRUE(cf.ok());
    EXPECT_EQ(cf->data<float>()[0], 1.0f);
    auto info = ckpt->Info("a");
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->nbytes, 16u);
    EXPECT_EQ(info->dtype, DType::kF32);

    auto wrong = ckpt->GetF32("a", {4});
    ASSERT_FALSE(wrong.ok());
    EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("\"a\""));
    EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("[4]"));
    EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("[2,2]"));
    EXPECT_THAT(std::string(wrong.status().message()), HasSubstr(path));

    auto rows = ckpt->GetRows("a", 1, 2);
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ(rows->shape(), (Shape{1, 2}));
    EXPECT_EQ(rows->ToF32().data<float>()[0], 3.0f);
    EXPECT_EQ(static_cast<const char*>(rows->raw_data()),
              static_cast<const char*>(ckpt->Get("a")->raw_data()) + 8);
    EXPECT_FALSE(ckpt->GetRows("a", 1, 3).ok());
    EXPECT_FALSE(ckpt->GetRows("a", -1, 1).ok());
    EXPECT_EQ(ckpt->Get("zzz").status().code(), absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(BF16ToF32(b.data<uint16_t>()[0]), 1.0f);
}

TEST_F(SafetensorsTest, GetF32RejectsIntegerTensors) {
  WriteFile(dir_ + "/model.safetensors", GoodBlob({{"ids", "I32", {2}, std::string(8, '\0')}}));
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  auto t = ckpt->GetF32("ids", {2});
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("ids"));
}

TEST_F(SafetensorsTest, Truncated) {
  ExpectOpenError("", "shorter than");
  ExpectOpenError(std::string(7, '\0'), "shorter than");
}

TEST_F(SafetensorsTest, HeaderLongerThanFile) {
  ExpectOpenError(Blob("{}", "", 1000), "exceeds the file size");
}

TEST_F(SafetensorsTest, HeaderOverCap) {
  ExpectOpenError(Blob("{}", "", (100ull << 20) + 1), "cap");
  ExpectOpenError(Blob("{}", "", ~0ull), "cap");
}

TEST_F(SafetensorsTest, InvalidJson) {
  ExpectOpenError(Blob("{\"a\":", ""), "not valid JSON");
  ExpectOpenError(Blob("[1,2]", ""), "not a JSON object");
}

TEST_F(SafetensorsTest, NonObjectEntry) { ExpectOpenError(Blob(R"({"w":5})", ""), "\"w\""); }

TEST_F(SafetensorsTest, UnknownDtype) {
  ExpectOpenError(Blob(R"({"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", "x"), "\"w\"");
  ExpectOpenError(Blob(R"({"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", "x"), "F8");
  ExpectOpenError(Blob(R"({"w":{"shape":[1],"data_offsets":[0,1]}})", "x"), "dtype");
}

TEST_F(SafetensorsTest, BadShape) {
  ExpectOpenError(Blob(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "x"), "\"w\"");
  ExpectOpenError(Blob(R"({"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", "x"), "\"w\"");
  ExpectOpenError(Blob(R"({"w":{"dtype":"U8","shape":"1","data_offsets":[0,1]}})", "x"), "\"w\"");
  ExpectOpenError(
      Blob(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,1]}})", "x"),
      "overflow");
  ExpectOpenError(
      Blob(R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,1]}})", "x"),
      "overflow");
}

TEST_F(SafetensorsTest, BadOffsets) {
  ExpectOpenError(Blob(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "x"),
                  "data_offsets");
  ExpectOpenError(Blob(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,"1"]}})", "x"),
                  "data_offsets");
  ExpectOpenError(Blob(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", "x"),
                  "data_offsets");
  ExpectOpenError(Blob(R"({"w":{"dtype":"U8","shape":[1]}})", "x"), "data_offsets");
  ExpectOpenError(Blob(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}})", "x"),
                  "end 0 < begin 1");
}

TEST_F(SafetensorsTest, SpanBeyondFile) {
  ExpectOpenError(Blob(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"),
                  "beyond");
  ExpectOpenError(
      Blob(
          R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]}})",
          "x"),
      "beyond");
}

TEST_F(SafetensorsTest, SizeMismatch) {
  ExpectOpenError(Blob(R"({"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}})", "1234"),
                  "\"w\": byte span 4 != 6");
}

TEST_F(SafetensorsTest, OverlappingSpans) {
  ExpectOpenError(Blob(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                       "123456"),
                  "overlaps");
  // Touching spans are fine; so are two empty tensors at one offset.
  const std::string path = dir_ + "/ok.safetensors";
  WriteFile(path, Blob(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                       R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                       R"("e1":{"dtype":"U8","shape":[0],"data_offsets":[1,1]},)"
                       R"("e2":{"dtype":"U8","shape":[0],"data_offsets":[1,1]}})",
                       "1234"));
  EXPECT_TRUE(SafetensorsFile::Open(path).ok());
}

TEST_F(SafetensorsTest, BadMetadata) {
  ExpectOpenError(Blob(R"({"__metadata__":{"format":1}})", ""), "__metadata__");
  ExpectOpenError(Blob(R"({"__metadata__":[]})", ""), "__metadata__");
}

TEST_F(SafetensorsTest, MissingFile) {
  auto f = SafetensorsFile::Open(dir_ + "/nope.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("nope.safetensors"));
  auto c = Checkpoint::Open(dir_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(dir_));
}

// --- sharded checkpoints ---

void WriteTwoShards(const std::string& dir) {
  WriteFile(dir + "/s1.safetensors",
            GoodBlob({{"x", "F32", {2}, F32Bytes({1, 2})}, {"y", "F32", {1}, F32Bytes({3})}}));
  WriteFile(dir + "/s2.safetensors", GoodBlob({{"z", "BF16", {2, 1}, U16Bytes({0x4000, 0x4040})}}));
}

TEST_F(SafetensorsTest, ShardedRoundTrip) {
  WriteTwoShards(dir_);
  WriteFile(dir_ + "/model.safetensors.index.json",
            R"({"metadata":{"total_size":16},"weight_map":{"x":"s1.safetensors",)"
            R"("y":"s1.safetensors","z":"s2.safetensors"}})");
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->TensorNames(), (std::vector<std::string>{"x", "y", "z"}));
  auto z = ckpt->GetF32("z", {2, 1});
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(z->data<float>()[0], 2.0f);
  EXPECT_EQ(z->data<float>()[1], 3.0f);
  EXPECT_EQ(ckpt->GetF32("y", {1})->data<float>()[0], 3.0f);
}

TEST_F(SafetensorsTest, ShardedMissingShardFile) {
  WriteTwoShards(dir_);
  WriteFile(dir_ + "/model.safetensors.index.json",
            R"({"weight_map":{"x":"s1.safetensors","q":"s9.safetensors"}})");
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(ckpt.status().message()), HasSubstr("s9.safetensors"));
}

TEST_F(SafetensorsTest, ShardedTensorMissingFromShard) {
  WriteTwoShards(dir_);
  WriteFile(dir_ + "/model.safetensors.index.json",
            R"({"weight_map":{"x":"s1.safetensors","z":"s1.safetensors"}})");
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_THAT(std::string(ckpt.status().message()), HasSubstr("\"z\""));
  EXPECT_THAT(std::string(ckpt.status().message()), HasSubstr("s1.safetensors"));
}

TEST_F(SafetensorsTest, ShardedBadShardContentNamesShard) {
  WriteTwoShards(dir_);
  WriteFile(dir_ + "/s2.safetensors", "garbage");
  WriteFile(dir_ + "/model.safetensors.index.json",
            R"({"weight_map":{"x":"s1.safetensors","z":"s2.safetensors"}})");
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_THAT(std::string(ckpt.status().message()), HasSubstr(dir_ + "/s2.safetensors"));
}

TEST_F(SafetensorsTest, IndexMalformed) {
  WriteTwoShards(dir_);
  const std::string index = dir_ + "/model.safetensors.index.json";
  for (const char* bad :
       {R"({"weight_map":)", R"([])", R"({"metadata":{}})", R"({"weight_map":[]})",
        R"({"weight_map":{}})", R"({"weight_map":{"x":1}})",
        R"({"weight_map":{"x":"../s1.safetensors"}})"}) {
    WriteFile(index, bad);
    auto ckpt = Checkpoint::Open(dir_);
    ASSERT_FALSE(ckpt.ok()) << bad;
    EXPECT_THAT(std::string(ckpt.status().message()), HasSubstr(index)) << bad;
  }
}

// --- the real-layout tiny checkpoint ---

constexpr char kTinyDir[] = "tests/data/tiny-glm4v/model";

TEST(TinyCheckpointTest, EveryTensorMatchesTheConfigDerivedTable) {
  auto config = LoadModelConfig(kTinyDir);
  ASSERT_TRUE(config.ok()) << config.status();
  auto ckpt = Checkpoint::Open(kTinyDir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();

  std::map<std::string, Shape> expected;
  for (const WeightSpec& w : Glm4vWeightSpecs(*config)) {
    EXPECT_TRUE(expected.emplace(w.name, w.shape).second) << "duplicate spec " << w.name;
  }
  std::vector<std::string> names = ckpt->TensorNames();
  EXPECT_EQ(names.size(), expected.size());
  for (const std::string& name : names) {
    auto it = expected.find(name);
    if (it == expected.end()) {
      ADD_FAILURE() << "unexpected tensor " << name;
      continue;
    }
    auto info = ckpt->Info(name);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->dtype, DType::kBF16) << name;
    EXPECT_EQ(info->shape, it->second)
        << name << ": got " << ShapeToString(info->shape) << " want " << ShapeToString(it->second);
  }
  for (const auto& [name, shape] : expected) EXPECT_TRUE(ckpt->Has(name)) << "missing " << name;

  // Both shards are used and data converts.
  auto emb = ckpt->GetF32("transformer.embedding.word_embeddings.weight",
                          {config->padded_vocab_size, config->hidden_size});
  ASSERT_TRUE(emb.ok()) << emb.status();
  auto boi = ckpt->GetF32("transformer.vision.boi", {1, 1, config->hidden_size});
  ASSERT_TRUE(boi.ok()) << boi.status();
  double sum = 0;
  for (int64_t i = 0; i < boi->numel(); ++i) sum += std::abs(boi->data<float>()[i]);
  EXPECT_GT(sum, 0);  // random weights, not zeros
}

TEST(TinyCheckpointTest, TableDependsOnConfigFlags) {
  auto config = LoadModelConfig(kTinyDir);
  ASSERT_TRUE(config.ok());
  ModelConfig c = *config;
  const size_t base = DecoderWeightSpecs(c).size();
  c.tie_word_embeddings = true;
  EXPECT_EQ(DecoderWeightSpecs(c).size(), base - 1);
  c = *config;
  c.add_bias_linear = true;  // dense, h_to_4h, 4h_to_h biases per layer
  EXPECT_EQ(DecoderWeightSpecs(c).size(), base + 3 * c.num_layers);
  c = *config;
  c.rmsnorm = false;  // LayerNorm biases: 2 per layer + final
  EXPECT_EQ(DecoderWeightSpecs(c).size(), base + 2 * c.num_layers + 1);
}

}  // namespace
}  // namespace glm4v
