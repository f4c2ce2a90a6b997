// A tensor-parallel follower rank (rank > 0) as its own process: loads its decoder shard, joins
// rank 0 at --rendezvous and serves steps until rank 0 stops the group (exit 0) or a rank fails
// (exit 1). Rank 0 is the worker server (StartTensorParallelGroup).
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "common/flags_util.h"
#include "common/logging.h"
#include "worker/tp/tp_group.h"

ABSL_FLAG(std::string, model_dir, "", "checkpoint directory (config.json + safetensors)");
ABSL_FLAG(std::string, backend, "cpu", "compute backend");
ABSL_FLAG(std::string, rendezvous, "", "host:port of rank 0's communicator");
ABSL_FLAG(int, tp_rank, 1, "this rank (> 0)");
ABSL_FLAG(int, tp_size, 2, "ranks in the group");
ABSL_FLAG(int, timeout_ms, 30000, "a stalled or dead rank fails the group within this");
ABSL_FLAG(int, connect_timeout_ms, 300000, "bound on all ranks meeting at start-up");

int main(int argc, char** argv) {
  glm4v::InitBinary(argc, argv, "tp_follower", "GLM-4V tensor-parallel follower rank");
  glm4v::worker::tp::TensorParallelOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model_dir);
  options.backend = absl::GetFlag(FLAGS_backend);
  options.rendezvous = absl::GetFlag(FLAGS_rendezvous);
  options.tp_rank = absl::GetFlag(FLAGS_tp_rank);
  options.tp_size = absl::GetFlag(FLAGS_tp_size);
  options.timeout = absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms));
  options.connect_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_connect_timeout_ms));
  const absl::Status status = glm4v::worker::tp::RunFollowerRank(options);
  if (!status.ok()) {
    LOG_ERROR("tensor-parallel follower exiting").With("tp_rank", options.tp_rank)
        .With("status", status);
    return 1;
  }
  return 0;
}
