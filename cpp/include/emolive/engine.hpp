// The live engine: a generator thread decoding a bounded lookahead ahead of a clock thread.
//
//   caller --commands (SPSC, producer serialised by caller_mutex_)--> generator thread
//   generator --StepEvents blocks (SPSC)--> clock thread (Scheduler) --> MidiOutput
//   watch thread: checks now and then that the output's port still exists (while playing)
//
// Tempo goes straight to the clock as an atomic (applied at the next step). Emotion,
// temperature and key go to the generator and are heard within the lookahead (one beat by
// default). Every public method may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "emolive/batch_generator.hpp"
#include "emolive/clock.hpp"
#include "emolive/generator.hpp"
#include "emolive/midi_out.hpp"
#include "emolive/model.hpp"
#include "emolive/note_tracker.hpp"
#include "emolive/scheduler.hpp"

namespace emolive {

struct EngineConfig {
  double bpm = 120.0;
  int channel = 0;           // 0..15 (Python's channel 1..16 minus one)
  uint64_t seed = 0;
  int program = -1;          // GM program 0..127 sent at each play(), -1 = none
  float temperature = 1.0f;
  bool clock_out = false;    // MIDI clock 0xF8 x24 per quarter, 0xFA start, 0xFC stop
  bool record = false;       // keep a copy of every sent message
  int lookahead_steps = 4;   // steps decoded ahead of the clock (one beat)
  int walk_steps_per_point = 32;
};

struct EngineStats {
  // Song position in 16th steps: steps played since the last play(), going on across
  // stop()/resume() (a resume goes on at a bar line, by default the one after the stop).
  int64_t step = 0;
  double bpm = 0.0;
  float temperature = 0.0f;
  Weights emotion{};
  int64_t notes_sent = 0;
  int sounding = 0;
  // Note-offs of a failed output not sent yet (sent once it is back; a receiver may hold these
  // notes meanwhile). Not in `sounding`.
  int owed_note_offs = 0;
  int64_t late_notes = 0;         // since the engine was made, as notes_sent
  float max_lateness_us = 0.0f;   // since the engine was made
  // Steps not decoded in time (they played nothing) and the note-ons their blocks, come too
  // late, held; since the engine was made. Non-zero: the model is too slow for this tempo.
  int64_t missed_steps = 0;
  int64_t dropped_notes = 0;
  // Decoded steps whose onset logits held a NaN (those keys start nothing), live and offline,
  // since the engine was made: a model broken for some input. 0 for a sound model.
  int64_t nonfinite_steps = 0;
  std::string port_error;       // empty when none (or once the port is reconnected)
  int port_reconnects = 0;      // times the output reconnected after losing its port
  bool port_may_return = false;  // with port_error: the engine may still reconnect by itself
  std::string generator_error;  // empty when none
  size_t recording_dropped = 0;
  bool realtime = false;  // the clock thread runs with real-time priority
};

struct TimedMessage {
  double seconds;  // since the last play()
  std::vector<uint8_t> bytes;
};

class Engine {
 public:
  Engine(std::shared_ptr<const Model> model, std::unique_ptr<MidiOutput> output,
         const EngineConfig& config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Starts at song position 0 (with clock_out: MIDI Start), or jumps to `emotion` if playing.
  void play(const Weights& emotion);
  // Starts again with the emotion as stop() left it: a glide under way goes on from where it
  // stopped to its target. The song goes on at bar `bar` (>= 0; with clock_out: Song Position
  // Pointer and Continue, or Start at bar 0); kBarAfterStop is the first bar line at or after
  // where stop() came. std::invalid_argument for a bar outside 0..kMaxBar. No-op while playing.
  static constexpr int64_t kBarAfterStop = -1;
  static constexpr int64_t kMaxBar = kMaxStartPosition / kStepsPerBar;  // 2^40
  void resume(int64_t bar = kBarAfterStop);
  void set_emotion(const Weights& emotion, int glide_steps);
  void morph(const Weights& from, const Weights& to, int glide_steps);  // starts if stopped
  void set_bpm(double bpm);
  void set_temperature(float temperature);
  // Scale lock and transposition: bit c of `mask` set means pitch class c (0 = C) may start
  // notes; `transpose` (-11..11 semitones) moves every note the model starts. Both apply to
  // the notes played; std::invalid_argument for an empty mask or a transposition out of range.
  void set_key(uint16_t mask, int transpose);
  // Latent walk rate: steps between prior points (>= 1); the walk keeps its position.
  void set_walk_rate(int steps_per_point);
  void stop();   // note-offs, CC64 0, CC123, CC120; idempotent
  void close();  // stop, then close the port; idempotent

  // In a fork() child an engine made before the fork is closed, and so not playing (they read
  // the parent's state: "playing" in the child; helper-63).
  bool is_playing() const { return !inherited() && playing_.load(); }
  bool is_closed() const { return inherited() || closed_.load(); }
  EngineStats stats() const;
  Weights emotion() const;
  std::vector<TimedMessage> recorded() const;
  std::vector<float> lateness_us() const;
  std::string output_description() const;
  // The output's own port as others see it (MidiOutput::source_name()), as it is now: a JACK
  // server's restart may give its client another name. "" once closed.
  std::string output_source_name() const;
  const Model& model() const { return *model_; }

  // Offline: `steps` steps through a fresh generator (same code as live) with `seed`, the
  // engine's temperature and key; with `glide_to`, the emotion glides there over `glide_steps`
  // from step 0. Note-offs for notes still sounding come at step == steps. Both offline calls
  // throw Cancelled once another thread requests `*cancel` (ending a decoder step in progress).
  std::vector<OfflineEvent> generate(int steps, const Weights& emotion, uint64_t seed,
                                     const Weights* glide_to = nullptr, int glide_steps = 0,
                                     Cancellation* cancel = nullptr) const;
  // Offline, one stream per seed decoded in batches (batch_generator.hpp): stream i as
  // generate(steps, emotion, seeds[i], glide_to, glide_steps), up to the rounding of batched
  // matrix products.
  std::vector<std::vector<OfflineEvent>> generate_many(int steps, const Weights& emotion,
                                                       const std::vector<uint64_t>& seeds,
                                                       const Weights* glide_to = nullptr,
                                                       int glide_steps = 0,
                                                       const BatchPlan& plan = {},
                                                       Cancellation* cancel = nullptr) const;

 private:
  struct Command {
    enum Kind : uint8_t { kEmotion, kTemperature, kKey, kWalkRate } kind;
    Weights weights;
    int glide_steps;  // kEmotion: glide length; kWalkRate: steps per latent point
    float temperature;
    uint16_t mask;  // kKey: the scale mask
    int transpose;  // kKey: semitones, -11..11
  };
  void send_command(const Command& c);  // caller_mutex_ held
  void apply(const Command& c);         // generator thread, or caller when stopped
  void generator_loop();
  void watch_loop();  // port checks while playing, or while stopped owing note-offs; until close()
  void send_owed_note_offs();  // watch thread: a stopped engine's output is back
  void send_owed_at_close();  // close(), after the watch thread: up to 1 s for the output to return
  void publish_emotion(const Weights& w);
  // emotion null: the condition as it is (resume); bar >= 0 or kBarAfterStop
  void play_locked(const Weights* emotion, int64_t bar);
  void stop_locked();
  void check_open() const;
  std::unique_lock<std::mutex> lock_open();  // caller_mutex_, once the engine is open here
  // In a child of fork(), the engine's threads are not there and its MIDI client is the
  // parent's: joining a thread that is not there crashed the child (SIGSEGV in close()), and
  // closing the client would close the parent's. There the engine counts as closed: play and
  // the setters raise, stop() and close() do nothing, and the destructor leaves the threads,
  // the port and the model to the process's end (abandon()).
  bool inherited() const;
  void abandon();
  // The offline run's settings: the engine's walk rate, temperature and key.
  OfflineRequest offline_request(int steps, const Weights& emotion, const Weights* glide_to,
                                 int glide_steps, Cancellation* cancel) const;

  const long owner_pid_;  // the process that made the engine
  std::shared_ptr<const Model> model_;
  std::unique_ptr<MidiOutput> output_;
  RecordingOutput* recording_ = nullptr;  // output_ itself when record is on
  EngineConfig config_;
  NoteTracker tracker_;
  LatenessLog lateness_;
  BlockQueue blocks_;
  SpscQueue<Command, 256> commands_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Generator> generator_;
  std::thread generator_thread_;
  std::atomic<bool> generator_stop_{false};
  std::atomic<bool> generator_alive_{false};  // false once the loop has returned
  std::thread watch_thread_;
  std::atomic<bool> watch_stop_{false};
  std::atomic<bool> playing_{false}, closed_{false};
  std::atomic<int64_t> stopped_at_{0};  // song position (16th steps) where the last run stopped
  std::array<std::atomic<float>, 4> emotion_{};
  mutable std::mutex error_mutex_;  // guards generator_error_ (never taken by the clock thread)
  std::string generator_error_;
  std::string port_check_error_;  // the output's check_connection() threw (watch thread)
  mutable std::mutex caller_mutex_;  // serialises callers (the command queue's single producer)
  // Held by close() while it destroys scheduler_ and closes output_, and by the readers that
  // do not take caller_mutex_ (stats(), output_description()), so that no reader on another
  // thread uses them meanwhile. Never taken by the clock thread.
  mutable std::mutex parts_mutex_;
  // Held by play() while it clears the recording and lateness logs and sets play_time_, and
  // by recorded() and lateness_us() while they copy them: a copy never reads slots the clock
  // thread of a new play() is writing. Never taken by the clock thread.
  mutable std::mutex logs_mutex_;
  int64_t earlier_late_notes_ = 0;       // late notes of the runs before this one (logs_mutex_)
  float earlier_max_lateness_us_ = 0.0f;  // their largest lateness (logs_mutex_)
  std::atomic<int64_t> nonfinite_steps_{0};  // the generator's, published after each step
  mutable std::atomic<int64_t> offline_nonfinite_steps_{0};  // generate()'s and generate_many()'s
  int64_t earlier_missed_steps_ = 0;      // missed steps of the runs before this one (logs_mutex_)
  int64_t earlier_dropped_notes_ = 0;     // and their dropped note-ons (logs_mutex_)
  std::atomic<float> temperature_;  // set under caller_mutex_, read by stats() without it
  uint16_t scale_mask_ = 0x0FFF;
  int transpose_ = 0;
  int walk_steps_per_point_;
  SteadyClock::time_point play_time_{};
};

}  // namespace emolive
