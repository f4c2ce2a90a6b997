#include "services/gateway/openai/openai_http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"
#include "protos/glm4v/v1/glm4v.grpc.pb.h"
#include "services/common/health_probe.h"
#include "services/common/request_id.h"
#include "services/gateway/openai/chat_request.h"
#include "services/gateway/response_assembly.h"
#include "services/gateway/openai/chat_response.h"
#include "services/gateway/openai/json_dump.h"
#include "services/gateway/openai/openai_error.h"

namespace glm4v::openai {
namespace {

using nlohmann::json;

constexpr char kJson[] = "application/json";

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(DumpJson(body), kJson);
}

void SendError(httplib::Response& res, const OpenAiError& error) {
  SendJson(res, error.http_status, ErrorToJson(error));
}

// One server-streaming call, shared by the content provider and the resource releaser (which
// httplib runs even when the provider never ran, e.g. the client left before the headers).
struct StreamCall {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<glm4v::v1::GenerateStreamResponse>> reader;
  bool finished = false;
  grpc::Status status;

  grpc::Status Finish() {
    if (!finished) {
      glm4v::v1::GenerateStreamResponse ignored;
      while (reader->Read(&ignored)) {
      }
      status = reader->Finish();
      finished = true;
    }
    return status;
  }
  // The HTTP client is gone: stop generating for it.
  void Cancel() {
    if (finished) return;
    context.TryCancel();
    Finish();
  }
};

// A non-streaming completion after its first message: a thread reads the rest of the stream
// while the HTTP side waits for it.
struct UnaryCall {
  std::shared_ptr<StreamCall> call;
  absl::Mutex mu;
  absl::CondVar ready;
  bool done ABSL_GUARDED_BY(mu) = false;
  glm4v::v1::GenerateResponse response;  // written by the reader until done
  std::thread reader;

  void Start(glm4v::v1::GenerateStreamResponse& first) {
    AppendStreamChunk(first, &response);
    reader = std::thread([this]() {
      glm4v::v1::GenerateStreamResponse message;
      while (call->reader->Read(&message)) AppendStreamChunk(message, &response);
      call->Finish();
      absl::MutexLock lock(&mu);
      done = true;
      ready.SignalAll();
    });
  }
  // True once the stream ended; false after `timeout` without.
  bool WaitDone(absl::Duration timeout) {
    absl::MutexLock lock(&mu);
    if (!done) ready.WaitWithTimeout(&mu, timeout);
    return done;
  }
  void CancelAndJoin() {
    call->context.TryCancel();
    if (reader.joinable()) reader.join();
  }
  ~UnaryCall() { CancelAndJoin(); }
};

}  // namespace

struct OpenAiHttpServer::Impl {
  Options options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<glm4v::v1::Glm4vService::Stub> stub;
  int64_t created = 0;
  httplib::Server server;
  std::thread thread;
  absl::Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = false;

  void HandleChat(const httplib::Request& req, httplib::Response& res);
  void HandleUnary(const ChatCompletionRequest& request, const CompletionContext& ctx,
                   httplib::Response& res);
  void HandleStream(const ChatCompletionRequest& request, CompletionContext ctx,
                    httplib::Response& res);
  // With the limits of GetModelInfo when the gateway answers (vLLM's `max_model_len` field is
  // what OpenAI-compatible clients read for the context length).
  json ModelObject() const {
    json model = {{"id", options.model_name},
                  {"object", "model"},
                  {"created", created},
                  {"owned_by", "glm4v-serving"}};
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    glm4v::v1::ModelInfo info;
    if (stub->GetModelInfo(&context, glm4v::v1::GetModelInfoRequest(), &info).ok()) {
      model["max_model_len"] = info.context_length();
      model["max_prompt_tokens"] = info.max_prompt_tokens();
      model["accepts_images"] = info.accepts_images();
    }
    return model;
  }
};

void OpenAiHttpServer::Impl::HandleChat(const httplib::Request& req, httplib::Response& res) {
  ChatCompletionRequest request;
  OpenAiError error;
  if (!ParseChatCompletionRequest(req.body, {options.model_name}, &request, &error)) {
    SendError(res, error);
    return;
  }
  const std::string request_id = RequestIdOrNew(req.get_header_value("X-Request-Id"));
  request.generate.set_request_id(request_id);
  res.set_header("X-Request-Id", request_id);
  CompletionContext ctx;
  ctx.id = absl::StrCat("chatcmpl-", request_id);
  ctx.created = absl::ToUnixSeconds(absl::Now());
  ctx.model = options.model_name;
  ctx.logprobs = request.logprobs;
  ctx.top_logprobs = request.top_logprobs;
  if (request.stream) {
    HandleStream(request, std::move(ctx), res);
  } else {
    HandleUnary(request, ctx, res);
  }
}

// Runs as a stream so that a client that goes away is noticed: once generation has started
// (rejections before that are ordinary HTTP errors), the 200 is sent with a chunked body that
// carries a space every 100 ms (leading whitespace is valid JSON) until the completion is
// written; a write that fails means the client left, and the call is cancelled, so the worker
// frees the sequence's KV at once instead of decoding until max_tokens.
void OpenAiHttpServer::Impl::HandleUnary(const ChatCompletionRequest& request,
                                         const CompletionContext& ctx, httplib::Response& res) {
  auto unary = std::make_shared<UnaryCall>();
  unary->call = std::make_shared<StreamCall>();
  StreamCall& call = *unary->call;
  call.reader = stub->GenerateStream(&call.context, request.generate);
  glm4v::v1::GenerateStreamResponse first;
  if (!call.reader->Read(&first)) {
    const grpc::Status status = call.Finish();
    SendError(res, status.ok() ? OpenAiError{500, "stream ended without a response"}
                               : ErrorFromGrpcStatus(status));
    return;
  }
  unary->Start(first);
  res.set_chunked_content_provider(
      kJson,
      [unary, ctx](size_t /*offset*/, httplib::DataSink& sink) {
        while (!unary->WaitDone(absl::Milliseconds(100))) {
          if (!sink.write(" ", 1)) {
            unary->CancelAndJoin();
            return false;
          }
        }
        unary->CancelAndJoin();  // joins the finished reader
        const grpc::Status& status = unary->call->status;
        std::string body;
        if (!status.ok()) {
          body = DumpJson(ErrorToJson(ErrorFromGrpcStatus(status)));
        } else if (unary->response.finish_reason() == glm4v::v1::FINISH_REASON_UNSPECIFIED) {
          body = DumpJson(ErrorToJson(OpenAiError{500, "stream ended without a finish reason"}));
        } else {
          body = DumpJson(CompletionToJson(unary->response, ctx));
        }
        sink.write(body.data(), body.size());
        sink.done();
        return true;
      },
      [unary](bool /*success*/) { unary->CancelAndJoin(); });
}

void OpenAiHttpServer::Impl::HandleStream(const ChatCompletionRequest& request,
                                          CompletionContext ctx, httplib::Response& res) {
  auto call = std::make_shared<StreamCall>();
  call->reader = stub->GenerateStream(&call->context, request.generate);
  // Wait for the first message before committing to 200 + event-stream, so that rejections
  // (invalid argument, overload, drain) come back as proper HTTP errors.
  auto first = std::make_shared<glm4v::v1::GenerateStreamResponse>();
  if (!call->reader->Read(first.get())) {
    const grpc::Status status = call->Finish();
    SendError(res, status.ok() ? OpenAiError{500, "stream ended without a response"}
                               : ErrorFromGrpcStatus(status));
    return;
  }
  auto encoder = std::make_shared<ChatStreamEncoder>(std::move(ctx), request.include_usage);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // proxies must not buffer the stream
  res.set_chunked_content_provider(
      "text/event-stream",
      [call, encoder, first](size_t /*offset*/, httplib::DataSink& sink) {
        auto write = [&sink](const std::string& s) {
          return s.empty() || sink.write(s.data(), s.size());
        };
        // A failed write means the client went away: cancel so the engine stops decoding.
        if (!write(encoder->Start() + encoder->Next(*first))) {
          call->Cancel();
          return false;
        }
        glm4v::v1::GenerateStreamResponse message;
        while (!encoder->finished() && call->reader->Read(&message)) {
          if (!write(encoder->Next(message))) {
            call->Cancel();
            return false;
          }
        }
        const grpc::Status status = call->Finish();
        std::string tail;
        if (!status.ok()) {
          tail = encoder->Error(ErrorFromGrpcStatus(status));
        } else if (!encoder->finished()) {
          tail = encoder->Error(OpenAiError{500, "stream ended without a finish reason"});
        } else {
          tail = SseDone();
        }
        write(tail);
        sink.done();
        return true;
      },
      [call](bool /*success*/) { call->Cancel(); });
}

absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> OpenAiHttpServer::Start(
    std::shared_ptr<grpc::Channel> channel, Options options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->channel = std::move(channel);
  impl->stub = glm4v::v1::Glm4vService::NewStub(impl->channel);
  impl->created = absl::ToUnixSeconds(absl::Now());
  Impl* raw = impl.get();
  httplib::Server& server = raw->server;

  const int threads = std::max(1, raw->options.num_threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Only SO_REUSEADDR: httplib's default SO_REUSEPORT would let a second process share the port.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server.set_payload_max_length(raw->options.max_body_bytes);
  server.set_keep_alive_max_count(1000);

  server.Post("/v1/chat/completions", [raw](const httplib::Request& req, httplib::Response& res) {
    raw->HandleChat(req, res);
  });
  server.Get("/v1/models", [raw](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, {{"object", "list"}, {"data", json::array({raw->ModelObject()})}});
  });
  server.Get("/v1/models/(.+)", [raw](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != raw->options.model_name) {
      OpenAiError e = InvalidRequest(
          absl::StrCat("The model '", req.matches[1].str(), "' does not exist"), "model");
      e.http_status = 404;
      e.code = "model_not_found";
      SendError(res, e);
      return;
    }
    SendJson(res, 200, raw->ModelObject());
  });
  // Healthy when the gateway's own gRPC health says SERVING (NOT_SERVING while draining).
  server.Get("/health", [raw](const httplib::Request&, httplib::Response& res) {
    auto state = ProbeHealth(raw->channel, "", absl::Seconds(2));
    if (state.ok() && *state == ServingState::kServing) {
      SendJson(res, 200, {{"status", "ok"}});
    } else {
      SendJson(res, 503,
               {{"status", "unavailable"},
                {"reason", state.ok() ? "not serving" : std::string(state.status().message())}});
    }
  });
  // Routing misses, oversized bodies (413) and the like get OpenAI's error shape too.
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    OpenAiError e;
    e.http_status = res.status;
    e.type = "invalid_request_error";
    switch (res.status) {
      case 404:
        e.message = absl::StrCat("unknown endpoint ", req.method, " ", req.path);
        e.code = "not_found";
        break;
      case 405:
        e.message = absl::StrCat("method ", req.method, " not allowed on ", req.path);
        break;
      case 413:
        e.message = "request body too large";
        e.code = "request_too_large";
        break;
      default:
        e.message = absl::StrCat("HTTP ", res.status);
        if (res.status >= 500) e.type = "server_error";
        break;
    }
    SendError(res, e);
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = absl::StrCat("internal error: ", e.what());
        } catch (...) {
        }
        SendError(res, OpenAiError{500, what});
      });

  const std::string& host = raw->options.host;
  int port = raw->options.port;
  if (port == 0) {
    port = server.bind_to_any_port(host);
    if (port < 0) {
      return absl::UnavailableError(absl::StrCat("openai http: cannot bind ", host));
    }
  } else if (!server.bind_to_port(host, port)) {
    return absl::UnavailableError(absl::StrCat("openai http: cannot bind ", host, ":", port));
  }
  raw->thread = std::thread([raw] { raw->server.listen_after_bind(); });
  // stop() is a no-op until the accept loop runs; wait for it so an early Stop() cannot hang.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      server.stop();
      raw->thread.join();
      return absl::DeadlineExceededError("openai http: server did not start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  LOG_INFO("openai http listening").With("host", host).With("port", port).With(
      "model", raw->options.model_name);
  return std::unique_ptr<OpenAiHttpServer>(new OpenAiHttpServer(std::move(impl), port));
}

OpenAiHttpServer::OpenAiHttpServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

OpenAiHttpServer::~OpenAiHttpServer() { Stop(); }

void OpenAiHttpServer::Stop() {
  {
    absl::MutexLock lock(&impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace glm4v::openai
