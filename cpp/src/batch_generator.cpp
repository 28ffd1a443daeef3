#include "emolive/batch_generator.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "emolive/errors.hpp"
#include "emolive/generator.hpp"

namespace emolive {

BatchGenerator::BatchGenerator(const Model& model, const std::vector<GeneratorConfig>& configs)
    : model_(model) {
  if (configs.empty()) throw std::invalid_argument("a batch needs at least one stream");
  buffers_ = model.make_buffers(int64_t(configs.size()), StepGraph::offline);
  streams_.reserve(configs.size());
  for (const auto& config : configs) {
    streams_.emplace_back(model.card().z, model.card().segment_steps, config);
  }
}

void BatchGenerator::produce(std::vector<StepEvents>& out) {
  DecoderBuffers& buf = *buffers_;
  const int z_dim = model_.card().z;
  out.resize(streams_.size());
  // Lockstep: every stream is at the same step, so they all start phrases together.
  bool phrase_start = false;
  for (size_t b = 0; b < streams_.size(); ++b) {
    phrase_start = streams_[b].begin_step(&buf.z[b * z_dim], &buf.emotion[b * kEmotionCount]);
  }
  if (phrase_start) model_.decode_init_in_place(buf);
  model_.decode_step_in_place(buf);
  for (size_t b = 0; b < streams_.size(); ++b) {
    streams_[b].end_step(&buf.onset_logits[b * kPitchCount], &buf.hold_logits[b * kPitchCount],
                         &buf.velocity[b * kPitchCount], &buf.prev[b * kFrameSize], out[b]);
  }
}

void BatchGenerator::finish(std::vector<StepEvents>& out) {
  out.resize(streams_.size());
  for (size_t b = 0; b < streams_.size(); ++b) streams_[b].finish(out[b]);
  std::fill(buffers_->prev.begin(), buffers_->prev.end(), 0.0f);
}

namespace {

void check(const OfflineRequest& request) {
  if (request.steps < 0) throw std::invalid_argument("steps must be >= 0");
  if (request.glide_steps < 0) throw std::invalid_argument("glide length must be >= 0 steps");
  normalised(request.emotion);  // throws std::invalid_argument for weights that are not valid
  if (request.glide_to) normalised(*request.glide_to);
}

GeneratorConfig config_for(const OfflineRequest& request, uint64_t seed) {
  GeneratorConfig config = request.base;
  config.seed = seed;
  config.emotion = normalised(request.emotion);
  return config;
}

// Cancelled once the request's cancellation is requested (read before each step).
void stop_if_cancelled(const OfflineRequest& request) {
  if (request.cancel != nullptr && request.cancel->requested()) throw Cancelled();
}

// One step (`produce`), after the cancellation check. A run the cancellation ended fails
// (EngineError from the model): that is a cancelled step, not a broken model.
template <class Produce>
void step_unless_cancelled(const OfflineRequest& request, Produce produce) {
  stop_if_cancelled(request);
  try {
    produce();
  } catch (const EngineError&) {
    stop_if_cancelled(request);
    throw;
  }
}

void append(const StepEvents& block, std::vector<OfflineEvent>& events) {
  for (int i = 0; i < block.count; ++i) events.push_back({block.step, block.events[i]});
}

// Streams [begin, end) of generate_many, as one batch; writes events[begin..end).
void run_chunk(const Model& model, const OfflineRequest& request,
               const std::vector<uint64_t>& seeds, size_t begin, size_t end,
               std::vector<std::vector<OfflineEvent>>& events) {
  std::vector<GeneratorConfig> configs;
  for (size_t i = begin; i < end; ++i) configs.push_back(config_for(request, seeds[i]));
  BatchGenerator batch(model, configs);
  const Cancellation::Attachment attached(request.cancel, batch.run_options());
  if (request.glide_to) {
    for (int b = 0; b < batch.size(); ++b) {
      batch.stream(b).set_emotion(*request.glide_to, request.glide_steps);
    }
  }
  std::vector<StepEvents> blocks;
  for (int s = 0; s < request.steps; ++s) {
    step_unless_cancelled(request, [&] { batch.produce(blocks); });
    for (int b = 0; b < batch.size(); ++b) append(blocks[b], events[begin + b]);
  }
  batch.finish(blocks);
  for (int b = 0; b < batch.size(); ++b) append(blocks[b], events[begin + b]);
  if (request.nonfinite_steps != nullptr) {
    for (int b = 0; b < batch.size(); ++b) request.nonfinite_steps->fetch_add(batch.stream(b).nonfinite_steps());
  }
}

}  // namespace

std::vector<OfflineEvent> generate_one(const Model& model, const OfflineRequest& request,
                                       uint64_t seed) {
  check(request);
  Generator generator(model, config_for(request, seed), StepGraph::offline);
  const Cancellation::Attachment attached(request.cancel, generator.run_options());
  if (request.glide_to) generator.set_emotion(*request.glide_to, request.glide_steps);
  std::vector<OfflineEvent> events;
  StepEvents block;
  for (int s = 0; s < request.steps; ++s) {
    step_unless_cancelled(request, [&] { generator.produce(block); });
    append(block, events);
  }
  generator.finish(block);
  append(block, events);
  if (request.nonfinite_steps != nullptr) request.nonfinite_steps->fetch_add(generator.nonfinite_steps());
  return events;
}

std::vector<std::vector<OfflineEvent>> generate_many(const Model& model,
                                                     const OfflineRequest& request,
                                                     const std::vector<uint64_t>& seeds,
                                                     const BatchPlan& plan) {
  check(request);
  if (plan.max_batch < 1) throw std::invalid_argument("batch size must be >= 1");
  const size_t n = seeds.size();
  std::vector<std::vector<OfflineEvent>> events(n);
  if (n == 0) return events;
  const size_t threads = plan.threads > 0 ? size_t(plan.threads)
                                          : std::max(1u, std::thread::hardware_concurrency());
  // Enough chunks to respect max_batch and to give every thread work; sizes differ by <= 1.
  const size_t chunks = std::max((n + plan.max_batch - 1) / plan.max_batch, std::min(threads, n));
  // Each chunk writes only its own elements of `events`, so the threads share nothing else
  // than the model (ONNX Runtime sessions take concurrent runs).
  std::atomic<size_t> next_chunk{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;  // the first failure, rethrown here; later chunks are skipped
  auto worker = [&] {
    for (size_t c; !failed.load() && (c = next_chunk++) < chunks;) {
      try {
        run_chunk(model, request, seeds, c * n / chunks, (c + 1) * n / chunks, events);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < std::min(threads, chunks); ++t) helpers.emplace_back(worker);
  worker();
  for (auto& t : helpers) t.join();
  if (error) std::rethrow_exception(error);
  return events;
}

}  // namespace emolive
