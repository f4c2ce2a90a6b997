// libFuzzer entry point for the OpenAI HTTP front's request path: JSON body -> GenerateRequest,
// data-URL decoding, and (for bodies that parse) the response encoders fed with the parsed text.
// Build with clang -fsanitize=fuzzer,address to fuzz for real; the cc_test next to it replays a
// deterministic mutation corpus through the same function.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "services/gateway/openai/chat_request.h"
#include "services/gateway/openai/completion_request.h"
#include "services/gateway/openai/glm4_tools.h"
#include "services/gateway/openai/chat_response.h"
#include "services/gateway/openai/data_url.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();  // an invariant broke: the fuzzer reports the input
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  glm4v::openai::ChatCompletionRequest request;
  glm4v::openai::OpenAiError error;
  const bool ok =
      glm4v::openai::ParseChatCompletionRequest(input, {"glm-4v-9b"}, &request, &error);
  if (ok) {
    // A parsed request is always something the gateway can be asked.
    Check(request.generate.messages_size() > 0);
    Check(request.top_logprobs >= 0 && request.top_logprobs <= 20);
    Check(!request.include_usage || request.stream);
    for (const auto& m : request.generate.messages()) {
      Check(m.role() != glm4v::v1::ROLE_UNSPECIFIED);
    }
    // Echo the prompt text through the encoders, as a response would carry arbitrary text.
    Check(request.n >= 1 && request.n <= 16);
    glm4v::openai::CompletionContext ctx;
    ctx.id = "chatcmpl-fuzz";
    ctx.model = "glm-4v-9b";
    ctx.logprobs = request.logprobs;
    ctx.top_logprobs = request.top_logprobs;
    ctx.tool_names = request.tool_names;
    ctx.forced_tool = request.forced_tool;
    glm4v::openai::ChatStreamEncoder encoder(ctx, request.include_usage);
    glm4v::v1::GenerateStreamResponse chunk;
    for (const auto& part : request.generate.messages(0).content()) {
      if (part.has_text()) chunk.set_text_delta(part.text());
    }
    chunk.set_finish_reason(glm4v::v1::FINISH_REASON_STOP);
    Check(!encoder.Next(chunk).empty());
  } else {
    Check(error.http_status == 400 || error.http_status == 404);
    Check(!error.message.empty());
  }
  // The completions parser and the tool-call parser on the same bytes.
  glm4v::openai::CompletionRequest completion;
  if (glm4v::openai::ParseCompletionRequest(input, {"glm-4v-9b"}, &completion, &error)) {
    Check(!completion.prompts.empty());
    Check(completion.logprobs >= -1 && completion.logprobs <= 5);
  } else {
    Check(error.http_status == 400 || error.http_status == 404);
  }
  if (auto call = glm4v::openai::ParseGlm4ToolCall(input, {"get_weather"})) {
    Check(call->name == "get_weather");
  }
  // The image decoder alone, on the raw bytes as a URL.
  auto image = glm4v::openai::DecodeImageUrl(input);
  if (image.ok()) Check(image->bytes.size() <= size);
  return 0;
}
