// libFuzzer entry point for the safetensors parser (SafetensorsFile::Open via Checkpoint::Open)
// and the tensor views/conversions built on what it accepts. SafetensorsFile only parses from a
// file (it mmaps), so each input is written to model.safetensors in a per-process directory under
// $TMPDIR. tools/fuzz.sh builds it with clang -fsanitize=fuzzer; safetensors_fuzzer_test replays
// a deterministic corpus through it with g++.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/safetensors.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();  // an invariant broke: the fuzzer reports the input
}

const std::string& FuzzDir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TEST_TMPDIR");
    if (tmp == nullptr || *tmp == '\0') tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                        "/safetensors_fuzz.XXXXXX";
    Check(::mkdtemp(templ.data()) != nullptr);
    return templ;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = FuzzDir() + "/model.safetensors";
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    Check(f != nullptr);
    Check(size == 0 || std::fwrite(data, 1, size, f) == size);
    Check(std::fclose(f) == 0);
  }
  absl::StatusOr<glm4v::Checkpoint> ckpt = glm4v::Checkpoint::Open(FuzzDir());
  if (!ckpt.ok()) {
    Check(!ckpt.status().message().empty());
    return 0;
  }
  for (const std::string& name : ckpt->TensorNames()) {
    absl::StatusOr<glm4v::TensorInfo> info = ckpt->Info(name);
    Check(info.ok());
    // Every accepted tensor lies inside the file, after the header.
    Check(info->data_offset >= 8 && info->data_offset <= size &&
          info->nbytes <= size - info->data_offset);
    absl::StatusOr<glm4v::Tensor> t = ckpt->Get(name);
    Check(t.ok() && t->nbytes() == info->nbytes);
    // Touch every byte of the view (an out-of-bounds span would fault here).
    const auto* p = static_cast<const unsigned char*>(t->raw_data());
    unsigned sum = 0;
    for (size_t i = 0; i < t->nbytes(); ++i) sum += p[i];
    (void)sum;
    absl::StatusOr<glm4v::Tensor> f32 = ckpt->GetF32(name, info->shape);
    if (f32.ok()) Check(f32->numel() == t->numel());
    if (!info->shape.empty()) {
      const int64_t rows = info->shape[0];
      absl::StatusOr<glm4v::Tensor> r = ckpt->GetRows(name, rows / 2, rows);
      Check(r.ok());
      Check(!ckpt->GetRows(name, 0, rows + 1).ok());
    }
  }
  return 0;
}
