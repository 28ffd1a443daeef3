#include "emolive/scheduler.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>

#ifndef _WIN32
#include <pthread.h>
#include <sched.h>
#endif

namespace emolive {

namespace {

// When clock tick `tick` (0..5) of the step due at `deadline` is due.
SteadyClock::time_point tick_time(SteadyClock::time_point deadline, SteadyClock::duration step_length,
                                  int tick) {
  return deadline + step_length * tick / kClockTicksPerStep;
}

SteadyClock::duration step_length_for(double bpm) {
  // One step is a 16th note: a quarter of a beat.
  return std::chrono::duration_cast<SteadyClock::duration>(
      std::chrono::duration<double>(60.0 / bpm / 4.0));
}

// Ask for real-time (SCHED_FIFO) scheduling of the clock thread, as audio engines do, so that a
// busy machine does not delay its wake-ups. Needs the privilege (root, CAP_SYS_NICE or an
// rtprio limit); without it the thread keeps normal scheduling. EMOLIVE_NO_REALTIME=1 skips it.
bool try_realtime(std::thread& thread) {
#ifdef _WIN32
  (void)thread;
  return false;
#else
  if (const char* off = std::getenv("EMOLIVE_NO_REALTIME"); off && *off && *off != '0') return false;
  sched_param param{};
  param.sched_priority = sched_get_priority_min(SCHED_FIFO) + 10;  // low among RT threads
  return pthread_setschedparam(thread.native_handle(), SCHED_FIFO, &param) == 0;
#endif
}

}  // namespace

Scheduler::Scheduler(MidiOutput& out, NoteTracker& tracker, BlockQueue& blocks,
                     LatenessLog& lateness, int channel, bool clock_out,
                     const std::atomic<bool>* producer_alive)
    : out_(out), tracker_(tracker), blocks_(blocks), lateness_(lateness), channel_(channel),
      clock_out_(clock_out), producer_alive_(producer_alive) {
  if (channel < 0 || channel > 15) throw std::invalid_argument("MIDI channel index must be 0..15");
  tracker_.use_channel(channel);
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::set_bpm(double bpm) {
  if (!(bpm >= kMinBpm && bpm <= kMaxBpm)) {
    throw std::invalid_argument("bpm must be in 20..400, got " + std::to_string(bpm));
  }
  bpm_.store(bpm, std::memory_order_relaxed);
}

void Scheduler::start(double bpm, int64_t song_position) {
  if (running()) return;
  if (song_position < 0 || song_position > kMaxStartPosition) {
    throw std::invalid_argument("song position must be in 0.." + std::to_string(kMaxStartPosition) +
                                " steps");
  }
  set_bpm(bpm);
  song_position_ = song_position;
  position_.store(song_position, std::memory_order_release);
  stop_.store(false);
  steps_played_.store(0);
  output_failed_ = tracker_.owes();  // a run that ended in a failure: its note-offs go first
  released_after_producer_ = false;
  thread_ = std::thread([this] { run(); });
  realtime_.store(try_realtime(thread_));
}

void Scheduler::stop() {
  if (!running()) return;
  stop_.store(true, std::memory_order_release);
  thread_.join();
}

bool Scheduler::wait_for_first_block() {
  while (!blocks_.front()) {
    if (stop_.load(std::memory_order_acquire)) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

void Scheduler::run() {
  const bool started = wait_for_first_block();
  if (started) {
    SteadyClock::time_point step_start = SteadyClock::now();
    origin_ticks_.store(step_start.time_since_epoch().count());
    if (clock_out_) send_transport_start();
    for (int64_t step = 0;; ++step) {
      if (!wait_until(step_start, stop_)) break;
      // Tempo is read as each step begins: a change applies from the next step boundary (read
      // before the wait, a change during step k waited for step k + 2).
      const SteadyClock::duration length = step_length_for(bpm_.load(std::memory_order_relaxed));
      const int ticks_sent = play_step(step, step_start, length);
      bool cancelled = false;
      for (int tick = ticks_sent; clock_out_ && tick < kClockTicksPerStep; ++tick) {
        if (!wait_until(tick_time(step_start, length, tick), stop_)) {
          cancelled = true;
          break;
        }
        const uint8_t clock = 0xF8;
        out_.send(&clock, 1);
      }
      steps_played_.store(step + 1, std::memory_order_release);
      position_.store(song_position_ + step + 1, std::memory_order_release);
      if (cancelled) break;
      step_start += length;
    }
  }
  tracker_.all_off(out_);
  if (clock_out_ && started) {  // a Stop answers the Start or Continue sent; none was sent before
    const uint8_t stop = 0xFC;
    out_.send(&stop, 1);
  }
}

void Scheduler::send_transport_start() {
  if (song_position_ == 0) {
    const uint8_t start = 0xFA;
    out_.send(&start, 1);
    return;
  }
  if (song_position_ <= kMaxSongPosition) {
    const uint8_t pointer[3] = {0xF2, uint8_t(song_position_ & 0x7F),
                                uint8_t((song_position_ >> 7) & 0x7F)};
    out_.send(pointer, 3);
  }
  const uint8_t resume = 0xFB;  // past 1,024 bars: the receiver goes on from where it stopped
  out_.send(&resume, 1);
}

namespace {
int note_ons_of(const StepEvents& block) {
  int count = 0;
  for (int i = 0; i < block.count; ++i) count += block.events[i].kind == NoteEvent::kOn;
  return count;
}
}  // namespace

int Scheduler::send_due_ticks(SteadyClock::time_point deadline, SteadyClock::duration step_length,
                              int sent) {
  const uint8_t clock = 0xF8;
  while (clock_out_ && sent < kClockTicksPerStep &&
         SteadyClock::now() >= tick_time(deadline, step_length, sent)) {
    out_.send(&clock, 1);
    ++sent;
  }
  return sent;
}

int Scheduler::play_step(int64_t step, SteadyClock::time_point deadline,
                         SteadyClock::duration step_length) {
  const StepEvents* block = blocks_.front();
  if (out_.failed()) {
    // The port is gone or stalled: its sounding notes cannot be switched off now, so their
    // note-offs are owed, and the clock keeps time without sending (the stats say why; stop()
    // and close() still work). If the output comes back, playing resumes at the step then due.
    if (!output_failed_) tracker_.owe_all();
    output_failed_ = true;
    while (block && block->step <= step) {
      blocks_.pop();
      block = blocks_.front();
    }
    return 1;  // the step's first tick is not sent to a failed output; the others are tried
  }
  if (output_failed_) {
    // The output is back (reconnected, or its JACK server runs again). The receiver may still
    // hold notes (a stalled server delivers the note-ons that waited): the all-off sequence,
    // with the owed note-offs, ends them before anything new.
    tracker_.all_off(out_);
    output_failed_ = false;
  }
  // A failure that began and ended between two steps (a stall guard tripped in the middle of a
  // step's sends, the output resumed before the next): its dropped note-offs are owed.
  if (tracker_.owes()) tracker_.send_owed(out_);
  // Blocks for steps already past: keep only their note-offs.
  while (block && block->step < step) {
    lateness_.record_dropped(note_ons_of(*block));
    send_events(*block, false);
    blocks_.pop();
    block = blocks_.front();
  }
  // A block not yet decoded may still come within this step (it is then sent late), unless
  // the producer is gone (it would wait half of every step for nothing).
  const auto give_up = deadline + step_length / 2;
  // The clock itself came after that (the process was stopped, the machine stalled): a missing
  // block is then no sign of a slow model (a SIGSTOP of 3 s said "cannot keep up"; helper-66).
  const bool clock_on_time = SteadyClock::now() < give_up;
  const bool may_come = !producer_alive_ || producer_alive_->load(std::memory_order_acquire);
  if (!block && !may_come) block = blocks_.front();  // its last block, queued before it ended
  int ticks_sent = 0;
  while (!block && may_come && SteadyClock::now() < give_up &&
         !stop_.load(std::memory_order_acquire)) {
    // The clock goes on while the block is awaited: its ticks went out late in a burst after a
    // late block (up to half a step), a wobble a synth following the clock would play.
    ticks_sent = send_due_ticks(deadline, step_length, ticks_sent);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    block = blocks_.front();
  }
  if (!block && producer_alive_ && !producer_alive_->load(std::memory_order_acquire) &&
      !released_after_producer_) {
    tracker_.all_off(out_);  // the producer is gone: nothing else would end these notes
    released_after_producer_ = true;
  }
  const auto now = SteadyClock::now();
  const float lateness_us = std::chrono::duration<float, std::micro>(now - deadline).count();
  int note_ons = 0;
  if (block && block->step == step) {
    note_ons = note_ons_of(*block);
    send_events(*block, true);
    blocks_.pop();
  } else if (may_come && clock_on_time && !stop_.load(std::memory_order_acquire)) {
    lateness_.record_missed_step();  // not decoded in time (a producer that ended has no more)
  }
  lateness_.record(lateness_us, note_ons);
  if (clock_out_ && ticks_sent == 0) {  // the block was on time: the first tick after its notes
    const uint8_t clock = 0xF8;
    out_.send(&clock, 1);
    ticks_sent = 1;
  }
  return std::max(send_due_ticks(deadline, step_length, ticks_sent), 1);
}

void Scheduler::send_events(const StepEvents& block, bool note_ons) {
  for (int i = 0; i < block.count; ++i) {
    const NoteEvent& e = block.events[i];
    const int note = kPitchLow + e.key;
    if (e.kind == NoteEvent::kOff) {
      tracker_.note_off(out_, channel_, note);
    } else if (note_ons) {
      tracker_.note_on(out_, channel_, note, e.velocity);
    }
  }
}

}  // namespace emolive
