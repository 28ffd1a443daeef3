// Turning the decoder's probabilities into notes, one step at a time.
#pragma once

#include <array>
#include <cstdint>

#include "emolive/model_card.hpp"
#include "emolive/rng.hpp"

namespace emolive {

// One note event of a step; key is the key index 0..87 (MIDI pitch key + 21) of the note
// played (after the sampler's transposition).
struct NoteEvent {
  enum Kind : uint8_t { kOff = 0, kOn = 1 };
  Kind kind;
  uint8_t key;
  uint8_t velocity;  // 1..127 for kOn, 0 for kOff
};

// Every event of one step: at most one note-off and one note-on per key.
struct StepEvents {
  static constexpr int kCapacity = 2 * kPitchCount;
  int64_t step = 0;
  int count = 0;
  std::array<NoteEvent, kCapacity> events{};
  void clear(int64_t at_step) { step = at_step; count = 0; }
  void push(NoteEvent e) { if (count < kCapacity) events[count++] = e; }
};

struct SamplerSettings {
  float temperature = 1.0f;      // divides the onset logits; 0.05..5
  float onset_threshold = 0.5f;  // used when deterministic
  float hold_threshold = 0.5f;   // a sounding key continues while sigmoid(hold) > this
  bool deterministic = false;    // onset when p > onset_threshold instead of a Bernoulli draw
  uint16_t scale_mask = 0x0FFF;  // bit c set: pitch class c (0 = C) may start notes
  // Semitones from the model's keys to the notes played (-11..11): a model trained in one
  // tonic (card "tonic") plays in another. The scale mask applies to the notes played; a note
  // moved off the 88 keys is not started.
  int transpose = 0;
  int max_hold_steps = 64;       // safety: no note sounds longer than this many steps (4 bars)
  int max_onsets_per_step = 0;   // keep only the most probable onsets of those drawn; 0 = all
};

class Sampler {
 public:
  explicit Sampler(uint64_t seed) : rng_(seed) {}

  // Decide this step's notes. Appends note-offs (hold ended, re-strike, too long) before
  // note-ons to `events`, and writes the frame actually played (onset|hold|velocity, 264
  // floats) to `frame`, which is the decoder's `prev` for the next step. `must_start`: if
  // the draw starts no note, the most probable key the scale allows starts anyway (the first
  // step of a performance, so that play() is heard at once; no extra random draw).
  void sample(const float* onset_logits, const float* hold_logits, const float* velocity,
              const SamplerSettings& settings, float* frame, StepEvents& events,
              bool must_start = false);
  // Note-offs for every sounding key, and forget them (end of a performance).
  void release_all(StepEvents& events);
  int sounding_count() const;
  // `key` is the model's key index (before transposition).
  bool sounding(int key) const { return held_steps_[key] > 0; }
  // Steps sampled whose onset logits held a NaN (those keys start nothing: a broken model
  // for some input, which the load check at one silent input cannot see; helper-65).
  int64_t nonfinite_steps() const { return nonfinite_steps_; }

 private:
  Rng rng_;
  int64_t nonfinite_steps_ = 0;
  std::array<int, kPitchCount> held_steps_{};  // steps a model key has sounded; 0 = silent
  // The key index each sounding model key was played on (its note-off goes there even when
  // the transposition changed meanwhile).
  std::array<uint8_t, kPitchCount> played_key_{};
};

float sigmoid(float x);

// Keep the `cap` onsets (strike[k] != 0) with the highest probability; clear the others.
void limit_onsets(std::array<uint8_t, kPitchCount>& strike,
                  const std::array<float, kPitchCount>& p_onset, int cap);

}  // namespace emolive
