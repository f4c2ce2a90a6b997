#include "services/vision/vision_encoder_service.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "services/common/feature_codec.h"
#include "services/common/grpc_status.h"
#include "services/vision/content_hash.h"
#include "services/vision/image/preprocess.h"

namespace glm4v {

grpc::Status VisionEncoderService::Encode(grpc::ServerContext* context,
                                          const internal::EncodeRequest* request,
                                          internal::EncodeResponse* response) {
  const absl::Time start = absl::Now();
  grpc::Status status;
  if (auto ticket = gate_->TryEnter()) {
    status = EncodeImages(context, *request, response);
  } else {
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "vision service is draining");
  }
  metrics_->requests->WithLabels({GrpcCodeName(status.error_code())}).Increment();
  const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  if (status.ok()) {
    int hits = 0;
    for (bool hit : response->cache_hit()) hits += hit;
    LOG_INFO("encoded")
        .With("request_id", request->request_id())
        .With("images", request->images_size())
        .With("cache_hits", hits)
        .With("ms", ms);
  } else {
    LOG_WARN("encode failed")
        .With("request_id", request->request_id())
        .With("images", request->images_size())
        .With("code", GrpcCodeName(status.error_code()))
        .With("error", status.error_message())
        .With("ms", ms);
  }
  return status;
}

grpc::Status VisionEncoderService::EncodeImages(grpc::ServerContext* context,
                                                const internal::EncodeRequest& request,
                                                internal::EncodeResponse* response) {
  const absl::Time start = absl::Now();
  const int n = request.images_size();
  if (n == 0) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no images to encode");
  if (n > options_.max_images_per_request) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat(n, " images in one request; the limit is ", options_.max_images_per_request));
  }
  std::vector<std::string> hashes(n);
  std::vector<std::shared_ptr<const Tensor>> features(n);
  std::vector<PixelTensor> to_encode;
  std::vector<int> to_encode_index;
  // Images this request encodes for everyone (owned) or waits for (another request's).
  std::vector<std::pair<int, std::shared_ptr<InFlight>>> owned, waiting;
  // Whatever happens, entries this request owns are resolved, so no waiter hangs.
  struct OwnedGuard {
    VisionEncoderService* self;
    std::vector<std::string>* hashes;
    std::vector<std::pair<int, std::shared_ptr<InFlight>>>* owned;
    ~OwnedGuard() {
      for (auto& [i, entry] : *owned) {
        if (!entry->done.HasBeenNotified()) {
          self->Resolve((*hashes)[i], entry,
                        absl::UnavailableError("the request encoding this image failed"), nullptr);
        }
      }
    }
  } guard{this, &hashes, &owned};
  for (int i = 0; i < n; ++i) {
    const internal::EncodeImage& image = request.images(i);
    if (image.data().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("image ", i, " is empty"));
    }
    hashes[i] = Sha256(image.data());
    features[i] = cache_->Find(hashes[i]);
    if (features[i] != nullptr) continue;
    // The same picture twice in one request is encoded (or waited for) once.
    bool duplicate = false;
    for (int j = 0; j < i; ++j) duplicate |= (hashes[j] == hashes[i] && features[j] == nullptr);
    if (duplicate) continue;
    auto [entry, mine] = JoinOrStart(hashes[i]);
    if (!mine) {
      waiting.push_back({i, entry});
      continue;
    }
    owned.push_back({i, entry});
    absl::StatusOr<PixelTensor> pixels =
        PreprocessImage(image.data(), options_.image_size, options_.limits, image.mime_type(),
                        options_.preprocess);
    if (!pixels.ok()) {
      const absl::Status bad = absl::InvalidArgumentError(
          absl::StrCat("image ", i, ": ", pixels.status().message()));
      Resolve(hashes[i], entry, bad, nullptr);
      return ToGrpcStatus(bad);
    }
    to_encode.push_back(std::move(*pixels));
    to_encode_index.push_back(i);
  }

  if (!to_encode.empty()) {
    absl::StatusOr<std::vector<Tensor>> encoded =
        batcher_->Encode(std::move(to_encode), absl::FromChrono(context->deadline()));
    if (!encoded.ok()) return ToGrpcStatus(encoded.status());  // the guard resolves the owned
    for (size_t k = 0; k < encoded->size(); ++k) {
      const int i = to_encode_index[k];
      Tensor& f = (*encoded)[k];
      features[i] = std::make_shared<const Tensor>(
          options_.cache_dtype == DType::kBF16 && f.dtype() != DType::kBF16 ? f.ToBF16()
                                                                            : std::move(f));
      cache_->Insert(hashes[i], features[i]);
    }
    for (auto& [i, entry] : owned) Resolve(hashes[i], entry, absl::OkStatus(), features[i]);
  }
  for (auto& [i, entry] : waiting) {
    if (!entry->done.WaitForNotificationWithDeadline(absl::FromChrono(context->deadline()))) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          absl::StrCat("image ", i, ": still being encoded for another request"));
    }
    if (!entry->status.ok()) return ToGrpcStatus(entry->status);
    features[i] = entry->features;
  }

  int hits = 0;
  for (int i = 0; i < n; ++i) {
    // A hit: neither encoded by this request nor waited for (that is an encode too).
    const bool hit =
        std::find(to_encode_index.begin(), to_encode_index.end(), i) == to_encode_index.end() &&
        std::none_of(waiting.begin(), waiting.end(), [i](const auto& w) { return w.first == i; });
    if (features[i] == nullptr) {  // a duplicate of an image encoded above
      for (int j = 0; j < i; ++j) {
        if (hashes[j] == hashes[i]) features[i] = features[j];
      }
    }
    internal::ImageFeatures* out = response->add_features();
    absl::Status encoded = EncodeFeatures(*features[i], request.dtype(), out);
    if (!encoded.ok()) return ToGrpcStatus(encoded);
    out->set_content_hash(hashes[i]);
    response->add_cache_hit(hit);
    hits += hit;
  }
  metrics_->cache_hits->Increment(hits);
  metrics_->cache_misses->Increment(n - hits);
  response->set_encode_ms(absl::ToDoubleMilliseconds(absl::Now() - start));
  return grpc::Status::OK;
}

std::pair<std::shared_ptr<VisionEncoderService::InFlight>, bool>
VisionEncoderService::JoinOrStart(const std::string& hash) {
  absl::MutexLock lock(&inflight_mu_);
  auto [it, inserted] = inflight_.try_emplace(hash);
  if (inserted) it->second = std::make_shared<InFlight>();
  return {it->second, inserted};
}

void VisionEncoderService::Resolve(const std::string& hash, const std::shared_ptr<InFlight>& entry,
                                   absl::Status status, std::shared_ptr<const Tensor> features) {
  entry->status = std::move(status);
  entry->features = std::move(features);
  {
    absl::MutexLock lock(&inflight_mu_);
    auto it = inflight_.find(hash);
    if (it != inflight_.end() && it->second == entry) inflight_.erase(it);
  }
  entry->done.Notify();
}

}  // namespace glm4v
