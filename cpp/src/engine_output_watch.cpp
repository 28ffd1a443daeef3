// The engine's watch thread: every 0.5 s, while playing, it checks that the output's
// destination still exists and reconnects a lost one (backend calls can stall, so never in the
// clock or generator thread); stopped, it goes on only for an output that owes note-offs, and
// sends them once it is back. close() gives such an output a last second.
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "emolive/engine.hpp"

namespace emolive {

namespace {
// How often the watch thread checks that the output's destination still exists.
constexpr std::chrono::milliseconds kPortCheckInterval{500};
// How long close() tries to bring back an output that owes note-offs: a stalled server that ran
// again just before close() had not been seen by the watch thread yet (it looks every 0.5 s, and
// a reopened port then settles for 100 ms): 31 notes stayed sounding (helper-94).
constexpr std::chrono::milliseconds kOwedAtCloseWait{1000};
}  // namespace

void Engine::watch_loop() {
  // Port checks may call into the MIDI backend and stall with it (a JACK server in
  // synchronous mode waits seconds for a dead client), so they run here, where only close()
  // waits for them, never in the clock or generator thread.
  while (!watch_stop_.load()) {
    for (auto slept = std::chrono::milliseconds(0); slept < kPortCheckInterval && !watch_stop_.load();
         slept += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // Stopped, the output is checked only while it owes note-offs (stopped during a failure)
    // and is back or may come back: once it is back they go out, although nothing plays (a
    // virtual port's may_recover() is false once its stall ended: it must still be sent to
    // when a caller held caller_mutex_ at the first try).
    const bool owing = !playing_.load() && tracker_.owes() &&
                       (output_->may_recover() || !output_->failed());
    if (watch_stop_.load() || !(playing_.load() || owing)) continue;
    try {
      output_->check_connection();
      std::lock_guard<std::mutex> lock(error_mutex_);
      port_check_error_.clear();  // a check that went through: the port error is over
    } catch (const std::exception& e) {  // an output of the caller's that throws: a port error
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (port_check_error_.empty()) port_check_error_ = std::string("port check failed: ") + e.what();
    }
    if (owing) send_owed_note_offs();
  }
}

void Engine::send_owed_note_offs() {
  // try_lock: close() holds caller_mutex_ while it joins this thread (it sends them itself).
  // Held, no clock thread runs (play() takes it first), so this thread is the only sender.
  std::unique_lock<std::mutex> lock(caller_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || playing_.load() || closed_.load() || output_->failed()) return;
  tracker_.all_off(*output_);
}

void Engine::send_owed_at_close() {
  // The watch thread is joined: this thread alone checks the output now. A check may wait for
  // a stalled server as the watch thread's did (docs/engine.md).
  const auto give_up = SteadyClock::now() + kOwedAtCloseWait;
  try {
    while (tracker_.owes() && output_->failed() && output_->may_recover() && SteadyClock::now() < give_up) {
      output_->check_connection();
      output_->wait_until_connected();  // a reopened port carries messages once it has settled
      if (output_->failed()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (const std::exception&) {  // an output of the caller's whose check throws: close goes on
    return;
  }
  if (tracker_.owes() && !output_->failed()) tracker_.all_off(*output_);
}

}  // namespace emolive
