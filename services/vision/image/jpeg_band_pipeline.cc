#include "services/vision/image/jpeg_band_pipeline.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "services/vision/image/bicubic_resize.h"
#include "services/vision/image/jpeg_decoder.h"
#include "services/vision/image/resample_kernels.h"

namespace glm4v {
namespace {

constexpr int kBand = kResampleBandRows;
constexpr int kRingBands = 8;

class BandRingSink : public JpegRowSink {
 public:
  explicit BandRingSink(int out_width) : out_width_(out_width) {}
  ~BandRingSink() override { Stop(/*abort=*/true); }

  void Start(int width, int height) override {
    width_ = width;
    height_ = height;
    out_.width = out_width_;
    out_.height = height;
    out_.pixels.resize(static_cast<size_t>(out_width_) * height * 3);
    passthrough_ = width == out_width_;
    if (passthrough_) return;  // rows decode straight into the output
    taps_ = ComputeBicubicTaps(width, out_width_);
    ring_.resize(static_cast<size_t>(kRingBands) * kBand * width * 3);
    worker_ = std::thread([this] { ResampleBands(); });
  }

  uint8_t* RowBuffer(int y) override {
    if (passthrough_) return out_.pixels.data() + static_cast<size_t>(y) * out_width_ * 3;
    const int band = y / kBand;
    if (y % kBand == 0 && band >= kRingBands) {
      // The slot is free once the band kRingBands back was resampled.
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [&] { return resampled_bands_ > band - kRingBands; });
    }
    return ring_.data() +
           (static_cast<size_t>(band % kRingBands) * kBand + y % kBand) * width_ * 3;
  }

  void RowsDone(int end) override {
    if (passthrough_ || (end % kBand != 0 && end != height_)) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      decoded_rows_ = end;
    }
    changed_.notify_all();
  }

  // Waits for the resampling thread (abort: tells it to stop first).
  void Stop(bool abort) {
    if (abort) {
      std::lock_guard<std::mutex> lock(mu_);
      aborted_ = true;
    }
    changed_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  RgbImage TakeResult() { return std::move(out_); }

 private:
  void ResampleBands() {
    std::vector<uint8_t> scratch;
    const int bands = (height_ + kBand - 1) / kBand;
    for (int band = 0; band < bands; ++band) {
      const int y0 = band * kBand;
      const int rows = std::min(kBand, height_ - y0);
      {
        std::unique_lock<std::mutex> lock(mu_);
        changed_.wait(lock, [&] { return aborted_ || decoded_rows_ >= y0 + rows; });
        if (aborted_) return;
      }
      const uint8_t* in = ring_.data() + static_cast<size_t>(band % kRingBands) * kBand * width_ * 3;
      ResampleHorizontalBand(in, width_, 0, rows, taps_,
                             out_.pixels.data() + static_cast<size_t>(y0) * out_width_ * 3,
                             &scratch);
      {
        std::lock_guard<std::mutex> lock(mu_);
        resampled_bands_ = band + 1;
      }
      changed_.notify_all();
    }
  }

  const int out_width_;
  int width_ = 0;
  int height_ = 0;
  bool passthrough_ = false;
  ResampleTaps taps_;
  std::vector<uint8_t> ring_;
  RgbImage out_;
  std::thread worker_;

  std::mutex mu_;
  std::condition_variable changed_;
  int decoded_rows_ = 0;     // guarded by mu_
  int resampled_bands_ = 0;  // guarded by mu_
  bool aborted_ = false;     // guarded by mu_
};

}  // namespace

absl::StatusOr<RgbImage> DecodeJpegResizedToWidth(absl::string_view bytes, int width,
                                                  const DecodeLimits& limits, int dct_scale_to) {
  BandRingSink sink(width);
  absl::Status status =
      DecodeJpegToSink(bytes, limits, &sink, JpegDctScaling{dct_scale_to, dct_scale_to});
  sink.Stop(/*abort=*/!status.ok());
  if (!status.ok()) return status;
  return sink.TakeResult();
}

}  // namespace glm4v
