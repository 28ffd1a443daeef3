// Counts a JACK server's process cycles through a client of our own that does nothing else.
//
// Why: RtMidi 5.0's JACK output queues each message (a 4-byte length, then the bytes) in a
// 16 KB ring that only its client's process cycle empties, and its sendMessage() spins
// (sched_yield) while the ring lacks room. Once the server stops, or stalls (seconds, in
// synchronous mode, while it waits for a dead client), the ring no longer empties and a send
// can wait forever inside the clock thread. Every client of a server runs in each of its
// cycles, so a sender that sees this counter advance knows RtMidi's ring was emptied then;
// one that sees it stand still knows its messages are piling up (RtMidiOutput::send).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace emolive {

class JackCycles {
 public:
  // A client named `client_name` (JACK makes it unique) on the default server, or nullptr
  // when none can be opened (no server, or built without JACK). Not on the clock thread.
  static std::unique_ptr<JackCycles> open(const std::string& client_name);
  // Closes the client, unless `leak_client()` was called: libjack crashes closing a client
  // of a server that has gone, so such a client is left to the process's end.
  ~JackCycles();
  JackCycles(const JackCycles&) = delete;
  JackCycles& operator=(const JackCycles&) = delete;

  // Process cycles run so far. Lock-free, no allocation: callable from the clock thread.
  uint64_t count() const noexcept { return cycles_.load(std::memory_order_acquire); }
  void leak_client() noexcept { leak_ = true; }

 private:
  JackCycles() = default;
  static int on_process(uint32_t frames, void* self);
  void* client_ = nullptr;  // jack_client_t*
  std::atomic<uint64_t> cycles_{0};
  bool leak_ = false;
};

}  // namespace emolive
