// An open RtMidi output (rtmidi_output.hpp); the openers that make one are in rtmidi_open.cpp.
#ifdef EMOLIVE_HAVE_RTMIDI
#include "rtmidi_output.hpp"

#include <mutex>
#include <thread>

#include "emolive/errors.hpp"
#include "jack_send_guard.hpp"

namespace emolive {

namespace {

// A JACK server probe every this many check_connection() calls (the engine checks every
// 500 ms, so once a second).
constexpr unsigned kChecksPerServerProbe = 2;

// How long closing a port waits for queued messages to be delivered.
constexpr std::chrono::milliseconds kDrainTime{50};

// How long a JACK connection made by openPort() takes to carry messages. jack_connect()
// returns once the server has recorded the connection, but the graph switches at the start
// of a later cycle, and what our client writes in a cycle before that goes to an unconnected
// port: a program change sent at once was lost in 5 of 100 plays on a loaded 2-core machine,
// and in 0 of 100 with 50 ms between open and play (docs/reliability.md, "Connection settle").
// The same margin as kCycleSettleTime: a few periods plus a descheduled server thread.
// After the first open there is proof instead (wait_until_connected()); this time is for
// reconnections and for when the proof cannot be had.
constexpr std::chrono::milliseconds kConnectSettleTime = kCycleSettleTime;

// The proof of the first connection: cycles run by a client activated after it was made.
// JACK applies graph changes in order, so a graph that runs a client activated after
// openPort()'s jack_connect() holds that connection too; from the second such cycle on, what
// RtMidi's client writes reaches the destination. Under a starved server the switch to that
// graph can take longer than kConnectSettleTime (JACK2 switches after a cycle in which every
// client finished, or else after its client time-out; probably how CI lost a program change
// once): play() waits for the proof up to kConnectProofTimeout, then goes on (the output's
// stall guard covers a server that stopped).
constexpr int64_t kConnectProofCycles = 2;
constexpr std::chrono::milliseconds kConnectProofTimeout{2000};

class RtMidiOutput final : public MidiOutput {
 public:
  // `client_name`: api_'s client name, empty for virtual ports, which have no destination to
  // watch. A second client of the same API, `client_name-watch`, only lists ports (so listing
  // never shares a backend handle with the sending thread). It is opened by the first
  // check_connection(), off the start path: a JACK client takes tens of milliseconds to
  // open, and the first note should not wait for one that only lists ports.
  RtMidiOutput(OpenedApi api, std::string port_name, std::string client_name, std::string source_name)
      : api_(std::move(api)),
        port_name_(std::move(port_name)),
        source_name_(std::move(source_name)),
        client_name_(client_name),
        watcher_client_(client_name.empty() ? "" : client_name + "-watch"),
        guard_((client_name.empty() ? std::string("emolive") : client_name) + "-cycles") {
    mark_connected();
    // The counter opens now, after the connection (its cycles are the proof that it carries
    // messages), while no other thread uses the guard.
    if (api_.id == RtMidi::UNIX_JACK && !client_name_.empty()) {
      guard_.open_once();
      source_checks_left_ = kSourceChecks;  // found through the counter's client, no client of its own
      find_source_again();
    }
    // A virtual port has no cycle counter, whose client tells a named port's server's end: a
    // client of its own for that (a named port's would cost a file descriptor or three more:
    // at a low `ulimit -n` the port watcher then failed to open, helper-58).
    if (api_.id == RtMidi::UNIX_JACK && client_name_.empty()) {
      server_watch_ = std::make_unique<JackConnections>();
    }
  }
  ~RtMidiOutput() override {
    // RtMidi has no flush: backends such as JACK deliver queued messages on their next
    // process cycle, and closing the port first would drop them (the all-off sequence
    // included). RtMidi's JACK backend waits for one process cycle itself where it was built
    // with semaphores (Debian's is); this short wait covers builds without them.
    std::this_thread::sleep_for(kDrainTime);
    if (server_lost_ || server_gone() || backend_gone(api_.id)) {
      // The server went away under us (it may be back, but these clients were the old
      // server's): libjack crashes in jack_port_unregister and jack_client_close on such a
      // client, so the clients are left to the process's end.
      (void)api_.out.release();
      (void)watcher_.out.release();
      guard_.forget_server();
      return;
    }
    api_.out->closePort();
    if (api_.id == RtMidi::UNIX_JACK) std::this_thread::sleep_for(kCycleSettleTime);
  }
  // Clock thread. Nothing reaches RtMidi once the output has failed (after a server loss a
  // JACK send can spin forever), while check_connection() reconnects, or when RtMidi's JACK
  // ring might be full (the output then fails as stalled); `sending_` lets the reconnection
  // wait until no send is inside RtMidi.
  void send(const uint8_t* bytes, size_t size) noexcept override {
    sending_.fetch_add(1);  // seq_cst, paired with pause_sends()
    if (!failed()) {  // failed() is also true while a reconnection has sends paused
      if (!guard_.admit(size)) {
        // No JACK cycle came while the budget waited: the message is not sent and the output
        // fails; try_reconnect() resumes once cycles run again, or treats it as a server loss.
        // (A literal, so the clock thread builds no string; the assertion keeps it true.)
        static_assert(JackSendGuard::kBudgetBytes == 8192, "the message below says 8 KB");
        api_.sink->fail("the JACK server stopped processing (no cycle while 8 KB of MIDI waited "
                        "to be sent): it has stopped or stalled");
      } else {
        try {
          api_.out->sendMessage(bytes, size);
        } catch (...) {  // RtMidi reports through the sink; never let an exception out
          api_.sink->fail("sendMessage threw");
        }
      }
    }
    sending_.fetch_sub(1);
  }
  // Also true for the first kConnectSettleTime after a reconnection, while the new JACK
  // connection may still drop messages: the clock keeps time without sending until it carries
  // them (then it sends the all-off controllers first), rather than lose a note-off.
  // (After the first open play() waits for the settle itself, so the clock never sees it.)
  // And while a reconnection has sends paused: its sink is already reset then, and a step
  // that saw no failure would send the all-off controllers into an output that drops them
  // (lost for good on ALSA, CoreMIDI and WinMM, which settle at once).
  bool failed() const noexcept override {
    return api_.sink->failed.load(std::memory_order_acquire) || paused_.load() || !settled();
  }
  std::string error_text() const override { return api_.sink->failed.load() ? api_.sink->text() : ""; }
  std::string describe() const override { return api_.name + " port '" + port_name_ + "'"; }
  std::string source_name() const override {
    std::lock_guard<std::mutex> lock(source_mutex_);
    return source_name_;
  }
  int reconnects() const noexcept override { return reconnects_.load(); }
  // A named port is looked for again; a virtual one only comes back from a stall.
  bool may_recover() const noexcept override { return !client_name_.empty() || guard_.stalled(); }
  // The first play: until the cycle counter proves the connection (kConnectProofCycles), up
  // to kConnectProofTimeout after the call (a starved server can take longer than
  // kConnectSettleTime). Later plays, and outputs without a counter at the first play: until
  // kConnectSettleTime after the last (re)connection. The caller's thread, while nothing
  // plays. Invariant: the counter is read only in the first call, before any play, so before
  // the watch thread (which checks only while playing, or after a play that left note-offs
  // owed) can have replaced or freed it; a later
  // call never reads it, since a stop does not wait for a check in progress.
  void wait_until_connected() override {
    const bool first = !proof_awaited_;
    proof_awaited_ = true;
    if (first && guard_.cycles_counted() >= 0) {
      const SteadyTime give_up = std::chrono::steady_clock::now() + kConnectProofTimeout;
      while (guard_.cycles_counted() < kConnectProofCycles &&
             std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      settled_at_.store(std::chrono::steady_clock::now().time_since_epoch().count());
      return;
    }
    std::this_thread::sleep_until(SteadyTime(SteadyTime::duration(settled_at_.load())));
  }

  void check_connection() override {
    if (!server_lost_ && server_gone()) {  // told by libjack, however fast a new server came
      server_lost_ = true;
      ErrorSink::callback(RtMidiError::DRIVER_ERROR,
                          "the JACK server stopped; MIDI port '" + port_name_ + "' disappeared",
                          api_.sink.get());
      return;
    }
    if (api_.sink->failed.load()) {  // not failed(): a settling reconnection is not retried
      try_reconnect();
      return;
    }
    if (api_.id == RtMidi::UNIX_JACK) guard_.open_once();
    if (source_checks_left_ > 0) find_source_again();
    // JACK: a killed server leaves our clients as zombies that still list the old ports, and
    // RtMidi's sendMessage then waits forever once its ring buffer is full. So ask for a
    // fresh connection now and then; it fails as soon as the server is gone.
    if (api_.id == RtMidi::UNIX_JACK && ++checks_ % kChecksPerServerProbe == 0 &&
        backend_gone(api_.id)) {
      server_lost_ = true;
      ErrorSink::callback(RtMidiError::DRIVER_ERROR,
                          "the JACK server stopped; MIDI port '" + port_name_ + "' disappeared",
                          api_.sink.get());
      return;
    }
    if (!watcher_.out && !watcher_client_.empty()) open_watcher();
    if (!watcher_.out) return;
    if (find_port(*watcher_.out) >= 0) return;
    server_lost_ = api_.id == RtMidi::UNIX_JACK && backend_gone(api_.id);
    ErrorSink::callback(RtMidiError::DRIVER_ERROR, port_gone_message(), api_.sink.get());
  }

 private:
  // The output failed as stalled (send()): a server that has gone is a server loss. If it is
  // alive and its cycles run again, the port is still open, but a named port's connection may
  // not be: a synchronous server stalls while it waits for a client that quit, such as the
  // receiver, and the receiver's connection goes with it. So a named port is opened again
  // (connected afresh, and settled) if its destination is listed, and otherwise fails as
  // disappeared, to be reconnected when it returns. A virtual port has no connection to lose.
  void resume_after_stall() {
    pause_sends();
    // server_gone() first: a server restarted at once answers backend_gone()'s probe, and the
    // old server's counter was then closed as a live one's (a segmentation fault in
    // jack_client_close, two engines stalled by a server's restart; found 2026-12-07).
    if (server_gone() || backend_gone(api_.id)) {
      guard_.forget_server();
      server_lost_ = true;
    } else if (guard_.cycles_ran_again()) {
      if (client_name_.empty()) {
        api_.sink->reset();
        reconnects_.fetch_add(1);
      } else if (find_port(*api_.out) >= 0) {
        reopen_port();  // resumes sends
        return;
      } else {
        api_.sink->replace(port_gone_message().c_str());
      }
    }
    paused_.store(false);
  }

  // Whether libjack said the server of this output's clients shut down: they are zombies then
  // (they go on listing the old server's ports, and libjack crashes closing them once a new
  // server runs: a segmentation fault closing an engine stopped while the server restarted,
  // helper-55), whether or not a probe saw the server gone. Told by the cycle counter's client
  // (a named port: after a reconnection, the counter opened on the new server) or a virtual
  // port's own watch client. A client for that made at once after a reconnection hung a
  // synchronous server's next close; the counter opens at the next check.
  bool server_gone() const {
    return guard_.server_gone() || (server_watch_ && server_watch_->server_gone());
  }

  // This output's own port (after it opened, and after a server restart): the one of its
  // client's names whose connections hold the destination, listed through the cycle counter's
  // client. Listing clients of its own cost two JACK clients at every open (40 ms, and the
  // descriptors a `ulimit -Hn 20` run then lacked: it played nothing) and, opened as a
  // server restarted, stalled that server for good. Left unknown where none or two are
  // (another emolive sending to the same port), or after kSourceChecks checks.
  void find_source_again() {
    --source_checks_left_;
    std::string source = guard_.source_connected_to(client_name_, "out", port_name_);
    if (source.empty()) return;
    source_checks_left_ = 0;
    std::lock_guard<std::mutex> lock(source_mutex_);
    source_name_ = std::move(source);
  }

  std::string port_gone_message() const {
    return "MIDI port '" + port_name_ +
           "' disappeared (its program closed, the device was unplugged or the MIDI server "
           "stopped)";
  }

  // One attempt, on the API the port is open on (no other API is probed, so no other
  // backend prints its failure on the user's terminal while playing).
  void open_watcher() {
    OpenedApi watcher;
    watcher.sink = std::make_unique<ErrorSink>();
    std::string why;
    watcher.out = try_open_api(api_.id, watcher_client_, *watcher.sink, why);
    watcher_client_.clear();  // no second attempt
    if (!watcher.out) return;  // without a watcher a vanished port goes unnoticed; playing works
    watcher.name = api_.name;
    watcher.id = api_.id;
    watcher_ = std::move(watcher);
  }

  // Index of port_name_ among `out`'s ports, or -1.
  int find_port(RtMidiOut& out) const {
    const unsigned count = out.getPortCount();  // 0 when the server has gone
    for (unsigned i = 0; i < count; ++i) {
      if (out.getPortName(i) == port_name_) return int(i);
    }
    return -1;
  }

  void pause_sends() {
    paused_.store(true);
    while (sending_.load() != 0) std::this_thread::yield();
  }

  // The port named port_name_ is listed again: open it again. After a server loss the old
  // clients belong to the dead server (libjack crashes closing them, so they are left to the
  // process's end) and new ones are made; otherwise the same client closes and reopens its
  // port. Virtual ports are not reconnected.
  void try_reconnect() {
    if (guard_.stalled()) {
      resume_after_stall();
      return;
    }
    if (client_name_.empty()) return;
    if (server_lost_) {
      ErrorSink probe;  // the new client's errors go to api_.sink once it is in use
      std::string why;
      std::unique_ptr<RtMidiOut> fresh = try_open_api(api_.id, client_name_, probe, why);
      if (!fresh) return;  // the server is not back
      const int index = find_port(*fresh);
      if (index < 0) return;  // the server is back, the destination not yet
      pause_sends();
      guard_.forget_server();
      // The dead server's clients are left to the process's end; api_.sink stays (other
      // threads read it), and nothing calls the old client again, so it reports nothing.
      (void)api_.out.release();
      (void)watcher_.out.release();
      (void)watcher_.sink.release();
      watcher_ = OpenedApi{};
      watcher_client_ = client_name_ + "-watch";
      fresh->setErrorCallback(&ErrorSink::callback, api_.sink.get());
      api_.out = std::move(fresh);
      reopen(index);
      // A new server may name the new client otherwise (another emolive took "emolive"
      // first; helper-72: source_name() named the other engine's port). Found again once the
      // new cycle counter runs (check_connection): a listing client opened now, as the server
      // restarted, stalled a synchronous server for good (every cycle 5 s; found 2026-12-07).
      std::lock_guard<std::mutex> lock(source_mutex_);
      source_name_.clear();
      source_checks_left_ = kSourceChecks;
      return;
    }
    if (api_.id == RtMidi::UNIX_JACK && backend_gone(api_.id)) {
      server_lost_ = true;  // the port went first, then the server
      return;
    }
    if (!watcher_.out || find_port(*watcher_.out) < 0) return;
    pause_sends();
    reopen_port();
  }

  // Close the port and open it again by name on the same client (sends paused): a fresh
  // connection to the destination listed now.
  void reopen_port() {
    api_.out->closePort();
    reopen(find_port(*api_.out));
  }

  // Open port `index` on api_ (sends paused); clears the failure only if RtMidi reports none.
  void reopen(int index) {
    if (index >= 0) {
      api_.sink->reset();
      api_.out->openPort(unsigned(index), "out");
      if (!api_.sink->failed) {
        server_lost_ = false;
        reconnects_.fetch_add(1);
        mark_connected();
      }
    } else {
      api_.sink->fail("the MIDI port was listed, then gone again before it could be opened");
    }
    paused_.store(false);
  }

  using SteadyTime = std::chrono::steady_clock::time_point;

  // A port just opened by name carries messages from kConnectSettleTime on (JACK only; a
  // virtual port has no connection of ours to wait for, other APIs connect at once).
  bool settled() const noexcept {
    return std::chrono::steady_clock::now().time_since_epoch().count() >= settled_at_.load();
  }

  void mark_connected() {
    SteadyTime settled = std::chrono::steady_clock::now();
    if (api_.id == RtMidi::UNIX_JACK && !client_name_.empty()) settled += kConnectSettleTime;
    settled_at_.store(settled.time_since_epoch().count());
  }

  OpenedApi api_;
  std::string port_name_;
  mutable std::mutex source_mutex_;  // source_name_ changes on the watch thread (try_reconnect)
  std::string source_name_;  // this output's own port as others see it (source_name())
  static constexpr int kSourceChecks = 6;  // checks (500 ms apart) that look for it after an open
  int source_checks_left_ = 0;  // watch thread only
  std::string client_name_;     // of api_'s client; empty for virtual ports (no reconnection)
  std::string watcher_client_;  // empty once the watcher is opened or failed to open
  OpenedApi watcher_;           // check_connection()'s thread only, until destruction
  unsigned checks_ = 0;         // check_connection() calls (one thread only)
  bool server_lost_ = false;    // check_connection()'s thread only
  // JACK, a virtual port: a client of its server whose shutdown callback tells the server's end.
  std::unique_ptr<JackConnections> server_watch_;
  JackSendGuard guard_;         // admit(): clock thread; the rest: check_connection()'s thread
  std::atomic<int> sending_{0};  // clock-thread sends inside send() right now
  std::atomic<bool> paused_{false};
  std::atomic<int> reconnects_{0};
  std::atomic<SteadyTime::rep> settled_at_{0};  // steady-clock ticks: messages arrive from then
  bool proof_awaited_ = false;  // wait_until_connected() was called (caller thread)
};

}  // namespace

std::unique_ptr<MidiOutput> make_rtmidi_output(OpenedApi api, std::string port_name, std::string client_name,
                                               std::string source_name) {
  return std::make_unique<RtMidiOutput>(std::move(api), std::move(port_name), std::move(client_name),
                                        std::move(source_name));
}

}  // namespace emolive

#endif  // EMOLIVE_HAVE_RTMIDI
