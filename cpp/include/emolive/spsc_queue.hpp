// A bounded wait-free single-producer single-consumer ring (one slot is kept empty).
// push() only from the producer thread, front()/pop() only from the consumer thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <type_traits>

namespace emolive {

template <typename T, size_t Capacity>
class SpscQueue {
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0, "Capacity: a power of two");
  static_assert(std::is_trivially_copyable_v<T>, "slots are copied without allocation");

 public:
  // false when full (nothing written).
  bool push(const T& item) {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    const size_t next = (tail + 1) & (Capacity - 1);
    if (next == head_.load(std::memory_order_acquire)) return false;
    slots_[tail] = item;
    tail_.store(next, std::memory_order_release);
    return true;
  }
  // The oldest item, or nullptr when empty; valid until pop().
  const T* front() const {
    const size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_.load(std::memory_order_acquire)) return nullptr;
    return &slots_[head];
  }
  bool pop(T& out) {
    const T* item = front();
    if (!item) return false;
    out = *item;
    pop();
    return true;
  }
  void pop() {
    const size_t head = head_.load(std::memory_order_relaxed);
    head_.store((head + 1) & (Capacity - 1), std::memory_order_release);
  }
  // Exact only when neither side is active.
  size_t size() const {
    return (tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire)) &
           (Capacity - 1);
  }
  bool empty() const { return size() == 0; }
  static constexpr size_t capacity() { return Capacity - 1; }

 private:
  std::array<T, Capacity> slots_{};
  alignas(64) std::atomic<size_t> head_{0};  // next slot to read (consumer)
  alignas(64) std::atomic<size_t> tail_{0};  // next slot to write (producer)
};

}  // namespace emolive
