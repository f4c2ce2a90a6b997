// A unary GenerateResponse assembled from the stream messages of one generation: the gRPC
// Generate method and the OpenAI front's non-streaming completions both build theirs this way.
#pragma once

#include "protos/glm4v/v1/glm4v.pb.h"

namespace glm4v {

// Appends the chunk's text, ids and logprobs; the last chunk (finish_reason set) also moves its
// usage, timings and matched stop into `response`.
void AppendStreamChunk(v1::GenerateStreamResponse& chunk, v1::GenerateResponse* response);

}  // namespace glm4v
