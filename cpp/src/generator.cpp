#include "emolive/generator.hpp"

#include <algorithm>

namespace emolive {

SamplerSettings sampling_from_card(const ModelCard& card) {
  SamplerSettings s;
  s.temperature = card.temperature;
  s.onset_threshold = card.onset_threshold;
  s.hold_threshold = card.hold_threshold;
  s.max_onsets_per_step = card.max_onsets_per_step;
  return s;
}

Generator::Generator(const Model& model, const GeneratorConfig& config, StepGraph graph)
    : Stream(model.card().z, model.card().segment_steps, config),
      model_(model),
      buffers_(model.make_buffers(1, graph)) {}

void Generator::produce(StepEvents& out) {
  DecoderBuffers& b = *buffers_;
  if (begin_step(b.z.data(), b.emotion.data())) model_.decode_init_in_place(b);
  model_.decode_step_in_place(b);
  // The played frame overwrites prev: it is the next step's input.
  end_step(b.onset_logits.data(), b.hold_logits.data(), b.velocity.data(), b.prev.data(), out);
}

void Generator::end_decoding() noexcept { end_runs(buffers_->run_options); }

void Generator::allow_decoding() noexcept {
  try {
    buffers_->run_options.UnsetTerminate();
  } catch (...) {
  }
}

void Generator::finish(StepEvents& out) {
  Stream::finish(out);
  std::fill(buffers_->prev.begin(), buffers_->prev.end(), 0.0f);
}

}  // namespace emolive
