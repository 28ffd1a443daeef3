// Cancelling offline generation from another thread (Engine::generate / generate_many).
//
// The work reads requested() before each decoder step and throws Cancelled (errors.hpp). A step
// in progress when the request comes is ended too: each decoder run of the work is made with run
// options attached here, and request() sets ONNX Runtime's terminate flag on them. So a model
// step that never returns (a graph from elsewhere can loop for ever) cannot hold a Ctrl-C up.
#pragma once

#include <atomic>
#include <mutex>
#include <vector>

#include "emolive/errors.hpp"  // Cancelled
#include "emolive/onnx_runtime.hpp"

namespace emolive {

class Cancellation {
 public:
  // Any thread, any number of times; never undone.
  void request() noexcept;
  bool requested() const noexcept { return requested_.load(std::memory_order_acquire); }

  // While it lives, request() ends the runs made with `options` (at once where the request
  // came before). `cancel` may be null: then it does nothing. Destroy it before the options.
  class Attachment {
   public:
    Attachment(Cancellation* cancel, Ort::RunOptions& options);
    ~Attachment();
    Attachment(const Attachment&) = delete;
    Attachment& operator=(const Attachment&) = delete;

   private:
    Cancellation* cancel_;
    Ort::RunOptions* options_;
  };

 private:
  std::atomic<bool> requested_{false};
  std::mutex mutex_;                   // guards runs_
  std::vector<Ort::RunOptions*> runs_; // attached, alive
};

}  // namespace emolive
