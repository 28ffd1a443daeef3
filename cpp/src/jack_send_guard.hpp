// Keeps an RtMidi JACK output's sends out of a ring that no longer empties.
//
// Why: RtMidi 5.0's JACK output queues each message (a 4-byte length, then the bytes) in a
// 16 KB ring that only its client's process cycle empties, and its sendMessage() spins
// (sched_yield) while the ring lacks room. Once the server stops, or stalls (seconds, in
// synchronous mode, while it waits for a dead client), the ring no longer empties and a send
// can wait forever inside the clock thread. Every client of a server runs in each of its
// cycles, so a sender that sees a cycle counter of its own advance knows RtMidi's ring was
// emptied then; one that sees it stand still knows its messages are piling up.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace emolive {

// The name of the JACK server libjack's clients look for: $JACK_DEFAULT_SERVER when it is set,
// even to "" (libjack's rule: a blank name is the server named "", helper-85), else "default".
std::string jack_server_name();

// Whether a JACK server answers on the default server name: a client opened without starting a
// server, and closed at once. Only with JACK support (EMOLIVE_HAVE_JACK). Not on the clock
// thread.
bool jack_server_running();

// The clients of the JACK server on the default server name, counted by their semaphores in
// /dev/shm (jack2 on Linux keeps one per client there, named jack_sem.<uid>_<server>_<client>;
// one left by a client that died is counted too, and so are the clients of a server whose name
// extends this one's after a "_": the names cannot tell them apart). An over-count asks more
// descriptors than needed, the safe side. 0 where none are found: no such server, another JACK
// (JACK1, PipeWire's), another system, or no descriptor free to read the folder with.
int jack_server_clients();

// Counts a JACK server's process cycles through a client that does nothing else.
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
  // Whether libjack said the server shut down (its shutdown callback): the process's clients
  // of that server are zombies then. Any thread.
  bool server_gone() const noexcept { return server_gone_.load(std::memory_order_acquire); }
  void leak_client() noexcept { leak_ = true; }
  // The one output port named as a port `port` of a client asked to be called `client`
  // (client_names.hpp, named_as_client_port) that is connected to `destination`; "" where
  // none or several are. Through this client: no other is opened.
  std::string source_connected_to(const std::string& client, const std::string& port,
                                  const std::string& destination) const;

 private:
  JackCycles() = default;
  static int on_process(uint32_t frames, void* self);
  static void on_shutdown(void* self);
  void* client_ = nullptr;  // jack_client_t*
  std::atomic<uint64_t> cycles_{0};
  std::atomic<bool> server_gone_{false};
  bool leak_ = false;
};

// The budget of bytes queued without a cycle seen. admit() is the clock thread's; the rest
// belongs to one other thread (the output's check_connection()), which must have paused the
// clock thread's sends before calls marked "sends paused".
class JackSendGuard {
 public:
  // The most bytes queued into RtMidi's ring without a new cycle seen (each message costs
  // its bytes plus RtMidi's 4-byte length): half the ring, so it never fills. The ring holds
  // at most this plus what a cycle we saw had not yet taken; a busy step is 1.2 KB.
  static constexpr size_t kBudgetBytes = 8192;

  // `counter_name`: the JACK client name of the cycle counter.
  explicit JackSendGuard(std::string counter_name) : counter_name_(std::move(counter_name)) {}

  // Clock thread: may `size` more bytes be queued? False, and the guard stalled, once the
  // budget would be exceeded. Until the counter is open every send is admitted.
  bool admit(size_t size) noexcept;
  bool stalled() const noexcept { return stalled_.load(std::memory_order_acquire); }

  // Opens the counter, once per server.
  void open_once();
  // Process cycles the counter has run, or -1 when none is open. Read-only, but the counter
  // it reads is freed by cycles_ran_again(): call it from the thread that calls that (the
  // watch thread), or while that thread does not run.
  int64_t cycles_counted() const noexcept {
    const JackCycles* counter = counter_.load(std::memory_order_acquire);
    return counter ? int64_t(counter->count()) : -1;
  }
  // While stalled, with the server alive (sends paused): true, and no longer stalled, once
  // cycles run again. A server that runs but dropped the counter's client (JACK removes
  // clients that miss their deadlines) would keep it stalled, so after
  // kChecksBeforeNewCounter calls without a cycle a new counter is opened.
  bool cycles_ran_again();
  // Whether the counter's server shut down (JackCycles::server_gone); false without a counter.
  // The thread that calls open_once() and forget_server().
  bool server_gone() const noexcept { return owner_ && owner_->server_gone(); }
  // JackCycles::source_connected_to through the counter; "" without one. The thread that
  // calls open_once().
  std::string source_connected_to(const std::string& client, const std::string& port,
                                  const std::string& destination) const {
    return owner_ && !owner_->server_gone() ? owner_->source_connected_to(client, port, destination) : "";
  }
  // The server has gone (sends paused): its counter's client is left to the process's end,
  // any stall is dropped, and the next open_once() opens a counter on the next server.
  void forget_server();

 private:
  static constexpr unsigned kChecksBeforeNewCounter = 4;  // ~2 s of checks 500 ms apart

  std::string counter_name_;
  std::unique_ptr<JackCycles> owner_;
  bool tried_ = false;           // open_once() ran on this server
  unsigned stalled_checks_ = 0;  // cycles_ran_again() calls without a cycle
  std::atomic<const JackCycles*> counter_{nullptr};  // what admit() reads
  uint64_t seen_cycle_ = 0;  // admit() only: the count at the last send
  size_t queued_bytes_ = 0;  // admit() only: bytes admitted since seen_cycle_ changed
  std::atomic<bool> stalled_{false};
  std::atomic<uint64_t> stall_cycle_{0};  // the count when it stalled
};

}  // namespace emolive
