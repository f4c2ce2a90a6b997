// What one rank of a tensor-parallel group owns: its communicators and its decoder shard.
#pragma once

#include <memory>

#include "model/decoder.h"
#include "worker/comm/communicator.h"

namespace glm4v::worker::tp {

struct RankResources {
  // Host-memory channel for step messages (rank 0 -> others); null when tp_size == 1.
  std::unique_ptr<comm::Communicator> control;
  // The decoder's all-reduces/all-gathers when they do not go over `control` (NCCL); else null.
  std::unique_ptr<comm::Communicator> collectives;
  // Declared last so it is destroyed first: it points at a communicator above.
  std::unique_ptr<Decoder> decoder;
};

}  // namespace glm4v::worker::tp
