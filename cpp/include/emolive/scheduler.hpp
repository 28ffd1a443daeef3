// The clock thread: sends each step's notes at its absolute deadline.
//
// Step k's deadline is step k-1's deadline plus one step length at the tempo read at step k-1
// (steady_clock durations, integer nanoseconds: no rounding drift at a constant tempo); a tempo
// change therefore takes effect at the next step boundary (well within one beat). In the thread: no allocation, no locks, no
// I/O other than MIDI sends. Blocks for steps already past are dropped, except their note-offs
// (so a slow generator can make notes late or missing, never stuck).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "emolive/clock.hpp"
#include "emolive/midi_out.hpp"
#include "emolive/note_tracker.hpp"
#include "emolive/sampler.hpp"
#include "emolive/spsc_queue.hpp"

namespace emolive {

using BlockQueue = SpscQueue<StepEvents, 64>;

constexpr double kMinBpm = 20.0, kMaxBpm = 400.0;
constexpr int kClockTicksPerStep = 6;  // MIDI clock: 24 per quarter note = 6 per 16th step
constexpr int64_t kStepsPerBar = 16;  // 4/4 in 16th steps (a card's grid.steps_per_bar is 16)
// The largest song position a Song Position Pointer (0xF2) can name: 14 bits of 16th steps
// (1,024 bars of 4/4).
constexpr int64_t kMaxSongPosition = 16383;
// The largest song position a run may start at (16th steps): 2^44, so that the position plus
// the steps of centuries of play stays far inside int64.
constexpr int64_t kMaxStartPosition = int64_t(1) << 44;

class Scheduler {
 public:
  // channel 0..15; the queue's producer is the generator (or a test). `producer_alive`, when
  // given, is true while the producer may still queue blocks: once it is false and the queue
  // is empty, no note-off can come any more, so the clock sends the all-off sequence (once per
  // start) instead of leaving notes sounding until stop().
  Scheduler(MidiOutput& out, NoteTracker& tracker, BlockQueue& blocks, LatenessLog& lateness,
            int channel, bool clock_out, const std::atomic<bool>* producer_alive = nullptr);
  ~Scheduler();

  // Start the clock thread: step 0 is due as soon as its block is queued. `song_position`
  // (16th steps, >= 0) is where step 0 lies in the song a clock receiver follows: with
  // clock_out, 0 sends Start (0xFA); later positions send Song Position Pointer (0xF2, when
  // the position fits its 14 bits) and then Continue (0xFB), so a receiver goes on from there.
  // std::invalid_argument outside 0..kMaxStartPosition (nothing started). While running it
  // does nothing (bpm and song_position ignored: set_bpm() changes the tempo; stop() first).
  void start(double bpm, int64_t song_position = 0);
  // Ask the thread to stop, wait for it. On its way out it sends the all-off sequence (and,
  // with clock_out, MIDI Stop 0xFC when it had sent Start or Continue). Idempotent.
  void stop();
  bool running() const { return thread_.joinable(); }

  // Takes effect at the next step boundary. Throws std::invalid_argument outside 20..400.
  void set_bpm(double bpm);
  double bpm() const { return bpm_.load(std::memory_order_relaxed); }
  // Steps whose deadline has passed (the next step due is this one).
  int64_t steps_played() const { return steps_played_.load(std::memory_order_acquire); }
  // The song position of the next step due (16th steps): start()'s song_position plus
  // steps_played(), read as one value (set to song_position before the thread starts).
  int64_t song_position() const { return position_.load(std::memory_order_acquire); }
  // The steady-clock time of step 0's deadline (valid once steps_played() > 0).
  SteadyClock::time_point origin() const {
    return SteadyClock::time_point(SteadyClock::duration(origin_ticks_.load()));
  }
  // Whether the clock thread got real-time (SCHED_FIFO) scheduling.
  bool realtime() const { return realtime_.load(); }

 private:
  void run();
  bool wait_for_first_block();
  // Plays step `step` (due at `deadline`); returns how many of its clock ticks it sent (with
  // clock_out: at least the first, at the deadline or after the step's notes, whichever is
  // later; more where it waited for a late block).
  int play_step(int64_t step, SteadyClock::time_point deadline,
                SteadyClock::duration step_length);
  // Sends the clock ticks of the step due at `deadline` that are due by now, from tick `sent`
  // on; returns the new count. So a block awaited never holds the outgoing clock up.
  int send_due_ticks(SteadyClock::time_point deadline, SteadyClock::duration step_length,
                     int sent);
  void send_events(const StepEvents& block, bool note_ons);
  void send_transport_start();  // clock_out: Start, or Song Position Pointer and Continue

  MidiOutput& out_;
  NoteTracker& tracker_;
  BlockQueue& blocks_;
  LatenessLog& lateness_;
  const int channel_;
  const bool clock_out_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int64_t song_position_ = 0;  // set before the thread starts, read by it
  std::atomic<bool> realtime_{false};
  std::atomic<double> bpm_{120.0};
  std::atomic<int64_t> steps_played_{0};
  std::atomic<int64_t> position_{0};
  std::atomic<SteadyClock::rep> origin_ticks_{0};
  const std::atomic<bool>* producer_alive_;
  // The output failed (this run, or it owed note-offs at start()) and has not had the all-off
  // sequence since. Clock thread, once started.
  bool output_failed_ = false;
  bool released_after_producer_ = false;  // clock-thread only
};

}  // namespace emolive
