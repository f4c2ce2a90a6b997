// Limits and defaults of the gateway (from flags; see docs/SERVICES.md).
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace glm4v {

struct GatewayOptions {
  // --- The served model ---
  std::string model_name = "glm-4v-9b";
  bool accepts_images = true;  // false for text-only checkpoints (no vision_config)

  // --- Admission ---
  int max_inflight = 64;  // requests past admission at once
  int max_queue = 256;    // requests waiting for an in-flight slot; beyond it RESOURCE_EXHAUSTED
  absl::Duration request_timeout = absl::Seconds(300);  // also caps a caller's longer deadline

  // --- Request limits ---
  int max_messages = 256;
  int max_prompt_tokens = 8192;  // after the image splice (image rows count); the gateway's
                                 // default is the model's seq_length - 1
  int max_images_per_request = 1;
  int64_t max_image_bytes = 16 << 20;
  int64_t max_text_bytes = 1 << 20;  // all message text together
  uint32_t default_max_tokens = 512;
  uint32_t max_max_tokens = 8192;
  int max_stop_strings = 16;
  int max_stop_string_bytes = 256;
  int max_stop_token_ids = 64;
  uint32_t max_top_logprobs = 20;
  int max_logit_bias_entries = 1024;
  int vocab_size = 0;  // logit_bias ids must be below it (the padded vocabulary); 0: unchecked

  // --- Backends ---
  absl::Duration vision_timeout = absl::Seconds(60);
};

}  // namespace glm4v
