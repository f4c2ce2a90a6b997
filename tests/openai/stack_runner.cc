// Starts the real stack (tests/stack/service_stack.h), runs a command against it, stops the stack
// and exits with the command's status. "{http_port}" and "{grpc_address}" in the command's
// arguments are replaced with the gateway's. For tests written in other languages:
//
//   stack_runner [--test_front] -- node chat_test.mjs --base_url=http://127.0.0.1:{http_port}/v1
//
// --test_front serves the HTTP API from this process (an OpenAiHttpServer talking gRPC to the
// gateway) instead of the gateway's own --http_port: for debugging the HTTP layer alone.
// --model_dir=DIR --no_vision (a text-only model), --gateway_flag=--x=y, --worker_flag=...,
// --vision_flag=... (repeatable) shape the stack; --backend_tls_ca/_cert/_key are this
// process's credentials for its own probes when the stack runs with TLS.
#include <sys/wait.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "services/common/backend_channel.h"
#include "services/common/child_process.h"
#include "services/common/tls_credentials.h"
#include "services/gateway/openai/openai_http_server.h"
#include "tests/stack/service_stack.h"

int main(int argc, char** argv) {
  std::vector<std::string> command;
  bool after_dashes = false;
  bool test_front = false;
  glm4v::testing::StackOptions stack_options;
  glm4v::TlsClientFiles probe_tls;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    absl::string_view value = arg;
    if (!after_dashes && arg == "--") {
      after_dashes = true;
    } else if (after_dashes) {
      command.push_back(arg);
    } else if (arg == "--test_front") {
      test_front = true;
    } else if (arg == "--no_vision") {
      stack_options.vision = false;
    } else if (absl::ConsumePrefix(&value, "--model_dir=")) {
      stack_options.model_dir = std::string(value);
    } else if (absl::ConsumePrefix(&value, "--gateway_flag=")) {
      stack_options.gateway_flags.emplace_back(value);
    } else if (absl::ConsumePrefix(&value, "--worker_flag=")) {
      stack_options.worker_flags.emplace_back(value);
    } else if (absl::ConsumePrefix(&value, "--vision_flag=")) {
      stack_options.vision_flags.emplace_back(value);
    } else if (absl::ConsumePrefix(&value, "--backend_tls_ca=")) {
      probe_tls.ca = std::string(value);
    } else if (absl::ConsumePrefix(&value, "--backend_tls_cert=")) {
      probe_tls.cert = std::string(value);
    } else if (absl::ConsumePrefix(&value, "--backend_tls_key=")) {
      probe_tls.key = std::string(value);
    } else {
      std::cerr << "stack_runner: unknown flag " << arg << "\n";
      return 2;
    }
  }
  if (command.empty()) {
    std::cerr << "usage: stack_runner -- <command> [args...]\n";
    return 2;
  }
  auto credentials = glm4v::ChannelCredentialsFromFiles(probe_tls);
  if (!credentials.ok()) {
    std::cerr << "stack_runner: " << credentials.status() << "\n";
    return 2;
  }
  glm4v::SetBackendChannelCredentials(*credentials);
  auto stack = glm4v::testing::Stack::Start(stack_options);
  if (!stack.ok()) {
    std::cerr << "stack_runner: " << stack.status() << "\n";
    return 1;
  }
  int http_port = (*stack)->http_port();
  std::unique_ptr<glm4v::openai::OpenAiHttpServer> front;
  if (test_front) {
    glm4v::openai::OpenAiHttpServer::Options options;
    options.host = "127.0.0.1";
    auto started = glm4v::openai::OpenAiHttpServer::Start(
        grpc::CreateChannel((*stack)->gateway_address(), grpc::InsecureChannelCredentials()),
        options);
    if (!started.ok()) {
      std::cerr << "stack_runner: " << started.status() << "\n";
      return 1;
    }
    front = *std::move(started);
    http_port = front->port();
  }
  for (std::string& arg : command) {
    arg = absl::StrReplaceAll(arg, {{"{http_port}", absl::StrCat(http_port)},
                                    {"{grpc_address}", (*stack)->gateway_address()}});
  }
  glm4v::ChildProcess::Options options;
  options.log_path = "";  // inherit stdout/stderr: the command's output is the test log
  auto child = glm4v::ChildProcess::Start(command, options);
  if (!child.ok()) {
    std::cerr << "stack_runner: " << child.status() << "\n";
    return 1;
  }
  (*child)->WaitFor(absl::InfiniteDuration());
  const int status = (*child)->wait_status();
  if (!(*child)->succeeded()) {
    std::cerr << "stack_runner: command failed (" << (*child)->DescribeExit() << "); gateway log "
              << "tail:\n" << (*stack)->LogTail(glm4v::testing::Stack::kGateway) << "\n";
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
