// Many independent streams of music decoded together, for offline generation.
//
// N Streams (stream.hpp, the code Generator uses) advance in lockstep: each step every stream
// writes its latent and emotion into row b of shared batch buffers, one step call (and, at
// phrase starts, one decoder_init call) serves them all, and each stream samples its notes
// from its own output row. The step is the model's batch step where it has one
// (docs/model-contract.md): its integer products are exact and its inputs are quantised per
// row, so stream b gives exactly the notes an offline Generator (generate_one) gives with the
// same config. A model without one decodes through decoder_step, and stream b agrees with
// generate_one up to the float rounding of batched matrix products (ONNX Runtime may sum in a
// different order for B rows than for one; a last-bit difference in a probability can flip a
// draw, after which the streams diverge).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "emolive/cancellation.hpp"
#include "emolive/condition.hpp"
#include "emolive/model.hpp"
#include "emolive/stream.hpp"

namespace emolive {

struct OfflineEvent {
  int64_t step;
  NoteEvent event;
};

class BatchGenerator {
 public:
  // One stream per config (at least one); all streams start at step 0.
  BatchGenerator(const Model& model, const std::vector<GeneratorConfig>& configs);

  int size() const { return int(streams_.size()); }
  // Stream b, for its settings (set_emotion, set_temperature, ...). Only produce() and finish()
  // may advance it: the streams must stay in lockstep (one phrase clock for the batch).
  Stream& stream(int b) { return streams_.at(size_t(b)); }

  // One step of every stream; out[b] is cleared and gets stream b's events (out is resized).
  void produce(std::vector<StepEvents>& out);
  // Note-offs for every note still sounding in each stream (Stream::finish); prev is cleared.
  void finish(std::vector<StepEvents>& out);
  // The options of its decoder runs, to end a run in progress (Cancellation::Attachment).
  Ort::RunOptions& run_options() { return buffers_->run_options; }

 private:
  const Model& model_;
  std::unique_ptr<DecoderBuffers> buffers_;
  std::vector<Stream> streams_;
};

// What an offline run decodes: `steps` steps from `emotion`, gliding to `*glide_to` over
// `glide_steps` from step 0 when glide_to is set. `base` gives the walk rate and the sampling
// settings; its seed and emotion are ignored. `cancel`, when given, is read before every step:
// once requested, the run throws Cancelled (errors.hpp) at its next step, and a decoder step
// in progress then is ended (cancellation.hpp).
struct OfflineRequest {
  int steps = 0;
  Weights emotion{0.f, 0.f, 0.f, 1.f};
  const Weights* glide_to = nullptr;
  int glide_steps = 0;
  GeneratorConfig base;
  Cancellation* cancel = nullptr;
  // Where given, the steps whose onset logits held a NaN are added to it (Sampler).
  std::atomic<int64_t>* nonfinite_steps = nullptr;
};

// Events of one stream (an offline Generator, batch 1) with `seed`; note-offs for the notes
// still sounding at the end come at step == steps.
std::vector<OfflineEvent> generate_one(const Model& model, const OfflineRequest& request,
                                       uint64_t seed);

// How generate_many splits its streams: chunks of at most max_batch streams (one BatchGenerator
// each, so memory is bounded by max_batch decoder states per thread) run on up to `threads`
// threads. 0 for threads: the machine's cores.
struct BatchPlan {
  int max_batch = 64;
  int threads = 0;
};

// Events of one stream per seed, stream i as generate_one(seeds[i]) (see the rounding note at
// the top), decoded in batches.
std::vector<std::vector<OfflineEvent>> generate_many(const Model& model,
                                                     const OfflineRequest& request,
                                                     const std::vector<uint64_t>& seeds,
                                                     const BatchPlan& plan = {});

}  // namespace emolive
