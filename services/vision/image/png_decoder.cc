#include "services/vision/image/png_decoder.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace glm4v {
namespace {

enum class Outcome { kOk, kNoMemory, kLibError, kTooLarge, kUnexpectedLayout };

// Everything with a destructor lives here, owned by the caller's frame, so that a
// longjmp out of libpng never skips a C++ destructor.
struct PngJob {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  int64_t max_pixels = 0;
  Outcome outcome = Outcome::kOk;
  char error[256] = {0};
  char warning[256] = {0};  // the last one; libpng explains some errors only here
  uint32_t width = 0;
  uint32_t height = 0;
  RgbImage image;
  std::vector<png_bytep> rows;
};

void OnPngError(png_structp png, png_const_charp msg) {
  auto* job = static_cast<PngJob*>(png_get_error_ptr(png));
  std::snprintf(job->error, sizeof(job->error), "%s", msg != nullptr ? msg : "libpng error");
  png_longjmp(png, 1);
}

// Never printed (libpng's default writes every bad upload's details to stderr).
// Most concern skipped ancillary chunks, but a few explain the next error, e.g.
// "Image width is zero in IHDR" before "Invalid IHDR data", so keep the last one.
void OnPngWarning(png_structp png, png_const_charp msg) {
  auto* job = static_cast<PngJob*>(png_get_error_ptr(png));
  std::snprintf(job->warning, sizeof(job->warning), "%s", msg != nullptr ? msg : "");
}

void ReadFromMemory(png_structp png, png_bytep out, size_t n) {
  auto* job = static_cast<PngJob*>(png_get_io_ptr(png));
  if (n > job->size - job->pos) png_error(png, "truncated PNG data");
  std::memcpy(out, job->data + job->pos, n);
  job->pos += n;
}

// Holds no C++ objects with non-trivial destructors: png_error longjmps here.
void RunPngDecode(PngJob* job) {
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, job, OnPngError, OnPngWarning);
  if (png == nullptr) {
    job->outcome = Outcome::kNoMemory;
    return;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    job->outcome = Outcome::kNoMemory;
    return;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    job->outcome = Outcome::kLibError;
    return;
  }
  png_set_read_fn(png, job, ReadFromMemory);
  // Bound what libpng buffers for ancillary chunks (iCCP, zTXt, ...) before IDAT.
  png_set_chunk_malloc_max(png, 8 << 20);

  png_read_info(png, info);  // IHDR and everything up to the first IDAT
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, nullptr,
               nullptr);
  job->width = width;
  job->height = height;
  // libpng already rejected zero sizes; refuse bombs before touching pixel data.
  if (static_cast<uint64_t>(width) * height > static_cast<uint64_t>(job->max_pixels)) {
    png_destroy_read_struct(&png, &info, nullptr);
    job->outcome = Outcome::kTooLarge;
    return;
  }

  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (bit_depth == 16) png_set_strip_16(png);  // keeps the high byte
  // Drops a real alpha channel and the one palette+tRNS expansion may add.
  png_set_strip_alpha(png);
  if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
    png_set_gray_to_rgb(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
      png_get_rowbytes(png, info) != static_cast<size_t>(width) * 3) {
    png_destroy_read_struct(&png, &info, nullptr);
    job->outcome = Outcome::kUnexpectedLayout;
    return;
  }

  job->image.width = static_cast<int>(width);
  job->image.height = static_cast<int>(height);
  job->image.pixels.resize(static_cast<size_t>(width) * height * 3);
  job->rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) {
    job->rows[y] = job->image.pixels.data() + static_cast<size_t>(y) * width * 3;
  }
  // Handles all Adam7 passes when interlaced. Trailing chunks (after the image
  // data) are not read: they cannot change the pixels.
  png_read_image(png, job->rows.data());
  png_destroy_read_struct(&png, &info, nullptr);
  job->outcome = Outcome::kOk;
}

}  // namespace

absl::StatusOr<RgbImage> DecodePng(absl::string_view bytes, const DecodeLimits& limits) {
  if (bytes.empty()) return absl::InvalidArgumentError("PNG: empty input");
  PngJob job;
  job.data = reinterpret_cast<const uint8_t*>(bytes.data());
  job.size = bytes.size();
  job.max_pixels = limits.max_pixels;
  RunPngDecode(&job);
  switch (job.outcome) {
    case Outcome::kOk:
      return std::move(job.image);
    case Outcome::kNoMemory:
      return absl::ResourceExhaustedError("PNG: libpng could not allocate its state");
    case Outcome::kTooLarge:
      return absl::InvalidArgumentError(absl::StrFormat(
          "PNG: image is %ux%u = %d pixels, more than the limit of %d pixels", job.width,
          job.height, static_cast<int64_t>(job.width) * job.height, limits.max_pixels));
    case Outcome::kUnexpectedLayout:
      return absl::InternalError("PNG: libpng transforms did not yield 8-bit RGB");
    case Outcome::kLibError:
      break;
  }
  if (job.warning[0] != '\0') {
    return absl::InvalidArgumentError(absl::StrCat("PNG: corrupt or truncated data: ", job.error,
                                                   " (", job.warning, ")"));
  }
  return absl::InvalidArgumentError(absl::StrCat("PNG: corrupt or truncated data: ", job.error));
}

}  // namespace glm4v
