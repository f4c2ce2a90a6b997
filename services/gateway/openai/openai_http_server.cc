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
#include "services/common/grpc_status.h"
#include "services/gateway/auth/internal_caller.h"
#include "services/gateway/openai/chat_request.h"
#include "services/gateway/openai/choice_fanout.h"
#include "services/gateway/openai/completion_request.h"
#include "services/gateway/openai/image_fetcher.h"
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

// gRPC metadata values must be printable ASCII; anything else cannot be a valid key anyway.
bool PrintableAscii(const std::string& s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// One GenerateRequest per choice: n copies of each prompt, request ids "<id>-<i>" when there is
// more than one, and choice k of a prompt seeded seed + k (reproducible, yet the choices differ).
std::vector<glm4v::v1::GenerateRequest> ExpandChoices(
    const std::vector<glm4v::v1::GenerateRequest>& prompts, int n, const std::string& request_id) {
  std::vector<glm4v::v1::GenerateRequest> out;
  const size_t total = prompts.size() * n;
  for (const glm4v::v1::GenerateRequest& prompt : prompts) {
    for (int k = 0; k < n; ++k) {
      out.push_back(prompt);
      glm4v::v1::GenerateRequest& choice = out.back();
      choice.set_request_id(total == 1 ? request_id : absl::StrCat(request_id, "-", out.size() - 1));
      glm4v::v1::SamplingParams* s = choice.mutable_sampling();
      if (s->has_seed()) s->set_seed(s->seed() + k);
    }
  }
  return out;
}

// The request id (the caller's X-Request-Id or a new one, echoed) and what every object of the
// completion shares.
CompletionContext NewContext(const httplib::Request& req, httplib::Response& res,
                             CompletionKind kind, const std::string& model, int n,
                             std::string* request_id) {
  *request_id = RequestIdOrNew(req.get_header_value("X-Request-Id"));
  res.set_header("X-Request-Id", *request_id);
  CompletionContext ctx;
  ctx.id = absl::StrCat(kind == CompletionKind::kChat ? "chatcmpl-" : "cmpl-", *request_id);
  ctx.created = absl::ToUnixSeconds(absl::Now());
  ctx.model = model;
  ctx.kind = kind;
  ctx.n = n;
  return ctx;
}

}  // namespace

struct OpenAiHttpServer::Impl {
  Options options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<glm4v::v1::Glm4vService::Stub> stub;
  std::unique_ptr<ImageFetcher> fetcher;
  int64_t created = 0;
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  absl::Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = false;

  RequestLimits Limits() const {
    RequestLimits limits;
    limits.model_name = options.model_name;
    limits.max_choices = options.max_choices;
    limits.accepts_tools = options.accepts_tools;
    return limits;
  }
  // Who calls: the key's concurrency slot, held until the HTTP request is answered (null
  // without keys), and the metadata its gRPC calls carry.
  struct Caller {
    std::shared_ptr<auth::ApiKeyStore::Lease> lease;
    ChoiceFanout::Metadata metadata;
  };
  // Checks the Authorization header; false (and 401 / 429 sent) when refused.
  bool Admit(const httplib::Request& req, httplib::Response& res, Caller* caller) const {
    const std::string header = req.get_header_value("Authorization");
    if (!PrintableAscii(header)) {
      SendError(res, ErrorFromGrpcStatus(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                                      "malformed Authorization header")));
      return false;
    }
    if (options.api_keys == nullptr) {
      // No keys here; the gRPC service decides (it has none either in the gateway).
      if (!header.empty()) caller->metadata.push_back({"authorization", header});
      return true;
    }
    std::string key_id;
    absl::StatusOr<auth::ApiKeyStore::Lease> lease = options.api_keys->Authorize(header, &key_id);
    if (!lease.ok()) {
      const grpc::Status status = ToGrpcStatus(lease.status());
      if (!key_id.empty() && options.on_key_refused) {
        options.on_key_refused(key_id, GrpcCodeName(status.error_code()).c_str());
      }
      SendError(res, ErrorFromGrpcStatus(status));
      return false;
    }
    caller->lease = std::make_shared<auth::ApiKeyStore::Lease>(*std::move(lease));
    caller->metadata = {{auth::kInternalTokenMetadata, options.internal_token},
                        {auth::kInternalKeyIdMetadata, key_id}};
    return true;
  }

  void HandleChat(const httplib::Request& req, httplib::Response& res);
  void HandleCompletions(const httplib::Request& req, httplib::Response& res);
  // Runs the choices and answers with one JSON object or an event stream.
  void Generate(std::vector<glm4v::v1::GenerateRequest> requests, CompletionContext ctx,
                bool stream, bool include_usage, const Caller& caller,
                httplib::Response& res);
  // Fills the http(s) image parts of a chat request; false (and the error sent) on failure.
  bool FetchImages(ChatCompletionRequest* request, httplib::Response& res) const;
  // GetModelInfo as the caller: UNAUTHENTICATED / PERMISSION_DENIED when the key is refused,
  // RESOURCE_EXHAUSTED when it is at its concurrency limit; other failures leave `info` empty
  // (the model object is still listed).
  grpc::Status FetchModelInfo(const Caller& caller, glm4v::v1::ModelInfo* info) const {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    for (const auto& [key, value] : caller.metadata) context.AddMetadata(key, value);
    const grpc::Status status =
        stub->GetModelInfo(&context, glm4v::v1::GetModelInfoRequest(), info);
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        status.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
        status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      return status;
    }
    if (!status.ok()) info->Clear();
    return grpc::Status::OK;
  }
  // The model object, with the limits of GetModelInfo when the gateway answers (vLLM's
  // `max_model_len` field is what OpenAI-compatible clients read for the context length).
  json ModelObject(const glm4v::v1::ModelInfo& info) const {
    json model = {{"id", options.model_name},
                  {"object", "model"},
                  {"created", created},
                  {"owned_by", "glm4v-serving"}};
    if (info.context_length() > 0) {
      model["max_model_len"] = info.context_length();
      model["max_prompt_tokens"] = info.max_prompt_tokens();
      model["accepts_images"] = info.accepts_images();
    }
    return model;
  }
};

bool OpenAiHttpServer::Impl::FetchImages(ChatCompletionRequest* request,
                                         httplib::Response& res) const {
  for (const PendingImageUrl& pending : request->image_urls) {
    if (fetcher == nullptr) {
      SendError(res, InvalidRequest("this server accepts images as data URLs only", pending.param));
      return false;
    }
    auto image = fetcher->Fetch(pending.url);
    if (!image.ok()) {
      OpenAiError e = ErrorFromGrpcStatus(ToGrpcStatus(image.status()));
      e.message = absl::StrCat(pending.param, ": ", image.status().message());
      e.param = pending.param;
      SendError(res, e);
      return false;
    }
    glm4v::v1::ImagePart* part = request->generate.mutable_messages(pending.message)
                                     ->mutable_content(pending.part)
                                     ->mutable_image();
    part->set_data(std::move(image->bytes));
    part->set_mime_type(image->mime_type);
  }
  return true;
}

void OpenAiHttpServer::Impl::HandleChat(const httplib::Request& req, httplib::Response& res) {
  // The key first: a caller without one gets 401 before its body is parsed or a byte fetched.
  Caller caller;
  if (!Admit(req, res, &caller)) return;
  ChatCompletionRequest request;
  OpenAiError error;
  if (!ParseChatCompletionRequest(req.body, Limits(), &request, &error)) {
    SendError(res, error);
    return;
  }
  if (!request.image_urls.empty()) {
    // The image limit before anything is fetched (the gRPC validator would only see it after
    // every URL was downloaded).
    glm4v::v1::ModelInfo info;
    if (grpc::Status s = FetchModelInfo(caller, &info); !s.ok()) {
      SendError(res, ErrorFromGrpcStatus(s));
      return;
    }
    int images = 0;
    for (const auto& message : request.generate.messages()) {
      for (const auto& part : message.content()) images += part.has_image() ? 1 : 0;
    }
    const int limit = info.accepts_images() ? static_cast<int>(info.max_images_per_request()) : 0;
    if (info.context_length() > 0 && images > limit) {
      SendError(res, InvalidRequest(
                         info.accepts_images()
                             ? absl::StrCat(images, " images; the limit is ", limit, " per request")
                             : absl::StrCat("model '", options.model_name,
                                            "' is text-only and takes no images"),
                         "messages"));
      return;
    }
    if (!FetchImages(&request, res)) return;
  }
  std::string request_id;
  CompletionContext ctx =
      NewContext(req, res, CompletionKind::kChat, options.model_name, request.n, &request_id);
  ctx.logprobs = request.logprobs;
  ctx.top_logprobs = request.top_logprobs;
  ctx.tool_names = request.tool_names;
  ctx.forced_tool = request.forced_tool;
  if (!request.user.empty()) {
    LOG_INFO("openai request").With("request_id", request_id).With("user", request.user);
  }
  Generate(ExpandChoices({request.generate}, request.n, request_id), std::move(ctx),
           request.stream, request.include_usage, caller, res);
}

void OpenAiHttpServer::Impl::HandleCompletions(const httplib::Request& req,
                                               httplib::Response& res) {
  Caller caller;
  if (!Admit(req, res, &caller)) return;
  CompletionRequest request;
  OpenAiError error;
  if (!ParseCompletionRequest(req.body, Limits(), &request, &error)) {
    SendError(res, error);
    return;
  }
  std::string request_id;
  CompletionContext ctx =
      NewContext(req, res, CompletionKind::kText, options.model_name, request.n, &request_id);
  ctx.logprobs = request.logprobs >= 0;
  ctx.top_logprobs = std::max(0, request.logprobs);
  if (!request.user.empty()) {
    LOG_INFO("openai request").With("request_id", request_id).With("user", request.user);
  }
  Generate(ExpandChoices(request.prompts, request.n, request_id), std::move(ctx), request.stream,
           request.include_usage, caller, res);
}

// How long a stream may go without a byte before a keep-alive comment is sent.
constexpr absl::Duration kStreamKeepAlive = absl::Seconds(1);

// Waits for the first message before committing to 200, so that rejections (invalid argument,
// overload, drain, a bad key) come back as proper HTTP errors. After that a non-streaming
// answer is sent as a chunked body that carries a space every 100 ms (leading whitespace is
// valid JSON) until the completion is written: a write that fails means the client left, and
// every call is cancelled, so the workers free the sequences' KV at once instead of decoding
// until max_tokens. A streaming answer notices the same through its event writes.

void OpenAiHttpServer::Impl::Generate(std::vector<glm4v::v1::GenerateRequest> requests,
                                      CompletionContext ctx, bool stream, bool include_usage,
                                      const Caller& caller, httplib::Response& res) {
  const int n = ctx.n;
  auto fanout =
      std::make_shared<ChoiceFanout>(stub.get(), std::move(requests), n, caller.metadata);
  // The key's slot stays taken until the last byte is sent (the providers below hold it).
  std::shared_ptr<auth::ApiKeyStore::Lease> lease = caller.lease;
  auto first = std::make_shared<ChoiceFanout::Event>();
  fanout->Next(absl::InfiniteDuration(), first.get());
  if (first->end && !first->status.ok()) {
    fanout->Cancel();
    SendError(res, ErrorFromGrpcStatus(first->status));
    return;
  }
  if (stream) {
    auto encoder = std::make_shared<ChatStreamEncoder>(std::move(ctx), include_usage,
                                                       fanout->num_choices());
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");  // proxies must not buffer the stream
    res.set_chunked_content_provider(
        "text/event-stream",
        [fanout, encoder, first](size_t /*offset*/, httplib::DataSink& sink) {
          auto write = [&sink](const std::string& s) {
            return s.empty() || sink.write(s.data(), s.size());
          };
          int ended = 0;
          std::string events = encoder->Start();
          ChoiceFanout::Event event = std::move(*first);
          bool have_event = true;
          absl::Time last_write = absl::Now();
          while (true) {
            if (have_event && event.end) {
              ++ended;
              if (!event.status.ok()) {
                fanout->Cancel();
                write(events + encoder->Error(ErrorFromGrpcStatus(event.status)));
                sink.done();
                return true;
              }
            } else if (have_event) {
              events += encoder->Next(event.choice, event.message);
            }
            // Nothing to send for a while (a tool call held back until it ends): an SSE comment,
            // which clients skip, so that the write notices a client that left and proxies
            // do not cut an idle stream.
            if (events.empty() && absl::Now() - last_write >= kStreamKeepAlive) {
              events = ": keep-alive\n\n";
            }
            if (!events.empty()) {
              // A failed write means the client went away: cancel so the engine stops decoding.
              if (!write(events)) {
                fanout->Cancel();
                return false;
              }
              last_write = absl::Now();
              events.clear();
            }
            if (ended == fanout->num_choices()) break;
            have_event = fanout->Next(
                std::max(last_write + kStreamKeepAlive - absl::Now(), absl::ZeroDuration()),
                &event);
          }
          write(encoder->finished()
                    ? SseDone()
                    : encoder->Error(OpenAiError{500, "stream ended without a finish reason"}));
          sink.done();
          return true;
        },
        [fanout, lease](bool /*success*/) { fanout->Cancel(); });
    return;
  }
  auto responses =
      std::make_shared<std::vector<glm4v::v1::GenerateResponse>>(fanout->num_choices());
  res.set_chunked_content_provider(
      kJson,
      [fanout, responses, first, ctx](size_t /*offset*/, httplib::DataSink& sink) {
        int ended = 0;
        grpc::Status failure;
        ChoiceFanout::Event event = std::move(*first);
        bool have_event = true;
        // A heartbeat every 100 ms however fast tokens come: the write is what notices a
        // client that left.
        absl::Time next_beat = absl::Now() + absl::Milliseconds(100);
        while (ended < fanout->num_choices() && failure.ok()) {
          if (have_event) {
            if (event.end) {
              ++ended;
              if (!event.status.ok()) failure = event.status;
            } else {
              AppendStreamChunk(event.message, &(*responses)[event.choice]);
            }
          }
          if (absl::Now() >= next_beat) {
            if (!sink.write(" ", 1)) {
              fanout->Cancel();
              return false;
            }
            next_beat = absl::Now() + absl::Milliseconds(100);
          }
          if (ended == fanout->num_choices()) break;
          have_event = fanout->Next(std::max(next_beat - absl::Now(), absl::ZeroDuration()), &event);
        }
        fanout->Cancel();  // joins the finished readers (or stops the rest after a failure)
        std::string body;
        if (!failure.ok()) {
          body = DumpJson(ErrorToJson(ErrorFromGrpcStatus(failure)));
        } else if (std::any_of(responses->begin(), responses->end(), [](const auto& r) {
                     return r.finish_reason() == glm4v::v1::FINISH_REASON_UNSPECIFIED;
                   })) {
          body = DumpJson(ErrorToJson(OpenAiError{500, "stream ended without a finish reason"}));
        } else {
          body = DumpJson(CompletionToJson(*responses, ctx));
        }
        sink.write(body.data(), body.size());
        sink.done();
        return true;
      },
      [fanout, lease](bool /*success*/) { fanout->Cancel(); });
}

absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> OpenAiHttpServer::Start(
    std::shared_ptr<grpc::Channel> channel, Options options) {
  if (options.api_keys != nullptr && options.internal_token.empty()) {
    return absl::InvalidArgumentError("openai http: api keys need the gateway's internal token");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->channel = std::move(channel);
  impl->stub = glm4v::v1::Glm4vService::NewStub(impl->channel);
  impl->created = absl::ToUnixSeconds(absl::Now());
  Impl* raw = impl.get();
  if (raw->options.image_fetch.has_value()) {
    raw->fetcher = std::make_unique<ImageFetcher>(*raw->options.image_fetch);
  }
  if (raw->options.tls != nullptr) {
    auto tls = raw->options.tls;
    raw->server = std::make_unique<httplib::SSLServer>([tls](SSL_CTX& ctx) {
      tls->Install(&ctx);
      return true;
    });
    if (!raw->server->is_valid()) {
      return absl::InternalError("openai http: the TLS context could not be made");
    }
  } else {
    raw->server = std::make_unique<httplib::Server>();
  }
  httplib::Server& server = *raw->server;

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
  server.Post("/v1/completions", [raw](const httplib::Request& req, httplib::Response& res) {
    raw->HandleCompletions(req, res);
  });
  // The model objects need a valid key as the completions do (OpenAI's /v1/models does).
  auto model_object = [raw](const httplib::Request& req, httplib::Response& res, json* model) {
    Impl::Caller caller;
    if (!raw->Admit(req, res, &caller)) return false;
    glm4v::v1::ModelInfo info;
    if (grpc::Status s = raw->FetchModelInfo(caller, &info); !s.ok()) {
      SendError(res, ErrorFromGrpcStatus(s));
      return false;
    }
    *model = raw->ModelObject(info);
    return true;
  };
  server.Get("/v1/models", [model_object](const httplib::Request& req, httplib::Response& res) {
    json model;
    if (!model_object(req, res, &model)) return;
    SendJson(res, 200, {{"object", "list"}, {"data", json::array({std::move(model)})}});
  });
  server.Get("/v1/models/(.+)", [raw, model_object](const httplib::Request& req,
                                                    httplib::Response& res) {
    json model;
    if (!model_object(req, res, &model)) return;
    if (req.matches[1] != raw->options.model_name) {
      OpenAiError e = InvalidRequest(
          absl::StrCat("The model '", req.matches[1].str(), "' does not exist"), "model");
      e.http_status = 404;
      e.code = "model_not_found";
      SendError(res, e);
      return;
    }
    SendJson(res, 200, model);
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
  raw->thread = std::thread([raw] { raw->server->listen_after_bind(); });
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
  LOG_INFO("openai http listening")
      .With("host", host)
      .With("port", port)
      .With("tls", raw->options.tls != nullptr)
      .With("model", raw->options.model_name);
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
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace glm4v::openai
