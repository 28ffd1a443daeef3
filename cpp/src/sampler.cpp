#include "emolive/sampler.hpp"

#include <algorithm>
#include <cmath>

namespace emolive {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

void limit_onsets(std::array<uint8_t, kPitchCount>& strike,
                  const std::array<float, kPitchCount>& p_onset, int cap) {
  std::array<uint8_t, kPitchCount> keys{};
  int count = 0;
  for (int k = 0; k < kPitchCount; ++k) {
    if (strike[k]) keys[count++] = uint8_t(k);
  }
  if (count <= cap) return;
  // The `cap` most probable keys first (ties: the lower key), the rest lose their onset.
  std::partial_sort(keys.begin(), keys.begin() + cap, keys.begin() + count,
                    [&](uint8_t a, uint8_t b) {
                      return p_onset[a] != p_onset[b] ? p_onset[a] > p_onset[b] : a < b;
                    });
  for (int i = cap; i < count; ++i) strike[keys[i]] = 0;
}

namespace {
// A velocity 1..127 from the model's 0..1 (a non-finite one, from a broken model, plays at
// mezzo-forte rather than garbage).
uint8_t midi_velocity(float v) {
  const float clamped = std::isfinite(v) ? std::clamp(v, 0.0f, 1.0f) : 0.5f;
  return uint8_t(std::clamp(int(std::lround(clamped * 127.0f)), 1, 127));
}

// Whether model key k may start a note: moved by `transpose` it stays on the keyboard and in
// the scale.
bool allowed_key(const SamplerSettings& s, int k) {
  const int played = k + s.transpose;
  if (played < 0 || played >= kPitchCount) return false;
  return (s.scale_mask >> ((kPitchLow + played) % 12)) & 1u;
}

// The most probable key the scale allows, or -1. A NaN probability is none: compared, it lost
// to nothing, and a step of NaNs started the lowest allowed key (A0; helper-65).
int most_probable_allowed(const std::array<float, kPitchCount>& p_onset, const SamplerSettings& s) {
  int best = -1;
  for (int k = 0; k < kPitchCount; ++k) {
    if (allowed_key(s, k) && !std::isnan(p_onset[k]) && (best < 0 || p_onset[k] > p_onset[best])) best = k;
  }
  return best;
}
}  // namespace

void Sampler::sample(const float* onset_logits, const float* hold_logits, const float* velocity,
                     const SamplerSettings& s, float* frame, StepEvents& events,
                     bool must_start) {
  std::fill(frame, frame + kFrameSize, 0.0f);
  float* onset_out = frame;
  float* hold_out = frame + kPitchCount;
  float* velocity_out = frame + 2 * kPitchCount;
  std::array<uint8_t, kPitchCount> strike{};  // velocity of a new onset, 0 = none
  std::array<float, kPitchCount> p_onset{};
  bool nonfinite = false;
  for (int k = 0; k < kPitchCount; ++k) {
    const float p = p_onset[k] = sigmoid(onset_logits[k] / s.temperature);
    nonfinite |= std::isnan(p);  // no onset: a NaN is below no draw and no threshold
    // One draw per key and step whatever the mask, so the mask does not shift the stream.
    const double u = rng_.uniform();
    const bool onset = s.deterministic ? p > s.onset_threshold : u < p;
    if (onset && allowed_key(s, k)) strike[k] = midi_velocity(velocity[k]);
  }
  nonfinite_steps_ += nonfinite;
  if (s.max_onsets_per_step > 0) limit_onsets(strike, p_onset, s.max_onsets_per_step);
  if (must_start && std::none_of(strike.begin(), strike.end(), [](uint8_t v) { return v; })) {
    const int k = most_probable_allowed(p_onset, s);
    if (k >= 0) strike[k] = midi_velocity(velocity[k]);
  }
  for (int k = 0; k < kPitchCount; ++k) {  // note-offs first
    if (held_steps_[k] == 0) continue;
    const bool hold = sigmoid(hold_logits[k]) > s.hold_threshold;  // as training/onnx_runner.py
    if (strike[k] || !hold || held_steps_[k] >= s.max_hold_steps) {
      events.push({NoteEvent::kOff, played_key_[k], 0});
      held_steps_[k] = 0;
    } else {
      ++held_steps_[k];
      hold_out[k] = 1.0f;
    }
  }
  for (int k = 0; k < kPitchCount; ++k) {
    if (!strike[k]) continue;
    played_key_[k] = uint8_t(k + s.transpose);  // on the keyboard: allowed_key checked it
    events.push({NoteEvent::kOn, played_key_[k], strike[k]});
    held_steps_[k] = 1;
    onset_out[k] = 1.0f;
    hold_out[k] = 1.0f;
    velocity_out[k] = strike[k] / 127.0f;
  }
}

void Sampler::release_all(StepEvents& events) {
  for (int k = 0; k < kPitchCount; ++k) {
    if (held_steps_[k] == 0) continue;
    events.push({NoteEvent::kOff, played_key_[k], 0});
    held_steps_[k] = 0;
  }
}

int Sampler::sounding_count() const {
  return int(std::count_if(held_steps_.begin(), held_steps_.end(), [](int h) { return h > 0; }));
}

}  // namespace emolive
