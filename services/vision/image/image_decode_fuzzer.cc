// libFuzzer entry point for the image decoders and the preprocessing pipeline.
// Build with clang -fsanitize=fuzzer,address to fuzz for real; CI runs it through
// image_decode_fuzz_test without clang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "services/vision/image/image_decoder.h"
#include "services/vision/image/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  glm4v::DecodeLimits limits;
  // Small enough that every accepted input decodes quickly under sanitizers.
  limits.max_pixels = 1 << 20;
  limits.max_jpeg_scans = 64;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<glm4v::RgbImage> image = glm4v::DecodeImage(bytes, limits);
  // The streaming path (a JPEG decoded into bands while a second thread resizes them) must
  // accept and reject exactly what the plain decoder does, and give the same pixels.
  absl::StatusOr<glm4v::PixelTensor> streamed = glm4v::PreprocessImage(bytes, 28, limits);
  if (streamed.ok() != image.ok()) std::abort();
  if (!image.ok()) return 0;
  // Invariants every successful decode must hold.
  if (image->width < 1 || image->height < 1 ||
      image->pixels.size() != static_cast<size_t>(image->width) * image->height * 3 ||
      static_cast<int64_t>(image->width) * image->height > limits.max_pixels) {
    std::abort();
  }
  // Exercise resize/normalize on what the decoder accepted (small target keeps it fast).
  absl::StatusOr<glm4v::PixelTensor> pixels = glm4v::PreprocessRgb(*image, 28);
  if (!pixels.ok() || pixels->data.size() != 3u * 28 * 28) std::abort();
  if (streamed->data != pixels->data) std::abort();
  return 0;
}
