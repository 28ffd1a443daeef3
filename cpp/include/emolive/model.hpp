// The three ONNX Runtime sessions of a model directory, validated against its card.
//
// Two ways to run them:
//  - batch-1 fast path for the generator (decode_init_1 / decode_step_1): tensors wrap buffers
//    owned by a DecoderBuffers, so no tensors are created per step;
//  - any-batch calls (decode_init / decode_step / encode) on caller-owned arrays, for the Python
//    Model class, parity tests and benchmarks.
// Sessions use one intra-op thread with spinning off: an idle engine must not burn a core.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "emolive/model_card.hpp"
#include "emolive/onnx_runtime.hpp"

namespace emolive {

// Buffers and tensors for one batch-1 decoder stream (one generator).
struct DecoderBuffers {
  std::vector<float> prev;       // [264]
  std::vector<float> z;          // [Z]
  std::vector<float> emotion;    // [4]
  std::vector<float> state;      // [L*1*H]: input state
  std::vector<float> onset_logits, hold_logits, velocity;  // [88] each
  std::vector<float> state_out;  // [L*1*H]
  std::vector<Ort::Value> init_inputs, init_outputs;  // views on the vectors above
  std::vector<Ort::Value> step_inputs, step_outputs;
};

class Model {
 public:
  // Load <dir>/model_card.json and the three ONNX files. Throws ModelError.
  explicit Model(const std::string& model_dir, const std::string& onnxruntime_lib = "");

  const ModelCard& card() const { return card_; }
  const std::string& directory() const { return dir_; }

  std::unique_ptr<DecoderBuffers> make_buffers() const;
  // state <- decoder_init(z, emotion)
  void decode_init_1(DecoderBuffers& b) const;
  // (onset_logits, hold_logits, velocity, state_out) <- decoder_step(prev, z, emotion, state);
  // then state <- state_out.
  void decode_step_1(DecoderBuffers& b) const;

  // Any batch size B; arrays are row-major float32 of the contract's shapes.
  std::vector<float> decode_init(const float* z, const float* emotion, int64_t batch) const;
  struct StepOutputs {
    std::vector<float> onset_logits, hold_logits, velocity, state_out;
  };
  StepOutputs decode_step(const float* prev, const float* z, const float* emotion,
                          const float* state, int64_t batch) const;
  std::pair<std::vector<float>, std::vector<float>> encode(const float* roll, int64_t steps,
                                                           const float* emotion,
                                                           int64_t batch) const;

 private:
  struct Session {
    std::string role, path;
    std::unique_ptr<Ort::Session> session;
    std::vector<std::string> input_names, output_names;  // in the card's order
    std::vector<const char*> input_ptrs, output_ptrs;
  };
  Session load_session(const std::string& role) const;
  void validate(const Session& s) const;
  std::vector<Ort::Value> run(const Session& s, const std::vector<Ort::Value>& inputs) const;

  std::string dir_;
  ModelCard card_;
  Session encoder_, decoder_init_, decoder_step_;
};

}  // namespace emolive
