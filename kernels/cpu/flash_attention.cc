#include "kernels/cpu/flash_attention.h"

namespace glm4v {
namespace cpu {

void FlashScratch::Prepare(int head_dim) {
  if (head_dim == head_dim_) return;
  head_dim_ = head_dim;
  dpad_ = (head_dim + kTileDimAlign - 1) / kTileDimAlign * kTileDimAlign;
  // Zeroed once: the loaders and the query copy write only d < head_dim, so the padding stays 0.
  q_.assign(kFlashMaxRows * dpad_, 0.0f);
  kt_.assign(static_cast<size_t>(dpad_) * kFlashKeyTile, 0.0f);
  v_.assign(kFlashKeyTile * dpad_, 0.0f);
  s_.assign(kFlashMaxRows * kFlashKeyTile, 0.0f);
  o_.assign(kFlashMaxRows * dpad_, 0.0f);
}

FlashScratch& ThreadFlashScratch() {
  thread_local FlashScratch scratch;
  return scratch;
}

}  // namespace cpu
}  // namespace glm4v
