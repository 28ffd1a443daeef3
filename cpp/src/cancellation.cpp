#include "emolive/cancellation.hpp"

#include <algorithm>

namespace emolive {

void Cancellation::request() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);  // no attachment goes away meanwhile
  requested_.store(true, std::memory_order_release);
  for (Ort::RunOptions* options : runs_) end_runs(*options);
}

Cancellation::Attachment::Attachment(Cancellation* cancel, Ort::RunOptions& options)
    : cancel_(cancel), options_(&options) {
  if (cancel_ == nullptr) return;
  std::lock_guard<std::mutex> lock(cancel_->mutex_);
  cancel_->runs_.push_back(options_);
  if (cancel_->requested_.load(std::memory_order_acquire)) end_runs(*options_);
}

Cancellation::Attachment::~Attachment() {
  if (cancel_ == nullptr) return;
  std::lock_guard<std::mutex> lock(cancel_->mutex_);
  auto& runs = cancel_->runs_;
  runs.erase(std::find(runs.begin(), runs.end(), options_));
}

}  // namespace emolive
