// One stream of music: latent walk + emotion glide -> decoder steps -> sampled notes.
// The same code serves the live engine (one step at a time, ahead of the clock) and offline
// generation (as fast as the model runs).
//
// Streaming policy: at each phrase start (every card.segment_steps steps) the decoder state is
// re-seeded with decoder_init(z_now, emotion_now); between phrase starts every step gets the
// current z and emotion, so changes are heard within the lookahead. `prev` is the frame played.
#pragma once

#include <cstdint>
#include <memory>

#include "emolive/condition.hpp"
#include "emolive/latent_walk.hpp"
#include "emolive/model.hpp"
#include "emolive/sampler.hpp"

namespace emolive {

// The card's sampling defaults (thresholds, temperature, onset cap) as sampler settings.
SamplerSettings sampling_from_card(const ModelCard& card);

struct GeneratorConfig {
  uint64_t seed = 0;
  int walk_steps_per_point = 32;  // latent walk rate: steps between prior points (2 bars)
  Weights emotion = {0.f, 0.f, 0.f, 1.f};
  SamplerSettings sampling;
};

class Generator {
 public:
  Generator(const Model& model, const GeneratorConfig& config);

  // Decode and sample the next step; `out` is cleared and filled with its events.
  void produce(StepEvents& out);
  // Note-offs for every note still sounding, stamped with the next step; then restart the
  // phrase: the next produce() is step 0 again with a fresh decoder state and silent `prev`.
  // The latent walk and random streams continue.
  void finish(StepEvents& out);

  void set_emotion(const Weights& target, int glide_steps) { glide_.set(target, glide_steps); }
  void set_temperature(float t);
  void set_scale_mask(uint16_t mask) { settings_.scale_mask = mask; }
  void set_walk_rate(int steps_per_point) { walk_.set_steps_per_point(steps_per_point); }

  int64_t step() const { return step_; }
  const Weights& emotion() const { return glide_.current(); }
  const SamplerSettings& settings() const { return settings_; }
  int sounding_count() const { return sampler_.sounding_count(); }

 private:
  const Model& model_;
  std::unique_ptr<DecoderBuffers> buffers_;
  LatentWalk walk_;
  EmotionGlide glide_;
  Sampler sampler_;
  SamplerSettings settings_;
  int64_t step_ = 0;
};

}  // namespace emolive
