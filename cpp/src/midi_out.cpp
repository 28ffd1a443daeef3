#include "emolive/midi_out.hpp"

namespace emolive {

RecordingOutput::RecordingOutput(std::unique_ptr<MidiOutput> inner, size_t capacity)
    : inner_(std::move(inner)), buffer_(capacity) {}

void RecordingOutput::send(const uint8_t* bytes, size_t size) noexcept {
  const size_t i = count_.load(std::memory_order_relaxed);
  if (i < buffer_.size() && size <= 3) {
    RecordedMessage& m = buffer_[i];
    m.time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
    m.size = uint8_t(size);
    for (size_t b = 0; b < size; ++b) m.bytes[b] = bytes[b];
    count_.store(i + 1, std::memory_order_release);
  } else {
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  if (inner_) inner_->send(bytes, size);
}

std::string RecordingOutput::describe() const {
  return inner_ ? "recording, then " + inner_->describe() : "recording";
}

}  // namespace emolive
