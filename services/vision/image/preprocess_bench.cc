// Image bytes -> normalized 1120x1120 tensor, per stage, median of --iters runs per file:
//
//   bazel run -c opt //services/vision/image:preprocess_bench -- FILE...
//   tools/bench/preprocess_bench.sh   (makes the test images, adds djpeg and Pillow beside it)
//
// "decode" is DecodeImage alone, "resize" and "normalize" the stages on the decoded image, and
// "end to end" PreprocessImage as the vision service calls it (stages overlapped where the
// pipeline overlaps them).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
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
  std::printf("| file | pixels | decode | resize | normalize | end to end |\n"
              "|---|---|---|---|---|---|\n");
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
    std::printf("| %s | %dx%d | %.1f ms | %.1f ms | %.1f ms | %.1f ms |\n", path, image->width,
                image->height, decode, resize, normalize, total);
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
