// The per-stream half of a generator: everything of one stream of music except the decoder.
//
// A step is begin_step (latent and emotion for this step) -> the caller's decoder call ->
// end_step (sampling). Generator runs one Stream through its own batch-1 decoder buffers;
// BatchGenerator runs N Streams in lockstep through one batched decoder call. Both use this
// code, so a stream's notes depend only on its config and the decoder's outputs.
#pragma once

#include <cstdint>

#include "emolive/condition.hpp"
#include "emolive/latent_walk.hpp"
#include "emolive/sampler.hpp"

namespace emolive {

struct GeneratorConfig {
  uint64_t seed = 0;
  int walk_steps_per_point = 32;  // latent walk rate: steps between prior points (2 bars)
  Weights emotion = {0.f, 0.f, 0.f, 1.f};
  SamplerSettings sampling;
};

class Stream {
 public:
  // z_dim: the model's latent size; segment_steps: steps per phrase (>= 1).
  Stream(int z_dim, int segment_steps, const GeneratorConfig& config);

  // Write this step's latent (z_dim floats) and emotion (4 floats). Returns true when the step
  // starts a phrase: the decoder state must then be re-seeded with decoder_init(z, emotion)
  // before the decoder step.
  bool begin_step(float* z, float* emotion);
  // Sample this step's notes from the decoder's outputs (88 floats each) into `out` (cleared,
  // stamped with the step), write the frame played (264 floats) to `frame`, which is the
  // decoder's `prev` for the next step, and advance one step.
  void end_step(const float* onset_logits, const float* hold_logits, const float* velocity,
                float* frame, StepEvents& out);
  // Note-offs for every note still sounding, stamped with the next step; the next step is a
  // phrase start again (step 0). The latent walk and random streams continue. The caller
  // clears the decoder's `prev` (silence).
  void finish(StepEvents& out);

  void set_emotion(const Weights& target, int glide_steps) { glide_.set(target, glide_steps); }
  void set_temperature(float t);  // 0.05..5, else std::invalid_argument
  // Transpose -11..11 semitones, else std::invalid_argument (also from the constructor).
  void set_key(uint16_t mask, int transpose);
  void set_walk_rate(int steps_per_point) { walk_.set_steps_per_point(steps_per_point); }

  int64_t step() const { return step_; }
  const Weights& emotion() const { return glide_.current(); }
  int sounding_count() const { return sampler_.sounding_count(); }
  // Steps whose onset logits held a NaN, since the stream was made (Sampler::nonfinite_steps).
  int64_t nonfinite_steps() const { return sampler_.nonfinite_steps(); }

 private:
  int segment_steps_;
  LatentWalk walk_;
  EmotionGlide glide_;
  Sampler sampler_;
  SamplerSettings settings_;
  int64_t step_ = 0;
};

}  // namespace emolive
