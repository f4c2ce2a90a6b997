// Load generator for the public Glm4vService, in the style of serving benchmarks:
//
//   loadgen --target=127.0.0.1:50051 --num_requests=200 --request_rate=20
//           --input_len=64 --output_len=32 --image=tests/data/tiny-glm4v/image0.png
//           --image_fraction=0.25 --model_dir=tests/data/tiny-glm4v/model --slo_ttft_ms=500
//
// Reports throughput, TTFT / TPOT / inter-token / end-to-end latency percentiles, errors by gRPC
// status and goodput under the SLO; --report_json writes the same as JSON.
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/model_config.h"
#include "tools/common/gateway_connection.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tools/loadgen/arrivals.h"
#include "tools/common/target_address.h"
#include "tools/loadgen/load_runner.h"
#include "tools/loadgen/prompt_factory.h"
#include "tools/loadgen/report.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "gateway gRPC address");
ABSL_FLAG(bool, allow_remote, false, "allow a target that is not on this machine");
ABSL_FLAG(int, num_requests, 100, "requests to send (0: until --duration_s)");
ABSL_FLAG(double, duration_s, 0, "stop sending after this many seconds (0: no limit)");
ABSL_FLAG(double, request_rate, 0, "mean arrivals per second (0 or inf: send as fast as allowed)");
ABSL_FLAG(std::string, arrival, "poisson", "poisson | constant");
ABSL_FLAG(int, max_concurrency, 0, "cap on requests in flight (0: none)");
ABSL_FLAG(bool, stream, true, "use GenerateStream (else unary Generate)");
ABSL_FLAG(std::string, prompt_mode, "tokens", "tokens (random prompt_token_ids) | chat (words)");
ABSL_FLAG(int, input_len, 128, "prompt length: tokens, or words in chat mode");
ABSL_FLAG(double, range_ratio, 0, "prompt lengths uniform in input_len*[1-r, 1+r]");
ABSL_FLAG(int, output_len, 64, "max_tokens of each request");
ABSL_FLAG(bool, ignore_eos, true, "generate exactly output_len tokens");
ABSL_FLAG(double, temperature, 0, "sampling temperature (0: greedy)");
ABSL_FLAG(std::string, image, "", "PNG/JPEG file sent with image requests");
ABSL_FLAG(double, image_fraction, 0, "fraction of requests that carry --image");
ABSL_FLAG(int, conversations, 0,
          "multi-turn workload (chat mode): this many conversations, each about one of --images "
          "under a shared system prompt, sent turn by turn with their history (0: off)");
ABSL_FLAG(int, turns, 4, "multi-turn: turns per conversation");
ABSL_FLAG(int, system_prompt_words, 200, "multi-turn: words of the shared system prompt");
ABSL_FLAG(std::vector<std::string>, images, {}, "multi-turn: PNG/JPEG files, one per conversation "
          "in turn");
ABSL_FLAG(std::string, model_dir, "",
          "model directory: its config.json gives the image-marker ids and the id range");
ABSL_FLAG(int64_t, token_id_min, -1, "lowest random prompt id (default 0)");
ABSL_FLAG(int64_t, token_id_max, -1,
          "random prompt ids stay below this (default: the lowest special id)");
ABSL_FLAG(double, slo_ttft_ms, 0, "goodput bound on time to first token (0: none)");
ABSL_FLAG(double, slo_tpot_ms, 0, "goodput bound on time per output token (0: none)");
ABSL_FLAG(double, drain_timeout_s, 60, "after sending stops, cancel what is left after this");
ABSL_FLAG(double, request_timeout_s, 0, "per-request gRPC deadline (0: none)");
ABSL_FLAG(uint64_t, seed, 1, "seed for prompts and arrivals");
ABSL_FLAG(std::string, report_json, "", "also write the report as JSON to this file");

namespace glm4v::loadgen {
namespace {

int Fail(const std::string& message) {
  std::cerr << "loadgen: " << message << "\n";
  return 2;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int Main() {
  const std::string target = absl::GetFlag(FLAGS_target);
  if (!absl::GetFlag(FLAGS_allow_remote) && !tools::IsLoopbackTarget(target)) {
    return Fail(absl::StrCat("refusing non-loopback target ", target,
                             " (pass --allow_remote to load a remote server)"));
  }
  RunOptions run;
  auto arrival = ParseArrivalKind(absl::GetFlag(FLAGS_arrival));
  if (!arrival.ok()) return Fail(std::string(arrival.status().message()));
  run.arrival = *arrival;
  run.request_rate = absl::GetFlag(FLAGS_request_rate);
  run.max_concurrency = absl::GetFlag(FLAGS_max_concurrency);
  run.num_requests = absl::GetFlag(FLAGS_num_requests);
  run.duration_s = absl::GetFlag(FLAGS_duration_s);
  run.stream = absl::GetFlag(FLAGS_stream);
  run.drain_timeout_s = absl::GetFlag(FLAGS_drain_timeout_s);
  run.request_timeout_s = absl::GetFlag(FLAGS_request_timeout_s);
  run.seed = absl::GetFlag(FLAGS_seed);
  if (run.num_requests <= 0 && run.duration_s <= 0) {
    return Fail("set --num_requests or --duration_s: a run must be bounded");
  }

  PromptOptions prompt;
  const std::string mode = absl::GetFlag(FLAGS_prompt_mode);
  if (mode != "tokens" && mode != "chat") return Fail("--prompt_mode must be tokens or chat");
  prompt.chat = mode == "chat";
  prompt.input_len = absl::GetFlag(FLAGS_input_len);
  prompt.range_ratio = absl::GetFlag(FLAGS_range_ratio);
  prompt.output_len = absl::GetFlag(FLAGS_output_len);
  prompt.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  prompt.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  prompt.image_fraction = absl::GetFlag(FLAGS_image_fraction);
  if (!absl::GetFlag(FLAGS_image).empty()) {
    const std::string path = absl::GetFlag(FLAGS_image);
    auto bytes = ReadFile(path);
    if (!bytes.ok()) return Fail(std::string(bytes.status().message()));
    prompt.image_bytes = *std::move(bytes);
    prompt.image_mime = absl::EndsWithIgnoreCase(path, ".png") ? "image/png" : "image/jpeg";
  }
  prompt.conversations = absl::GetFlag(FLAGS_conversations);
  prompt.turns = absl::GetFlag(FLAGS_turns);
  prompt.system_prompt_words = absl::GetFlag(FLAGS_system_prompt_words);
  for (const std::string& path : absl::GetFlag(FLAGS_images)) {
    auto bytes = ReadFile(path);
    if (!bytes.ok()) return Fail(std::string(bytes.status().message()));
    prompt.images.push_back(*std::move(bytes));
  }
  if (!absl::GetFlag(FLAGS_model_dir).empty()) {
    auto config = LoadModelConfig(absl::GetFlag(FLAGS_model_dir));
    if (!config.ok()) return Fail(config.status().ToString());
    ApplyModelConfig(*config, &prompt);
  }
  if (absl::GetFlag(FLAGS_token_id_min) >= 0) {
    prompt.token_id_min = static_cast<uint32_t>(absl::GetFlag(FLAGS_token_id_min));
  }
  if (absl::GetFlag(FLAGS_token_id_max) >= 0) {
    prompt.token_id_max = static_cast<uint32_t>(absl::GetFlag(FLAGS_token_id_max));
  }
  auto factory = PromptFactory::Create(prompt, run.seed);
  if (!factory.ok()) return Fail(std::string(factory.status().message()));

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  absl::StatusOr<tools::GatewayConnection> connection = tools::GatewayConnectionFromFlags();
  if (!connection.ok()) return Fail(std::string(connection.status().message()));
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      tools::CreateGatewayChannel(target, *connection, args);
  if (!channel.ok()) return Fail(std::string(channel.status().message()));
  run.authorization = connection->Authorization();
  if (!(*channel)->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    return Fail(absl::StrCat("cannot connect to ", target));
  }

  RunResult result = RunLoad(*channel, *factory, run);
  LoadReport report = BuildReport(result.records, result.duration_s,
                                  {absl::GetFlag(FLAGS_slo_ttft_ms), absl::GetFlag(FLAGS_slo_tpot_ms)});
  std::cout << FormatReport(report) << std::flush;
  const std::string json_path = absl::GetFlag(FLAGS_report_json);
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << ReportToJson(report).dump(2) << "\n";
    if (!out) return Fail(absl::StrCat("cannot write ", json_path));
  }
  return report.succeeded > 0 ? 0 : 1;
}

}  // namespace
}  // namespace glm4v::loadgen

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return glm4v::loadgen::Main();
}
