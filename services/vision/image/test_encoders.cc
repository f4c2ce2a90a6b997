#include "services/vision/image/test_encoders.h"

#include <png.h>
#include <zlib.h>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// jpeglib.h needs size_t/FILE declared first.
#include <jpeglib.h>

namespace glm4v::testing {
namespace {

void AppendToString(png_structp png, png_bytep data, size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<char*>(data), n);
}
void NoFlush(png_structp) {}

struct PngWriteJob {
  const PngSpec* spec;
  std::string out;
  std::vector<png_bytep> rows;
  bool ok = false;
};

void RunPngWrite(PngWriteJob* job) {
  const PngSpec& s = *job->spec;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return;
  }
  png_set_write_fn(png, &job->out, AppendToString, NoFlush);
  png_set_IHDR(png, info, s.width, s.height, s.bit_depth, s.color_type,
               s.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  std::vector<png_color> palette;
  if (!s.palette.empty()) {
    for (size_t i = 0; i + 2 < s.palette.size(); i += 3) {
      palette.push_back({s.palette[i], s.palette[i + 1], s.palette[i + 2]});
    }
    png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  }
  if (!s.trns.empty()) {
    png_set_tRNS(png, info, s.trns.data(), static_cast<int>(s.trns.size()), nullptr);
  }
  png_write_info(png, info);
  png_write_image(png, job->rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  job->ok = true;
}

}  // namespace

std::string EncodePng(const PngSpec& spec) {
  int channels = 0;
  switch (spec.color_type) {
    case PNG_COLOR_TYPE_GRAY: channels = 1; break;
    case PNG_COLOR_TYPE_RGB: channels = 3; break;
    case PNG_COLOR_TYPE_PALETTE: channels = 1; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: channels = 2; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: channels = 4; break;
    default: return "";
  }
  const size_t row_bytes = (static_cast<size_t>(spec.width) * channels * spec.bit_depth + 7) / 8;
  if (spec.rows.size() != row_bytes * spec.height) return "";
  PngWriteJob job;
  job.spec = &spec;
  for (int y = 0; y < spec.height; ++y) {
    job.rows.push_back(const_cast<png_bytep>(spec.rows.data() + y * row_bytes));
  }
  RunPngWrite(&job);
  return job.ok ? job.out : "";
}

std::string EncodePngRgb(int width, int height, const std::vector<uint8_t>& rgb) {
  PngSpec spec;
  spec.width = width;
  spec.height = height;
  spec.rows = rgb;
  return EncodePng(spec);
}

std::string EncodeJpeg(const JpegSpec& spec) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);  // valid input never errors; a test bug may exit
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = spec.width;
  cinfo.image_height = spec.height;
  cinfo.input_components = spec.components;
  cinfo.in_color_space =
      spec.components == 1 ? JCS_GRAYSCALE : (spec.components == 4 ? JCS_CMYK : JCS_RGB);
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, spec.quality, TRUE);
  if (spec.progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  const size_t stride = static_cast<size_t>(spec.width) * spec.components;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(spec.samples.data() + cinfo.next_scanline * stride);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(buffer), size);
  std::free(buffer);
  return out;
}

void FixPngCrcs(std::string* png) {
  size_t pos = 8;
  while (pos + 12 <= png->size()) {
    const auto* p = reinterpret_cast<const uint8_t*>(png->data() + pos);
    const uint32_t len = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    if (len > png->size() - pos - 12) return;
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, p + 4, len + 4);
    char* c = &(*png)[pos + 8 + len];
    c[0] = static_cast<char>(crc >> 24);
    c[1] = static_cast<char>(crc >> 16);
    c[2] = static_cast<char>(crc >> 8);
    c[3] = static_cast<char>(crc);
    pos += 12 + len;
  }
}

}  // namespace glm4v::testing
