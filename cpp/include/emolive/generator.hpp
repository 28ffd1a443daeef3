// One stream of music: latent walk + emotion glide -> decoder steps -> sampled notes.
// The same code serves the live engine (one step at a time, ahead of the clock) and offline
// generation (as fast as the model runs); BatchGenerator (batch_generator.hpp) runs many such
// streams through one batched decoder call.
//
// Streaming policy: at each phrase start (every card.segment_steps steps) the decoder state is
// re-seeded with decoder_init(z_now, emotion_now); between phrase starts every step gets the
// current z and emotion, so changes are heard within the lookahead. `prev` is the frame played.
#pragma once

#include <memory>

#include "emolive/model.hpp"
#include "emolive/stream.hpp"

namespace emolive {

// The card's sampling defaults (thresholds, temperature, onset cap) as sampler settings.
SamplerSettings sampling_from_card(const ModelCard& card);

// A Stream with its own batch-1 decoder buffers (no tensors are created per step). `graph`:
// live play decodes through decoder_step; offline generation (generate_one) through the
// model's batch step if it has one, so that it equals generate_many's pieces bit for bit.
class Generator : public Stream {
 public:
  Generator(const Model& model, const GeneratorConfig& config,
            StepGraph graph = StepGraph::live);

  // Decode and sample the next step; `out` is cleared and filled with its events.
  void produce(StepEvents& out);
  // Note-offs for every note still sounding, stamped with the next step; then restart the
  // phrase: the next produce() is step 0 again with a fresh decoder state and silent `prev`.
  // The latent walk and random streams continue.
  void finish(StepEvents& out);
  // Any thread: the decoder run in progress, and every one after it, fail at once (produce()
  // throws EngineError) until allow_decoding(). For a stop that cannot wait for a step.
  void end_decoding() noexcept;
  void allow_decoding() noexcept;
  // The options of its decoder runs, to end a run in progress (Cancellation::Attachment).
  Ort::RunOptions& run_options() { return buffers_->run_options; }

 private:
  const Model& model_;
  std::unique_ptr<DecoderBuffers> buffers_;
};

}  // namespace emolive
