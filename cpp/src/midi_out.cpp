#include "emolive/midi_out.hpp"

#include "jack_send_guard.hpp"

#include <atomic>
#include <cerrno>

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/resource.h>
#endif

namespace emolive {
namespace {

// Soft limits above this are not counted through: a process near them has other troubles.
constexpr unsigned long kLargestLimitCounted = 4096;

std::atomic<bool> latest_check_short{false};

bool count_too_few_descriptors() {
#if defined(_WIN32)
  return false;
#else
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY ||
      limit.rlim_cur > kLargestLimitCounted) {
    return false;
  }
  const int clients = jack_server_clients();
  const int needed = clients > 0 ? descriptors_for_a_jack_client(clients) : kDescriptorsForAClient;
  int free = 0;
  for (int fd = 0; fd < static_cast<int>(limit.rlim_cur) && free < needed; ++fd) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) ++free;
  }
  return free < needed;
#endif
}

}  // namespace

bool too_few_descriptors() {
  const bool short_of_them = count_too_few_descriptors();
  latest_check_short.store(short_of_them, std::memory_order_relaxed);
  return short_of_them;
}

bool descriptors_were_short() { return latest_check_short.load(std::memory_order_relaxed); }

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
