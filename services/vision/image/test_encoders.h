// Test-only encoders: build small PNG/JPEG files in memory with libpng/libjpeg so
// decoder tests cover every pixel layout without checked-in binaries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace glm4v::testing {

struct PngSpec {
  int width = 0;
  int height = 0;
  int color_type = 2;  // PNG_COLOR_TYPE_* (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA)
  int bit_depth = 8;
  bool interlaced = false;  // Adam7
  // Rows exactly as stored in PNG: packed sub-byte samples, 16-bit big-endian.
  std::vector<uint8_t> rows;
  std::vector<uint8_t> palette;  // RGB triples (color_type 3)
  std::vector<uint8_t> trns;     // palette alpha entries (color_type 3)
};

// Returns "" on failure (libpng error).
std::string EncodePng(const PngSpec& spec);

// Convenience: 8-bit RGB, interleaved.
std::string EncodePngRgb(int width, int height, const std::vector<uint8_t>& rgb);

struct JpegSpec {
  int width = 0;
  int height = 0;
  int components = 3;  // 1 gray, 3 RGB (stored as YCbCr), 4 CMYK (Adobe)
  int quality = 95;
  bool progressive = false;
  std::vector<uint8_t> samples;  // interleaved, width * height * components
};

std::string EncodeJpeg(const JpegSpec& spec);

// Recomputes every chunk CRC of a PNG so mutated files reach the decoder's
// deeper stages instead of failing the CRC check.
void FixPngCrcs(std::string* png);

}  // namespace glm4v::testing
