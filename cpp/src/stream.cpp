#include "emolive/stream.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace emolive {

namespace {
// Independent random streams for the walk and the sampler, both derived from the one seed.
constexpr uint64_t kSamplerStream = 0x5EED5A3B1E5ull;
}  // namespace

Stream::Stream(int z_dim, int segment_steps, const GeneratorConfig& config)
    : segment_steps_(segment_steps),
      walk_(z_dim, config.seed, config.walk_steps_per_point),
      glide_(normalised(config.emotion)),
      sampler_(config.seed ^ kSamplerStream),
      settings_(config.sampling) {
  if (segment_steps < 1) throw std::invalid_argument("steps per phrase must be >= 1");
  set_temperature(settings_.temperature);
  set_key(settings_.scale_mask, settings_.transpose);
}

void Stream::set_key(uint16_t mask, int transpose) {
  if (transpose < -11 || transpose > 11) {  // a key index k + transpose must stay an int
    throw std::invalid_argument("transpose must be in -11..11 semitones, got " +
                                std::to_string(transpose));
  }
  settings_.scale_mask = mask;
  settings_.transpose = transpose;
}

void Stream::set_temperature(float t) {
  if (!(t >= 0.05f && t <= 5.0f)) throw std::invalid_argument("temperature must be in 0.05..5");
  settings_.temperature = t;
}

bool Stream::begin_step(float* z, float* emotion) {
  walk_.next(z);
  const Weights w = glide_.next();
  std::copy(w.begin(), w.end(), emotion);
  return step_ % segment_steps_ == 0;
}

void Stream::end_step(const float* onset_logits, const float* hold_logits, const float* velocity,
                      float* frame, StepEvents& out) {
  out.clear(step_);
  // Step 0 of a performance starts a note, so that playing is heard at once.
  sampler_.sample(onset_logits, hold_logits, velocity, settings_, frame, out, step_ == 0);
  ++step_;
}

void Stream::finish(StepEvents& out) {
  out.clear(step_);
  sampler_.release_all(out);
  step_ = 0;
}

}  // namespace emolive
