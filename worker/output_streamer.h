// Delivers a step's token events and final outcomes to the request streams on a thread of its
// own, so the engine thread goes on to schedule and run the next step while the previous
// step's responses go out (the output side of vLLM v1's split). Items are delivered in the
// order they were queued; the engine changes no sequence state here, so scheduling and
// sampling are the same as with inline delivery.
#pragma once

#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "worker/request_stream.h"

namespace glm4v::worker {

class OutputStreamer {
 public:
  struct Item {
    std::shared_ptr<RequestStream> stream;
    TokenEvent event;     // pushed when error is OK
    absl::Status error;   // otherwise the stream fails with it
  };

  OutputStreamer();
  // Delivers everything still queued, then stops the thread.
  ~OutputStreamer();
  OutputStreamer(const OutputStreamer&) = delete;
  OutputStreamer& operator=(const OutputStreamer&) = delete;

  // Queues a step's items (one lock and one wake-up per step).
  void Deliver(std::vector<Item> items);
  // Returns once every item queued before the call was delivered.
  void Flush();

 private:
  void Run();

  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace glm4v::worker
