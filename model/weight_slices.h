// Partial reads of checkpoint tensors as f32 or bf16 host tensors, for tensor-parallel shards:
// only the requested rows / columns are converted (the rest of the mmap'd tensor is never
// touched), and the bytes read from the checkpoint are counted so tests can check a rank reads
// only its slices. A single run of rows (or all columns) in the stored dtype is a read-only view
// of the mapped file (no copy: the CPU backend then reads those weights in place); other reads
// copy, bf16 from bf16 with no f32 round trip, f32/f16 to bf16 rounding to nearest even.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "common/safetensors.h"
#include "common/tensor.h"

namespace glm4v {

// Half-open [begin, end) range of dim 0 (rows) or dim 1 (columns).
using IndexRange = std::pair<int64_t, int64_t>;

class SliceReader {
 public:
  explicit SliceReader(const Checkpoint& checkpoint) : checkpoint_(checkpoint) {}

  // `dtype` (kF32 or kBF16) is the dtype of the returned host tensor.
  // The given row ranges of `name` (checked against `full_shape`) concatenated in order, as a
  // tensor [sum of range lengths, full_shape[1:]...]; a view of the file (never to be written)
  // when it is one range in the stored dtype.
  absl::StatusOr<Tensor> Rows(const std::string& name, const Shape& full_shape,
                              const std::vector<IndexRange>& ranges, DType dtype = DType::kF32);
  // Columns [begin, end) of every row of a 2-D tensor: [full_shape[0], end - begin]; the view
  // of the file when that is every column in the stored dtype.
  absl::StatusOr<Tensor> Columns(const std::string& name, const Shape& full_shape,
                                 IndexRange columns, DType dtype = DType::kF32);
  // The whole tensor.
  absl::StatusOr<Tensor> All(const std::string& name, const Shape& full_shape,
                             DType dtype = DType::kF32);

  // Checkpoint bytes converted so far.
  int64_t bytes_read() const { return bytes_read_; }
  const Checkpoint& checkpoint() const { return checkpoint_; }

 private:
  absl::StatusOr<Tensor> View(const std::string& name, const Shape& full_shape) const;

  const Checkpoint& checkpoint_;
  int64_t bytes_read_ = 0;
};

}  // namespace glm4v
