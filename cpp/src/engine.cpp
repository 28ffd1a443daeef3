#include "emolive/engine.hpp"

#include <algorithm>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include "client_names.hpp"
#include "emolive/errors.hpp"

namespace emolive {

namespace {

// Why the engine could not `what` (start, play): the system refused it a thread. A limit on
// processes (ulimit -u) or on memory (ulimit -v: each thread reserves a stack) does that.
std::string thread_refused(const char* what, const std::system_error& e) {
  return std::string("could not ") + what + ": the system refused the engine a thread (" + e.what() +
         "); a limit on processes or memory may be too low (ulimit -u, ulimit -v)";
}

// How long stop() waits for the generator's step in progress before ONNX Runtime is told to end
// it: a step takes under a millisecond, but a graph from elsewhere can loop for ever (Ctrl-C
// and SIGTERM then hung the command in stop(); helper-90).
constexpr std::chrono::milliseconds kStepGrace{500};

}  // namespace

Engine::Engine(std::shared_ptr<const Model> model, std::unique_ptr<MidiOutput> output,
               const EngineConfig& config)
    : owner_pid_(process_id()),
      model_(std::move(model)),
      config_(config),
      temperature_(config.temperature),
      walk_steps_per_point_(config.walk_steps_per_point) {
  if (!model_) throw std::invalid_argument("engine needs a model");
  if (config.channel < 0 || config.channel > 15) throw std::invalid_argument("channel must be 0..15");
  if (config.program < -1 || config.program > 127) throw std::invalid_argument("program must be 0..127");
  if (config.lookahead_steps < 1 || config.lookahead_steps > int(BlockQueue::capacity())) {
    throw std::invalid_argument("lookahead must be 1..63 steps");
  }
  if (!output) output = std::make_unique<NullOutput>();
  if (config.record) {
    auto recording = std::make_unique<RecordingOutput>(std::move(output));
    recording_ = recording.get();
    output = std::move(recording);
  }
  output_ = std::move(output);
  GeneratorConfig gc;
  gc.seed = config.seed;
  gc.walk_steps_per_point = config.walk_steps_per_point;
  gc.sampling = sampling_from_card(model_->card());
  gc.sampling.temperature = config.temperature;
  generator_ = std::make_unique<Generator>(*model_, gc);
  scheduler_ = std::make_unique<Scheduler>(*output_, tracker_, blocks_, lateness_, config.channel,
                                           config.clock_out, &generator_alive_);
  scheduler_->set_bpm(config.bpm);
  publish_emotion(generator_->emotion());
  try {
    watch_thread_ = std::thread([this] { watch_loop(); });
  } catch (const std::system_error& e) {
    throw EngineError(thread_refused("start", e));
  }
}

Engine::~Engine() {
  if (inherited()) {
    abandon();
    new (&model_) std::shared_ptr<const Model>();  // left too: its sessions may hold the parent's locks
    return;
  }
  try {
    close();
  } catch (...) {  // a destructor must not throw; close() only fails on broken invariants
  }
  if (watch_thread_.joinable()) {  // close() threw before joining it
    watch_stop_ = true;
    watch_thread_.join();
  }
}

void Engine::check_open() const {
  if (inherited()) {
    throw EngineError("this engine was made in another process (the parent of a fork()); make "
                      "a new one in this process");
  }
  if (closed_) throw EngineError("the engine is closed");
}

bool Engine::inherited() const { return process_id() != owner_pid_; }

std::unique_lock<std::mutex> Engine::lock_open() {
  if (inherited()) check_open();  // raises before a lock a parent's thread may have held
  std::unique_lock<std::mutex> lock(caller_mutex_);
  check_open();
  return lock;
}

void Engine::abandon() {
  closed_ = true;
  playing_ = false;
  // Nothing is joined, stopped or closed: the parts are left, not destroyed (their storage is
  // reused or released, which ends their lifetime without their destructors).
  new (&generator_thread_) std::thread();
  new (&watch_thread_) std::thread();
  (void)scheduler_.release();
  (void)generator_.release();
  (void)output_.release();  // recording_ is this object too
}

void Engine::publish_emotion(const Weights& w) {
  for (int i = 0; i < 4; ++i) emotion_[i].store(w[i], std::memory_order_relaxed);
}

Weights Engine::emotion() const {
  return {emotion_[0].load(), emotion_[1].load(), emotion_[2].load(), emotion_[3].load()};
}

void Engine::apply(const Command& c) {
  switch (c.kind) {
    case Command::kEmotion: generator_->set_emotion(c.weights, c.glide_steps); break;
    case Command::kTemperature: generator_->set_temperature(c.temperature); break;
    case Command::kKey: generator_->set_key(c.mask, c.transpose); break;
    case Command::kWalkRate: generator_->set_walk_rate(c.glide_steps); break;
  }
}

void Engine::send_command(const Command& c) {
  if (!playing_) {  // no generator thread: apply here
    apply(c);
    publish_emotion(generator_->emotion());
    return;
  }
  while (!commands_.push(c)) {
    if (!generator_alive_.load()) {  // the generator stopped on an error: nobody drains
      apply(c);
      publish_emotion(generator_->emotion());
      return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void Engine::play(const Weights& emotion) {
  const Weights weights = normalised(emotion);
  const auto lock = lock_open();
  play_locked(&weights, 0);
}

void Engine::resume(int64_t bar) {
  if (bar != kBarAfterStop && (bar < 0 || bar > kMaxBar)) {
    throw std::invalid_argument("bar must be in 0.." + std::to_string(kMaxBar));
  }
  const auto lock = lock_open();
  play_locked(nullptr, bar);
}

void Engine::play_locked(const Weights* emotion, int64_t bar) {
  check_open();
  // The generator stopped on an error while the clock plays silence: start afresh (the
  // documented recovery), rather than queue a command nobody drains.
  if (playing_ && !generator_alive_.load()) stop_locked();
  if (playing_) {
    if (emotion) send_command({Command::kEmotion, *emotion, 0, 0.f, 0, 0});
    return;
  }
  // The next bar line from where the last run stopped (which may have played past kMaxBar).
  const int64_t song_position =
      bar == kBarAfterStop
          ? std::min((stopped_at_.load() + kStepsPerBar - 1) / kStepsPerBar * kStepsPerBar,
                     kMaxStartPosition)
          : bar * kStepsPerBar;
  if (emotion) apply({Command::kEmotion, *emotion, 0, 0.f, 0, 0});
  publish_emotion(generator_->emotion());
  {
    std::lock_guard<std::mutex> error_lock(error_mutex_);
    generator_error_.clear();
    port_check_error_.clear();
  }
  output_->wait_until_connected();  // the program change and the first note are not lost
  {
    std::lock_guard<std::mutex> logs(logs_mutex_);
    if (recording_) recording_->clear();
    // The log is per run (lateness_us()); the counts go on over runs, as notes_sent does (the
    // last line of a paused and resumed command said "76 notes, 5 late": late of its last run).
    earlier_late_notes_ += lateness_.late_notes();
    earlier_max_lateness_us_ = std::max(earlier_max_lateness_us_, lateness_.max_us());
    earlier_missed_steps_ += lateness_.missed_steps();
    earlier_dropped_notes_ += lateness_.dropped_notes();
    lateness_.clear();
    play_time_ = SteadyClock::now();
  }
  if (config_.program >= 0) {
    const uint8_t msg[2] = {uint8_t(0xC0 | config_.channel), uint8_t(config_.program)};
    output_->send(msg, 2);
  }
  generator_stop_ = false;
  generator_alive_ = true;
  // The clock first (it waits for the first block): its start sets steps_played() to 0, which
  // the generator's lookahead counts from (started first, it could read the last run's count
  // and run up to that many steps ahead, past the one-beat lookahead).
  try {
    scheduler_->start(scheduler_->bpm(), song_position);
    generator_thread_ = std::thread([this] { generator_loop(); });
  } catch (const std::system_error& e) {  // no thread to be had: the engine stays stopped
    generator_alive_ = false;
    scheduler_->stop();  // a clock that started waits for the first block: it has sent no note
    throw EngineError(thread_refused("play", e));
  }
  playing_ = true;
}

void Engine::generator_loop() {
  struct Alive {  // clears generator_alive_ on every way out
    std::atomic<bool>& flag;
    ~Alive() { flag.store(false); }
  } alive{generator_alive_};
  StepEvents block;
  Command command;
  while (!generator_stop_.load(std::memory_order_acquire)) {
    try {
      while (commands_.pop(command)) apply(command);
      const int64_t horizon = scheduler_->steps_played() + config_.lookahead_steps;
      if (generator_->step() >= horizon) {
        // Lookahead full: the clock frees a slot once per step (>= 37.5 ms at 400 BPM), so
        // polling every millisecond keeps the lookahead full at little cost.
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      generator_->produce(block);
      publish_emotion(generator_->emotion());
      nonfinite_steps_.store(generator_->nonfinite_steps(), std::memory_order_relaxed);
    } catch (const std::exception& e) {
      if (generator_stop_.load(std::memory_order_acquire)) return;  // stop() ended the step
      std::lock_guard<std::mutex> lock(error_mutex_);
      generator_error_ = e.what();
      return;  // the clock keeps time and, lacking blocks, plays silence
    }
    while (!blocks_.push(block)) {
      if (generator_stop_.load(std::memory_order_acquire)) return;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
}

void Engine::set_emotion(const Weights& emotion, int glide_steps) {
  if (glide_steps < 0) throw std::invalid_argument("glide length must be >= 0 steps");
  const auto lock = lock_open();
  send_command({Command::kEmotion, normalised(emotion), glide_steps, 0.f, 0, 0});
}

void Engine::morph(const Weights& from, const Weights& to, int glide_steps) {
  if (glide_steps < 0) throw std::invalid_argument("glide length must be >= 0 steps");
  const Weights a = normalised(from), b = normalised(to);
  const auto lock = lock_open();
  play_locked(&a, 0);
  send_command({Command::kEmotion, b, glide_steps, 0.f, 0, 0});
}

void Engine::set_bpm(double bpm) {
  const auto lock = lock_open();
  scheduler_->set_bpm(bpm);
}

void Engine::set_temperature(float temperature) {
  if (!(temperature >= 0.05f && temperature <= 5.0f)) {
    throw std::invalid_argument("temperature must be in 0.05..5");
  }
  const auto lock = lock_open();
  temperature_ = temperature;
  send_command({Command::kTemperature, {}, 0, temperature, 0, 0});
}

void Engine::set_key(uint16_t mask, int transpose) {
  if ((mask & 0x0FFF) == 0) throw std::invalid_argument("a scale needs at least one pitch class");
  if (transpose < -11 || transpose > 11) {
    throw std::invalid_argument("transposition must be -11..11 semitones, got " +
                                std::to_string(transpose));
  }
  const auto lock = lock_open();
  scale_mask_ = mask & 0x0FFF;
  transpose_ = transpose;
  send_command({Command::kKey, {}, 0, 0.f, scale_mask_, transpose_});
}

void Engine::set_walk_rate(int steps_per_point) {
  if (steps_per_point < 1) throw std::invalid_argument("latent walk rate must be >= 1 step per point");
  const auto lock = lock_open();
  walk_steps_per_point_ = steps_per_point;
  send_command({Command::kWalkRate, {}, steps_per_point, 0.f, 0, 0});
}

void Engine::stop() {
  if (inherited()) return;  // nothing plays in this process
  std::lock_guard<std::mutex> lock(caller_mutex_);
  stop_locked();
}

void Engine::stop_locked() {
  if (!playing_) return;
  scheduler_->stop();  // the clock thread sends the all-off sequence on its way out
  stopped_at_ = scheduler_->song_position();
  generator_stop_ = true;
  const auto give_up = SteadyClock::now() + kStepGrace;
  while (generator_alive_.load() && SteadyClock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (generator_alive_.load()) generator_->end_decoding();
  generator_thread_.join();
  generator_->allow_decoding();
  Command command;
  while (commands_.pop(command)) apply(command);
  StepEvents discard;
  while (blocks_.pop(discard)) {
  }
  generator_->finish(discard);  // the tracker already silenced these notes
  publish_emotion(generator_->emotion());
  playing_ = false;
}

void Engine::close() {
  if (inherited()) {
    abandon();
    return;
  }
  std::lock_guard<std::mutex> lock(caller_mutex_);
  if (closed_) return;
  stop_locked();
  closed_ = true;
  watch_stop_ = true;
  watch_thread_.join();
  send_owed_at_close();
  std::lock_guard<std::mutex> parts(parts_mutex_);
  config_.bpm = scheduler_->bpm();  // stats() after close: the tempo it ended with
  scheduler_.reset();
  if (recording_) {
    recording_->close_inner();  // closes the port; what was recorded stays readable
  } else {
    output_.reset();  // closes the port
  }
}

EngineStats Engine::stats() const {
  EngineStats s;
  s.emotion = emotion();
  s.notes_sent = tracker_.notes_sent();
  s.sounding = tracker_.count();
  s.owed_note_offs = tracker_.owed();
  s.nonfinite_steps = nonfinite_steps_.load(std::memory_order_relaxed) +
                     offline_nonfinite_steps_.load(std::memory_order_relaxed);
  s.temperature = temperature_;
  if (inherited()) {  // a fork() child: closed here (it read the parent's state, helper-66), and
    s.bpm = config_.bpm;  // the parent's threads may have held the locks below at the fork
    s.step = stopped_at_.load();
    return s;
  }
  {
    std::lock_guard<std::mutex> logs(logs_mutex_);
    s.late_notes = earlier_late_notes_ + lateness_.late_notes();
    s.max_lateness_us = std::max(earlier_max_lateness_us_, lateness_.max_us());
    s.missed_steps = earlier_missed_steps_ + lateness_.missed_steps();
    s.dropped_notes = earlier_dropped_notes_ + lateness_.dropped_notes();
  }
  if (recording_) s.recording_dropped = recording_->dropped();
  std::unique_lock<std::mutex> parts(parts_mutex_);
  if (!closed_) {
    s.step = scheduler_->song_position();
    s.bpm = scheduler_->bpm();
    s.realtime = scheduler_->realtime();
    if (output_->failed()) {
      s.port_error = output_->error_text();
      s.port_may_return = output_->may_recover();
    }
    s.port_reconnects = output_->reconnects();
  } else {
    s.bpm = config_.bpm;
    s.step = stopped_at_.load();  // where close() stopped it (it read 0, helper-55)
  }
  parts.unlock();
  std::lock_guard<std::mutex> lock(error_mutex_);
  s.generator_error = generator_error_;
  if (s.port_error.empty()) s.port_error = port_check_error_;
  return s;
}

std::vector<TimedMessage> Engine::recorded() const {
  std::vector<TimedMessage> out;
  if (!recording_) return out;
  std::lock_guard<std::mutex> logs(logs_mutex_);
  const size_t n = recording_->count();
  out.reserve(n);
  const int64_t origin = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             play_time_.time_since_epoch()).count();
  for (size_t i = 0; i < n; ++i) {
    const RecordedMessage& m = recording_->at(i);
    out.push_back({double(m.time_ns - origin) * 1e-9,
                   std::vector<uint8_t>(m.bytes, m.bytes + m.size)});
  }
  return out;
}

std::vector<float> Engine::lateness_us() const {
  std::lock_guard<std::mutex> logs(logs_mutex_);
  return std::vector<float>(lateness_.data(), lateness_.data() + lateness_.count());
}

std::string Engine::output_description() const {
  std::lock_guard<std::mutex> parts(parts_mutex_);
  return closed_ || !output_ ? "closed" : output_->describe();
}

std::string Engine::output_source_name() const {
  std::lock_guard<std::mutex> parts(parts_mutex_);
  return closed_ || !output_ ? "" : output_->source_name();
}

}  // namespace emolive
