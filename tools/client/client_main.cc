// Command-line client of the public API: sends a question (and optionally an image file) to the
// gateway, prints the answer as it streams in, then usage and timings on stderr.
//
//   client --address=127.0.0.1:50051 --image=cat.png "What is in this image?"
//   client --address=gw:50051 --tls_ca=ca.pem --api_key_file=key "Hi"   (a locked-down gateway)
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "protos/glm4v/v1/glm4v.grpc.pb.h"
#include "tools/common/gateway_connection.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051", "Gateway host:port.");
ABSL_FLAG(std::string, image, "", "PNG or JPEG file to ask about (optional).");
ABSL_FLAG(std::string, system, "", "Optional system message.");
ABSL_FLAG(int, max_tokens, 64, "Most tokens to generate.");
ABSL_FLAG(double, temperature, 0.0, "Sampling temperature (0 = greedy).");
ABSL_FLAG(double, top_p, 1.0, "Nucleus sampling mass.");
ABSL_FLAG(int, top_k, 0, "Top-k sampling (0 = off).");
ABSL_FLAG(int64_t, seed, -1, "Sampling seed (-1 = server's choice).");
ABSL_FLAG(std::vector<std::string>, stop, {}, "Stop strings (comma-separated).");
ABSL_FLAG(bool, ignore_eos, false, "Keep generating past the model's stop ids.");
ABSL_FLAG(int, timeout_seconds, 120, "Request deadline.");
ABSL_FLAG(bool, show_ids, false, "Also print the generated token ids.");

namespace {

const char* FinishName(glm4v::v1::FinishReason reason) {
  switch (reason) {
    case glm4v::v1::FINISH_REASON_STOP:
      return "stop";
    case glm4v::v1::FINISH_REASON_LENGTH:
      return "length";
    case glm4v::v1::FINISH_REASON_CANCELLED:
      return "cancelled";
    default:
      return "unspecified";
  }
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("client [flags] QUESTION...  (asks the GLM-4V gateway)");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> words(args.begin() + 1, args.end());
  const std::string question = absl::StrJoin(words, " ");
  if (question.empty()) {
    std::fprintf(stderr, "usage: client [--image=FILE] QUESTION\n");
    return 2;
  }

  glm4v::v1::GenerateRequest request;
  if (!absl::GetFlag(FLAGS_system).empty()) {
    glm4v::v1::ChatMessage* system = request.add_messages();
    system->set_role(glm4v::v1::ROLE_SYSTEM);
    system->add_content()->set_text(absl::GetFlag(FLAGS_system));
  }
  glm4v::v1::ChatMessage* user = request.add_messages();
  user->set_role(glm4v::v1::ROLE_USER);
  if (!absl::GetFlag(FLAGS_image).empty()) {
    std::string bytes;
    if (!ReadFile(absl::GetFlag(FLAGS_image), &bytes)) {
      std::fprintf(stderr, "cannot read %s\n", absl::GetFlag(FLAGS_image).c_str());
      return 2;
    }
    user->add_content()->mutable_image()->set_data(std::move(bytes));
  }
  user->add_content()->set_text(question);
  glm4v::v1::SamplingParams* sampling = request.mutable_sampling();
  sampling->set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  sampling->set_temperature(static_cast<float>(absl::GetFlag(FLAGS_temperature)));
  sampling->set_top_p(static_cast<float>(absl::GetFlag(FLAGS_top_p)));
  sampling->set_top_k(absl::GetFlag(FLAGS_top_k));
  if (absl::GetFlag(FLAGS_seed) >= 0) sampling->set_seed(absl::GetFlag(FLAGS_seed));
  for (const std::string& stop : absl::GetFlag(FLAGS_stop)) sampling->add_stop(stop);
  sampling->set_ignore_eos(absl::GetFlag(FLAGS_ignore_eos));

  absl::StatusOr<glm4v::tools::GatewayConnection> connection =
      glm4v::tools::GatewayConnectionFromFlags();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      connection.ok() ? glm4v::tools::CreateGatewayChannel(absl::GetFlag(FLAGS_address),
                                                           *connection)
                      : connection.status();
  if (!channel.ok()) {
    std::fprintf(stderr, "%s\n", std::string(channel.status().message()).c_str());
    return 2;
  }
  auto stub = glm4v::v1::Glm4vService::NewStub(*channel);
  grpc::ClientContext context;
  connection->Authorize(&context);
  context.set_deadline(
      absl::ToChronoTime(absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_timeout_seconds))));
  const absl::Time start = absl::Now();
  auto reader = stub->GenerateStream(&context, request);
  glm4v::v1::GenerateStreamResponse chunk, last;
  std::vector<uint32_t> ids;
  while (reader->Read(&chunk)) {
    std::fwrite(chunk.text_delta().data(), 1, chunk.text_delta().size(), stdout);
    std::fflush(stdout);
    ids.insert(ids.end(), chunk.token_ids().begin(), chunk.token_ids().end());
    last = chunk;
  }
  std::fputc('\n', stdout);
  std::fflush(stdout);
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    std::fprintf(stderr, "error: %d %s\n", static_cast<int>(status.error_code()),
                 status.error_message().c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_show_ids)) {
    std::fprintf(stderr, "ids: %s\n", absl::StrJoin(ids, " ").c_str());
  }
  const auto& usage = last.usage();
  const auto& t = last.timings();
  std::fprintf(stderr,
               "[request %s] finish=%s%s prompt_tokens=%u (image %u, cached %u) "
               "completion_tokens=%u\n"
               "[timings] queue=%.1fms vision=%.1fms ttft=%.1fms decode=%.1fms total=%.1fms "
               "(client %.1fms)\n",
               last.request_id().c_str(), FinishName(last.finish_reason()),
               last.matched_stop().empty() ? "" : (" stop=\"" + last.matched_stop() + "\"").c_str(),
               usage.prompt_tokens(), usage.image_tokens(), usage.cached_prompt_tokens(),
               usage.completion_tokens(), t.queue_ms(), t.vision_ms(), t.time_to_first_token_ms(),
               t.decode_ms(), t.total_ms(), absl::ToDoubleMilliseconds(absl::Now() - start));
  return 0;
}
