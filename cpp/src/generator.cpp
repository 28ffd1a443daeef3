#include "emolive/generator.hpp"

#include <algorithm>
#include <stdexcept>

namespace emolive {

namespace {
// Independent random streams for the walk and the sampler, both derived from the one seed.
constexpr uint64_t kSamplerStream = 0x5EED5A3B1E5ull;
}  // namespace

SamplerSettings sampling_from_card(const ModelCard& card) {
  SamplerSettings s;
  s.temperature = card.temperature;
  s.onset_threshold = card.onset_threshold;
  s.hold_threshold = card.hold_threshold;
  s.max_onsets_per_step = card.max_onsets_per_step;
  return s;
}

Generator::Generator(const Model& model, const GeneratorConfig& config)
    : model_(model),
      buffers_(model.make_buffers()),
      walk_(model.card().z, config.seed, config.walk_steps_per_point),
      glide_(normalised(config.emotion)),
      sampler_(config.seed ^ kSamplerStream),
      settings_(config.sampling) {
  set_temperature(settings_.temperature);
}

void Generator::set_temperature(float t) {
  if (!(t >= 0.05f && t <= 5.0f)) throw std::invalid_argument("temperature must be in 0.05..5");
  settings_.temperature = t;
}

void Generator::produce(StepEvents& out) {
  DecoderBuffers& b = *buffers_;
  out.clear(step_);
  walk_.next(b.z.data());
  const Weights w = glide_.next();
  std::copy(w.begin(), w.end(), b.emotion.begin());
  if (step_ % model_.card().segment_steps == 0) model_.decode_init_1(b);
  model_.decode_step_1(b);
  // The played frame overwrites prev: it is the next step's input.
  sampler_.sample(b.onset_logits.data(), b.hold_logits.data(), b.velocity.data(), settings_,
                  b.prev.data(), out);
  ++step_;
}

void Generator::finish(StepEvents& out) {
  out.clear(step_);
  sampler_.release_all(out);
  step_ = 0;
  std::fill(buffers_->prev.begin(), buffers_->prev.end(), 0.0f);
}

}  // namespace emolive
