// Reader for HF safetensors checkpoints: one file, or shards listed by model.safetensors.index.json.
//
// Files are mmap'd read-only; tensors are zero-copy views that keep the mapping alive. Every
// header is validated before any data is touched: JSON well-formed and under a size cap, known
// dtypes, shape x dtype == byte span, spans inside the file and non-overlapping. Errors name the
// file and the tensor.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor.h"

namespace glm4v {

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  size_t data_offset;  // from the start of the file
  size_t nbytes;
};

// One mmap'd .safetensors file.
class SafetensorsFile {
 public:
  static absl::StatusOr<std::shared_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool Has(const std::string& name) const { return tensors_.count(name) > 0; }
  // Zero-copy view (keeps this file mapped). NOT_FOUND if absent.
  absl::StatusOr<Tensor> Get(const std::string& name) const;
  // Drops this process's resident pages of `name`'s bytes (the whole pages inside its span):
  // for a tensor read once into another form (quantized at load), so the mapped file stops
  // counting in the process's resident memory. A later read faults the pages back in from the
  // file, so views stay correct. No-op for unknown names.
  void ReleasePages(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  std::weak_ptr<SafetensorsFile> self_;
};

// A checkpoint directory: model.safetensors.index.json + shards, or a single model.safetensors.
class Checkpoint {
 public:
  static absl::StatusOr<Checkpoint> Open(const std::string& dir);

  std::vector<std::string> TensorNames() const;
  bool Has(const std::string& name) const;
  absl::StatusOr<TensorInfo> Info(const std::string& name) const;
  // Zero-copy view in the stored dtype.
  absl::StatusOr<Tensor> Get(const std::string& name) const;
  // Checks dtype and shape, then returns an f32 copy (bf16/f16 converted).
  absl::StatusOr<Tensor> GetF32(const std::string& name, const Shape& expected_shape) const;
  // Rows [begin, end) of dim 0 of a tensor (for tensor-parallel slicing without reading the rest).
  absl::StatusOr<Tensor> GetRows(const std::string& name, int64_t begin, int64_t end) const;
  // SafetensorsFile::ReleasePages of the shard holding `name`.
  void ReleasePages(const std::string& name) const;

 private:
  std::map<std::string, std::shared_ptr<SafetensorsFile>> by_tensor_;
};

}  // namespace glm4v
