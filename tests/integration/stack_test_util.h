// Requests and helpers shared by the multi-process tests.
#pragma once

#include <string>
#include <vector>

#include "grpcpp/client_context.h"
#include "protos/glm4v/v1/glm4v.grpc.pb.h"

namespace glm4v::testing {

struct GoldenCase {
  std::vector<uint32_t> input_ids;
  std::vector<uint32_t> greedy_ids;
  bool has_image = false;
};

// golden.json "multimodal" / "text" case (the multimodal one uses image0.png).
GoldenCase LoadGoldenCase(const std::string& kind);

// prompt_token_ids (+ image0.png) with greedy sampling for exactly len(greedy_ids) tokens.
v1::GenerateRequest GoldenRequest(const GoldenCase& golden);

// A chat request: one user message with an optional image and a question.
v1::GenerateRequest ChatRequest(const std::string& question, const std::string& image,
                                uint32_t max_tokens);

std::string Image0Png();

struct StreamResult {
  grpc::Status status;
  std::vector<uint32_t> token_ids;
  std::string text;
  v1::GenerateStreamResponse last;
  int chunks = 0;
};

// Runs GenerateStream to the end.
StreamResult RunStream(v1::Glm4vService::Stub* stub, const v1::GenerateRequest& request,
                       absl::Duration timeout = absl::Seconds(30));

}  // namespace glm4v::testing
