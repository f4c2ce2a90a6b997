#include "services/vision/image/jpeg_decoder.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

// jpeglib.h needs size_t/FILE declared first.
#include <jpeglib.h>
#include <jerror.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace glm4v {
namespace {

enum class Outcome { kOk, kLibError, kTooLarge, kBadColorSpace, kUnexpectedLayout };

// libjpeg's default error_exit calls exit(); ours longjmps back to the decode frame.
struct ErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg hands us a jpeg_error_mgr*
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

struct ProgressMonitor {
  jpeg_progress_mgr pub;  // first member, same reason
  int max_scans;
};

// Everything with a destructor lives here, owned by the caller's frame, so that a
// longjmp out of libjpeg never skips a C++ destructor.
struct JpegJob {
  const uint8_t* data = nullptr;
  size_t size = 0;
  DecodeLimits limits;
  Outcome outcome = Outcome::kOk;
  uint32_t width = 0;
  uint32_t height = 0;
  int color_space = 0;
  char error[JMSG_LENGTH_MAX] = {0};
  JpegRowSink* sink = nullptr;
  JpegDctScaling scaling;
  std::vector<uint8_t> cmyk_row;
};

// Collects the rows into one RgbImage.
class ImageSink : public JpegRowSink {
 public:
  void Start(int width, int height) override {
    image.width = width;
    image.height = height;
    image.pixels.resize(static_cast<size_t>(width) * height * 3);
  }
  uint8_t* RowBuffer(int y) override {
    return image.pixels.data() + static_cast<size_t>(y) * image.width * 3;
  }
  void RowsDone(int) override {}

  RgbImage image;
};

[[noreturn]] void OnJpegError(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Trace messages are dropped, warnings counted; a premature end of data is fatal
// because libjpeg would otherwise pad the image with gray and report success.
void OnJpegMessage(j_common_ptr cinfo, int level) {
  if (level >= 0) return;
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "truncated JPEG data");
    std::longjmp(err->jump, 1);
  }
  cinfo->err->num_warnings++;
}

// Never print to stderr.
void OnJpegOutputMessage(j_common_ptr) {}

void OnJpegProgress(j_common_ptr cinfo) {
  auto* progress = reinterpret_cast<ProgressMonitor*>(cinfo->progress);
  auto* dinfo = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (dinfo->input_scan_number > progress->max_scans) {
    auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "more than %d progressive scans",
                  progress->max_scans);
    std::longjmp(err->jump, 1);
  }
}

// PIL: CMYK JPEGs are read as inverted ("CMYK;I", Adobe convention), then
// cmyk2rgb: out = clip(nk - nk * c / 255) with nk = 255 - k, rounded as MULDIV255.
inline uint8_t CmykChannel(int c, int nk) {
  int t = c * nk + 128;
  int v = nk - (((t >> 8) + t) >> 8);
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

void CmykRowToRgb(const uint8_t* in, int width, uint8_t* out) {
  for (int x = 0; x < width; ++x) {
    const uint8_t* p = in + 4 * x;
    int nk = p[3];  // 255 - (255 - stored k)
    out[3 * x + 0] = CmykChannel(255 - p[0], nk);
    out[3 * x + 1] = CmykChannel(255 - p[1], nk);
    out[3 * x + 2] = CmykChannel(255 - p[2], nk);
  }
}

// Holds no C++ objects with non-trivial destructors: errors longjmp here.
void RunJpegDecode(JpegJob* job) {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  ProgressMonitor progress;
  std::memset(&cinfo, 0, sizeof(cinfo));
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = OnJpegError;
  err.pub.emit_message = OnJpegMessage;
  err.pub.output_message = OnJpegOutputMessage;
  err.message[0] = '\0';
  progress.pub.progress_monitor = OnJpegProgress;
  progress.max_scans = job->limits.max_jpeg_scans;

  if (setjmp(err.jump)) {
    std::snprintf(job->error, sizeof(job->error), "%s", err.message);
    jpeg_destroy_decompress(&cinfo);  // safe on a partially created object
    job->outcome = Outcome::kLibError;
    return;
  }
  jpeg_create_decompress(&cinfo);
  cinfo.progress = &progress.pub;
  jpeg_mem_src(&cinfo, job->data, static_cast<unsigned long>(job->size));
  jpeg_read_header(&cinfo, TRUE);  // markers up to SOS: SOF gives the size

  job->width = cinfo.image_width;
  job->height = cinfo.image_height;
  job->color_space = cinfo.jpeg_color_space;
  if (static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height >
      static_cast<uint64_t>(job->limits.max_pixels)) {
    jpeg_destroy_decompress(&cinfo);
    job->outcome = Outcome::kTooLarge;
    return;
  }
  bool cmyk = false;
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
      cinfo.out_color_space = JCS_RGB;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo.out_color_space = JCS_CMYK;
      cmyk = true;
      break;
    default:
      jpeg_destroy_decompress(&cinfo);
      job->outcome = Outcome::kBadColorSpace;
      return;
  }
  if (job->scaling.min_width > 0 || job->scaling.min_height > 0) {
    for (unsigned denom : {8u, 4u, 2u}) {
      const uint64_t w = (cinfo.image_width + denom - 1) / denom;
      const uint64_t h = (cinfo.image_height + denom - 1) / denom;
      if (w >= static_cast<uint64_t>(job->scaling.min_width) &&
          h >= static_cast<uint64_t>(job->scaling.min_height)) {
        cinfo.scale_num = 1;
        cinfo.scale_denom = denom;
        break;
      }
    }
  }
  jpeg_calc_output_dimensions(&cinfo);
  const uint32_t expected_width = cinfo.output_width;
  const uint32_t expected_height = cinfo.output_height;
  jpeg_start_decompress(&cinfo);
  const int width = static_cast<int>(cinfo.output_width);
  const int height = static_cast<int>(cinfo.output_height);
  if (cinfo.output_components != (cmyk ? 4 : 3) || cinfo.output_width != expected_width ||
      cinfo.output_height != expected_height ||
      (cinfo.scale_denom == 1 && (width != static_cast<int>(job->width) ||
                                  height != static_cast<int>(job->height)))) {
    jpeg_destroy_decompress(&cinfo);
    job->outcome = Outcome::kUnexpectedLayout;
    return;
  }
  job->sink->Start(width, height);
  if (cmyk) job->cmyk_row.resize(static_cast<size_t>(width) * 4);
  while (cinfo.output_scanline < cinfo.output_height) {
    uint8_t* dst = job->sink->RowBuffer(static_cast<int>(cinfo.output_scanline));
    JSAMPROW row = cmyk ? job->cmyk_row.data() : dst;
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
      // Only a suspending source returns 0; the memory source never suspends.
      std::snprintf(job->error, sizeof(job->error), "decoder stalled");
      jpeg_destroy_decompress(&cinfo);
      job->outcome = Outcome::kLibError;
      return;
    }
    if (cmyk) CmykRowToRgb(job->cmyk_row.data(), width, dst);
    job->sink->RowsDone(static_cast<int>(cinfo.output_scanline));
  }
  // The pixels are complete; whatever follows (EOI, trailing markers) cannot change
  // them, so it is not read.
  jpeg_destroy_decompress(&cinfo);
  job->outcome = Outcome::kOk;
}

}  // namespace

absl::Status DecodeJpegToSink(absl::string_view bytes, const DecodeLimits& limits,
                              JpegRowSink* sink, const JpegDctScaling& scaling) {
  if (bytes.empty()) return absl::InvalidArgumentError("JPEG: empty input");
  JpegJob job;
  job.data = reinterpret_cast<const uint8_t*>(bytes.data());
  job.size = bytes.size();
  job.limits = limits;
  job.sink = sink;
  job.scaling = scaling;
  RunJpegDecode(&job);
  switch (job.outcome) {
    case Outcome::kOk:
      return absl::OkStatus();
    case Outcome::kTooLarge:
      return absl::InvalidArgumentError(absl::StrFormat(
          "JPEG: image is %ux%u = %d pixels, more than the limit of %d pixels", job.width,
          job.height, static_cast<int64_t>(job.width) * job.height, limits.max_pixels));
    case Outcome::kBadColorSpace:
      return absl::InvalidArgumentError(
          absl::StrFormat("JPEG: unsupported color space %d", job.color_space));
    case Outcome::kUnexpectedLayout:
      return absl::InternalError("JPEG: libjpeg did not yield the requested layout");
    case Outcome::kLibError:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("JPEG: corrupt or truncated data: ", job.error));
}

absl::StatusOr<RgbImage> DecodeJpeg(absl::string_view bytes, const DecodeLimits& limits) {
  ImageSink sink;
  absl::Status status = DecodeJpegToSink(bytes, limits, &sink);
  if (!status.ok()) return status;
  return std::move(sink.image);
}

}  // namespace glm4v
