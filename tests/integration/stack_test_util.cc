#include "tests/integration/stack_test_util.h"

#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/stack/service_stack.h"

namespace glm4v::testing {

GoldenCase LoadGoldenCase(const std::string& kind) {
  const nlohmann::json golden =
      nlohmann::json::parse(ReadFileOrDie(RunfilePath("tests/data/tiny-glm4v/golden.json")));
  for (const nlohmann::json& c : golden["cases"]) {
    if (c["kind"] != kind) continue;
    GoldenCase out;
    out.input_ids = c["input_ids"].get<std::vector<uint32_t>>();
    out.greedy_ids = c["greedy_ids"].get<std::vector<uint32_t>>();
    out.has_image = c.contains("image");
    return out;
  }
  std::fprintf(stderr, "golden.json has no %s case\n", kind.c_str());
  std::abort();
}

std::string Image0Png() { return ReadFileOrDie(RunfilePath("tests/data/tiny-glm4v/image0.png")); }

v1::GenerateRequest GoldenRequest(const GoldenCase& golden) {
  v1::GenerateRequest request;
  request.mutable_prompt_token_ids()->Assign(golden.input_ids.begin(), golden.input_ids.end());
  if (golden.has_image) {
    v1::ImagePart* image = request.add_images();
    image->set_data(Image0Png());
    image->set_mime_type("image/png");
  }
  v1::SamplingParams* sampling = request.mutable_sampling();
  sampling->set_temperature(0);
  sampling->set_max_tokens(static_cast<uint32_t>(golden.greedy_ids.size()));
  sampling->set_ignore_eos(true);
  return request;
}

v1::GenerateRequest ChatRequest(const std::string& question, const std::string& image,
                                uint32_t max_tokens) {
  v1::GenerateRequest request;
  v1::ChatMessage* message = request.add_messages();
  message->set_role(v1::ROLE_USER);
  if (!image.empty()) message->add_content()->mutable_image()->set_data(image);
  message->add_content()->set_text(question);
  request.mutable_sampling()->set_max_tokens(max_tokens);
  request.mutable_sampling()->set_ignore_eos(true);
  request.mutable_sampling()->set_temperature(0.7f);
  request.mutable_sampling()->set_seed(1234);
  return request;
}

StreamResult RunStream(v1::Glm4vService::Stub* stub, const v1::GenerateRequest& request,
                       absl::Duration timeout) {
  StreamResult result;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  auto reader = stub->GenerateStream(&context, request);
  v1::GenerateStreamResponse chunk;
  while (reader->Read(&chunk)) {
    ++result.chunks;
    result.token_ids.insert(result.token_ids.end(), chunk.token_ids().begin(),
                            chunk.token_ids().end());
    result.text += chunk.text_delta();
    result.last = chunk;
  }
  result.status = reader->Finish();
  return result;
}

}  // namespace glm4v::testing
