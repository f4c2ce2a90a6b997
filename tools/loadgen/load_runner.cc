#include "tools/loadgen/load_runner.h"

#include <chrono>
#include <memory>
#include <set>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "protos/glm4v/v1/glm4v.grpc.pb.h"
#include "services/common/grpc_status.h"

namespace glm4v::loadgen {
namespace {

using Clock = std::chrono::steady_clock;

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Calls in flight and finished records, shared by the dispatcher and the callbacks. Each call
// holds a reference (a call may still be letting go of it after RunLoad has returned).
//
// A call ends in two steps. Finish (from OnDone): its record is kept and it can no longer be
// cancelled. Release (after the call object, and with it its ClientContext, is destroyed): only
// then does it stop counting as in flight. RunLoad waits for Release, never just for Finish: a
// ClientContext holds a reference to the grpc::Channel, so a context destroyed on a gRPC callback
// thread after RunLoad returned could drop the last reference to the channel there, running
// ~Channel on a thread of the very callback queue it then shuts down and joins (gRPC 1.51 with
// the "nexting" callback-alternative queue: a use-after-free, `prior > 0` in ref_counted.h).
class Tracker {
 public:
  void Add(grpc::ClientContext* ctx) {
    absl::MutexLock lock(&mu_);
    live_.insert(ctx);
    ++outstanding_;
  }
  void Finish(grpc::ClientContext* ctx, RequestRecord record) {
    absl::MutexLock lock(&mu_);
    live_.erase(ctx);
    records_.push_back(std::move(record));
    last_done_ = Clock::now();
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    --outstanding_;
  }
  // Blocks until fewer than `limit` calls are in flight or `deadline`; false on timeout.
  bool WaitBelow(size_t limit, absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto below = [this, limit]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return outstanding_ < limit;
    };
    return mu_.AwaitWithDeadline(absl::Condition(&below), deadline);
  }
  // Cancels the calls that gRPC has not reported done yet.
  void CancelAll() {
    absl::MutexLock lock(&mu_);
    for (grpc::ClientContext* ctx : live_) ctx->TryCancel();
  }
  std::vector<RequestRecord> TakeRecords(Clock::time_point* last_done) {
    absl::MutexLock lock(&mu_);
    *last_done = last_done_;
    return std::move(records_);
  }

 private:
  absl::Mutex mu_;
  // Contexts of the calls not Finished yet: still safe to TryCancel.
  std::set<grpc::ClientContext*> live_ ABSL_GUARDED_BY(mu_);
  size_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;  // calls not Released yet
  std::vector<RequestRecord> records_ ABSL_GUARDED_BY(mu_);
  Clock::time_point last_done_ ABSL_GUARDED_BY(mu_);
};

void SetDeadline(grpc::ClientContext* ctx, double timeout_s) {
  if (timeout_s > 0) {
    // gRPC deadlines take system_clock time points.
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6)));
  }
}

// What every call owns: its request, context and record, and the tracker it reports to.
class CallBase {
 public:
  CallBase(glm4v::v1::Glm4vService::Stub* stub, glm4v::v1::GenerateRequest request,
           bool has_image, const RunOptions& options, std::shared_ptr<Tracker> tracker)
      : stub_(stub), request_(std::move(request)), tracker_(std::move(tracker)) {
    record_.has_image = has_image;
    SetDeadline(&ctx_, options.request_timeout_s);
    if (!options.authorization.empty()) ctx_.AddMetadata("authorization", options.authorization);
  }
  virtual ~CallBase() = default;

 protected:
  // Registers the call with the tracker and starts its clock.
  void BeginCall() {
    tracker_->Add(&ctx_);
    start_ = Clock::now();
  }
  // Records the end status and destroys the call (`this` is gone afterwards): the
  // ClientContext, and with it this call's reference to the channel, dies before the tracker
  // lets RunLoad return.
  void FinishCall(const grpc::Status& status) {
    record_.e2e_ms = MsBetween(start_, Clock::now());
    record_.status = GrpcCodeName(status.error_code());
    std::shared_ptr<Tracker> tracker = std::move(tracker_);
    tracker->Finish(&ctx_, std::move(record_));
    delete this;
    tracker->Release();
  }

  glm4v::v1::Glm4vService::Stub* stub_;
  glm4v::v1::GenerateRequest request_;
  std::shared_ptr<Tracker> tracker_;
  grpc::ClientContext ctx_;
  RequestRecord record_;
  Clock::time_point start_;
};

// One streaming request: TTFT at the first message with tokens, ITL between such messages.
class StreamCall : public grpc::ClientReadReactor<glm4v::v1::GenerateStreamResponse>,
                   private CallBase {
 public:
  using CallBase::CallBase;

  void Start() {
    BeginCall();
    stub_->async()->GenerateStream(&ctx_, &request_, this);
    StartRead(&message_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    const Clock::time_point now = Clock::now();
    if (message_.token_ids_size() > 0 || !message_.text_delta().empty()) {
      if (record_.ttft_ms < 0) {
        record_.ttft_ms = MsBetween(start_, now);
      } else {
        record_.itl_ms.push_back(MsBetween(last_token_, now));
      }
      last_token_ = now;
    }
    counted_tokens_ += message_.token_ids_size();
    if (message_.has_usage()) {
      record_.prompt_tokens = static_cast<int>(message_.usage().prompt_tokens());
      record_.cached_prompt_tokens = static_cast<int>(message_.usage().cached_prompt_tokens());
      usage_tokens_ = static_cast<int>(message_.usage().completion_tokens());
    }
    StartRead(&message_);
  }

  void OnDone(const grpc::Status& status) override {
    record_.output_tokens = usage_tokens_ > 0 ? usage_tokens_ : counted_tokens_;
    FinishCall(status);
  }

 private:
  glm4v::v1::GenerateStreamResponse message_;
  Clock::time_point last_token_;
  int counted_tokens_ = 0;
  int usage_tokens_ = 0;
};

// One unary request: TTFT is the whole latency.
class UnaryCall : private CallBase {
 public:
  using CallBase::CallBase;

  void Start() {
    BeginCall();
    stub_->async()->Generate(&ctx_, &request_, &response_, [this](grpc::Status status) {
      if (status.ok()) {
        record_.ttft_ms = MsBetween(start_, Clock::now());
        record_.prompt_tokens = static_cast<int>(response_.usage().prompt_tokens());
        record_.cached_prompt_tokens =
            static_cast<int>(response_.usage().cached_prompt_tokens());
        record_.output_tokens = static_cast<int>(response_.usage().completion_tokens());
      }
      FinishCall(status);
    });
  }

 private:
  glm4v::v1::GenerateResponse response_;
};

}  // namespace

RunResult RunLoad(const std::shared_ptr<grpc::Channel>& channel, PromptFactory& prompts,
                  const RunOptions& options) {
  auto stub = glm4v::v1::Glm4vService::NewStub(channel);
  auto tracker = std::make_shared<Tracker>();
  ArrivalProcess arrivals(options.arrival, options.request_rate, options.seed);
  const size_t limit = options.max_concurrency > 0 ? static_cast<size_t>(options.max_concurrency)
                                                   : static_cast<size_t>(-1);
  const absl::Time start = absl::Now();
  const absl::Time stop_sending = options.duration_s > 0
                                      ? start + absl::Seconds(options.duration_s)
                                      : absl::InfiniteFuture();
  const Clock::time_point first_send = Clock::now();
  absl::Time next = start;
  for (int sent = 0; options.num_requests <= 0 || sent < options.num_requests; ++sent) {
    if (next >= stop_sending) break;
    absl::SleepFor(next - absl::Now());
    if (!tracker->WaitBelow(limit, stop_sending)) break;
    bool has_image = false;
    glm4v::v1::GenerateRequest request = prompts.Next(&has_image);
    if (options.stream) {
      (new StreamCall(stub.get(), std::move(request), has_image, options, tracker))->Start();
    } else {
      (new UnaryCall(stub.get(), std::move(request), has_image, options, tracker))->Start();
    }
    next += absl::Seconds(arrivals.NextGapSeconds());
  }
  // Wait for the answers, then cancel stragglers so that every request ends with a status. Either
  // way every call object is destroyed before this returns (see Tracker).
  if (!tracker->WaitBelow(1, absl::Now() + absl::Seconds(options.drain_timeout_s))) {
    tracker->CancelAll();
    tracker->WaitBelow(1, absl::InfiniteFuture());
  }
  RunResult result;
  Clock::time_point last_done;
  result.records = tracker->TakeRecords(&last_done);
  result.duration_s = result.records.empty()
                          ? 0
                          : std::chrono::duration<double>(last_done - first_send).count();
  return result;
}

}  // namespace glm4v::loadgen
