// Offline generation through an engine: its model and its current settings (walk rate,
// temperature, key), in the caller's thread, never touching the live threads.
#include <mutex>
#include <vector>

#include "emolive/engine.hpp"

namespace emolive {

OfflineRequest Engine::offline_request(int steps, const Weights& emotion, const Weights* glide_to,
                                      int glide_steps, Cancellation* cancel) const {
  OfflineRequest request;
  request.cancel = cancel;
  request.nonfinite_steps = &offline_nonfinite_steps_;
  request.steps = steps;
  request.emotion = emotion;
  request.glide_to = glide_to;
  request.glide_steps = glide_steps;
  request.base.sampling = sampling_from_card(model_->card());
  std::lock_guard<std::mutex> lock(caller_mutex_);
  request.base.walk_steps_per_point = walk_steps_per_point_;
  request.base.sampling.temperature = temperature_;
  request.base.sampling.scale_mask = scale_mask_;
  request.base.sampling.transpose = transpose_;
  return request;
}

std::vector<OfflineEvent> Engine::generate(int steps, const Weights& emotion, uint64_t seed,
                                           const Weights* glide_to, int glide_steps,
                                           Cancellation* cancel) const {
  return generate_one(*model_, offline_request(steps, emotion, glide_to, glide_steps, cancel), seed);
}

std::vector<std::vector<OfflineEvent>> Engine::generate_many(int steps, const Weights& emotion,
                                                             const std::vector<uint64_t>& seeds,
                                                             const Weights* glide_to,
                                                             int glide_steps,
                                                             const BatchPlan& plan,
                                                             Cancellation* cancel) const {
  return emolive::generate_many(*model_,
                                offline_request(steps, emotion, glide_to, glide_steps, cancel),
                                seeds, plan);
}

}  // namespace emolive
