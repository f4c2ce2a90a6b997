// Image bytes -> normalized 1120x1120 tensor, per stage, median of --iters runs per file:
//
//   bazel run -c opt //services/vision/image:preprocess_bench -- FILE...
//   tools/bench/preprocess_bench.sh   (makes the test images, adds djpeg and Pillow beside it)
//
// "decode" is DecodeImage alone, "resize" and "normalize" the stages on the decoded image, and
// "end to end" PreprocessImage as the vision service calls it (stages overlapped where the
// pipeline overlaps them); for JPEGs also end to end with --jpeg_dct_scaling and its error
// against the exact path in 8-bit levels (normalized difference x std x 255), max and mean.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "services/vision/image/image_format.h"
#include "services/vision/image/preprocess.h"

ABSL_FLAG(int, iters, 15, "runs per file and stage (median reported)");
ABSL_FLAG(int, image_size, 1120, "output side (GLM-4V-9B: 1120)");

namespace glm4v {
namespace {

using Clock = std::chrono::steady_clock;

template <typename Fn>
double MedianMs(int iters, Fn fn) {
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto start = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int Main(const std::vector<char*>& files) {
  const int iters = absl::GetFlag(FLAGS_iters);
  const int size = absl::GetFlag(FLAGS_image_size);
  std::printf("| file | pixels | decode | resize | normalize | end to end | end to end, DCT "
              "scaling | DCT scaling error (levels, max / mean) |\n"
              "|---|---|---|---|---|---|---|---|\n");
  for (const char* path : files) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string bytes = buffer.str();
    absl::StatusOr<RgbImage> image = DecodeImage(bytes, DecodeLimits());
    if (!image.ok()) {
      std::fprintf(stderr, "%s: %s\n", path, image.status().ToString().c_str());
      return 1;
    }
    RgbImage resized;
    const double decode = MedianMs(iters, [&] { image = DecodeImage(bytes, DecodeLimits()); });
    const double resize = MedianMs(iters, [&] { resized = ResizeBicubic(*image, size, size); });
    const double normalize = MedianMs(iters, [&] { NormalizeClip(resized); });
    const double total = MedianMs(iters, [&] {
      absl::StatusOr<PixelTensor> t = PreprocessImage(bytes, size);
      if (!t.ok()) std::abort();
    });
    std::string scaled = "-", error = "-";
    if (DetectImageFormat(bytes) == ImageFormat::kJpeg) {
      PreprocessOptions options;
      options.jpeg_dct_scaling = true;
      absl::StatusOr<PixelTensor> fast;
      const double ms = MedianMs(iters, [&] {
        fast = PreprocessImage(bytes, size, DecodeLimits(), "", options);
      });
      absl::StatusOr<PixelTensor> exact = PreprocessImage(bytes, size);
      if (!fast.ok() || !exact.ok()) std::abort();
      double max_err = 0, sum_err = 0;
      const size_t plane = static_cast<size_t>(size) * size;
      for (size_t i = 0; i < exact->data.size(); ++i) {
        const double levels =
            std::fabs(fast->data[i] - exact->data[i]) * kClipStd[i / plane] * 255.0;
        max_err = std::max(max_err, levels);
        sum_err += levels;
      }
      scaled = std::to_string(ms).substr(0, std::to_string(ms).find('.') + 2) + " ms";
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.0f / %.2f", max_err, sum_err / exact->data.size());
      error = buf;
    }
    std::printf("| %s | %dx%d | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %s | %s |\n", path,
                image->width, image->height, decode, resize, normalize, total, scaled.c_str(),
                error.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace glm4v

int main(int argc, char** argv) {
  std::vector<char*> files = absl::ParseCommandLine(argc, argv);
  files.erase(files.begin());
  return glm4v::Main(files);
}
