#include "emolive/midi_out.hpp"

#include <cerrno>

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/resource.h>
#endif

namespace emolive {
namespace {

// Soft limits above this are not counted through: a process near them has other troubles.
constexpr unsigned long kLargestLimitCounted = 4096;

}  // namespace

bool too_few_descriptors() {
#if defined(_WIN32)
  return false;
#else
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY ||
      limit.rlim_cur > kLargestLimitCounted) {
    return false;
  }
  int free = 0;
  for (int fd = 0; fd < static_cast<int>(limit.rlim_cur) && free < kDescriptorsForAClient; ++fd) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) ++free;
  }
  return free < kDescriptorsForAClient;
#endif
}

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
