// Waiting for absolute deadlines on the steady clock, and the lateness log of the clock thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

namespace emolive {

using SteadyClock = std::chrono::steady_clock;

// How long before a deadline sleeping stops and spinning starts: covers the usual wake-up
// latency of a non-real-time thread on Linux (tens to a few hundred microseconds).
constexpr std::chrono::microseconds kSpinWindow{300};
// A sleeping wait wakes at least this often to check for cancellation.
constexpr std::chrono::milliseconds kCancelPoll{2};

// Sleep until shortly before `deadline`, then spin until it. Returns false as soon as `cancel`
// is set (checked at least every kCancelPoll), true once the deadline has passed.
bool wait_until(SteadyClock::time_point deadline, const std::atomic<bool>& cancel);

// Lateness of each deadline (send time minus deadline, microseconds), in storage allocated up
// front; samples past the capacity are not stored but still count in max and late.
class LatenessLog {
 public:
  explicit LatenessLog(size_t capacity = 1 << 18) : samples_(capacity) {}
  void record(float lateness_us, int notes) noexcept;
  void clear() noexcept;  // only while the clock thread is not running
  size_t count() const { return count_.load(std::memory_order_acquire); }
  const float* data() const { return samples_.data(); }
  float max_us() const { return max_us_.load(std::memory_order_relaxed); }
  // Note-ons sent more than 1 ms after their deadline.
  int64_t late_notes() const { return late_notes_.load(std::memory_order_relaxed); }
  // A step whose decoded block had not come by half a step after its deadline, the clock
  // having come on time: it plays nothing (the model cannot keep up; helper-65: a 189 ms step
  // at 120 BPM lost 42 of 45 notes with late_notes 0).
  void record_missed_step() noexcept { missed_steps_.fetch_add(1, std::memory_order_relaxed); }
  // Note-ons of a block that came after its step: never sent (its note-offs are).
  void record_dropped(int note_ons) noexcept { dropped_notes_.fetch_add(note_ons, std::memory_order_relaxed); }
  int64_t missed_steps() const { return missed_steps_.load(std::memory_order_relaxed); }
  int64_t dropped_notes() const { return dropped_notes_.load(std::memory_order_relaxed); }

 private:
  std::vector<float> samples_;
  std::atomic<size_t> count_{0};
  std::atomic<float> max_us_{0.f};
  std::atomic<int64_t> late_notes_{0};
  std::atomic<int64_t> missed_steps_{0};
  std::atomic<int64_t> dropped_notes_{0};
};

}  // namespace emolive
