#include "emolive/clock.hpp"

#include <algorithm>
#include <thread>

namespace emolive {

bool wait_until(SteadyClock::time_point deadline, const std::atomic<bool>& cancel) {
  for (;;) {
    if (cancel.load(std::memory_order_acquire)) return false;
    const auto now = SteadyClock::now();
    if (now >= deadline) return true;
    const auto wake = deadline - kSpinWindow;
    if (now < wake) {
      std::this_thread::sleep_until(std::min(wake, now + kCancelPoll));
    }
    // else: inside the spin window; loop without sleeping
  }
}

void LatenessLog::record(float lateness_us, int notes) noexcept {
  const size_t i = count_.load(std::memory_order_relaxed);
  if (i < samples_.size()) {
    samples_[i] = lateness_us;
    count_.store(i + 1, std::memory_order_release);
  }
  if (lateness_us > max_us_.load(std::memory_order_relaxed)) {
    max_us_.store(lateness_us, std::memory_order_relaxed);
  }
  if (lateness_us > 1000.f) late_notes_.fetch_add(notes, std::memory_order_relaxed);
}

void LatenessLog::clear() noexcept {
  count_.store(0);
  max_us_.store(0.f);
  late_notes_.store(0);
  missed_steps_.store(0);
  dropped_notes_.store(0);
}

}  // namespace emolive
