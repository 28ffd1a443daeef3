// The ONNX Runtime sessions of a model directory, validated against its card.
//
// Two ways to run them:
//  - the generators' fast path (decode_init_in_place / decode_step_in_place): tensors wrap
//    buffers owned by a DecoderBuffers (batch 1 for Generator, B for BatchGenerator), so no
//    tensors are created per step. Buffers made for StepGraph::offline decode through the
//    card's decoder_step_batch file where there is one (docs/model-contract.md, "The batch
//    step"), else through decoder_step like live buffers;
//  - any-batch calls (decode_init / decode_step / encode) on caller-owned arrays, for the Python
//    Model class, parity tests and benchmarks.
// Sessions use one intra-op thread with spinning off: an idle engine must not burn a core.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "emolive/model_card.hpp"
#include "emolive/onnx_runtime.hpp"

namespace emolive {

// Which step file a DecoderBuffers decodes through: live play (decoder_step) or offline
// generation (decoder_step_batch where the model has one).
enum class StepGraph { live, offline };

// Buffers and tensors for B decoder streams decoded together (B = 1: one generator). Row b of
// every array belongs to stream b; the state is layer-major as in the contract.
struct DecoderBuffers {
  std::vector<float> prev;       // [B, 264]
  std::vector<float> z;          // [B, Z]
  std::vector<float> emotion;    // [B, 4]
  std::vector<float> state;      // [L, B, H]: input state
  std::vector<float> onset_logits, hold_logits, velocity;  // [B, 88] each
  std::vector<float> state_out;  // [L, B, H]
  std::vector<Ort::Value> init_inputs, init_outputs;  // views on the vectors above
  std::vector<Ort::Value> step_inputs, step_outputs;
  // The step session these buffers were bound for, and its names in the order of the tensors.
  Ort::Session* step_session = nullptr;
  std::string step_file;  // its role and path, for errors ("decoder_step (DIR/decoder_step.onnx)")
  const std::vector<const char*>* step_input_names = nullptr;
  const std::vector<const char*>* step_output_names = nullptr;
  // The runs' options: SetTerminate() from another thread ends a run in progress (a step that
  // never returns, as a graph from elsewhere can loop for ever), UnsetTerminate() allows runs.
  Ort::RunOptions run_options;
};

class Model {
 public:
  // Load <dir>/model_card.json and the ONNX files it names. Throws ModelError.
  explicit Model(const std::string& model_dir, const std::string& onnxruntime_lib = "");

  const ModelCard& card() const { return card_; }
  const std::string& directory() const { return dir_; }

  // Zeroed buffers for `batch` (>= 1) streams. The first offline buffers of a model with a
  // batch step load its session (milliseconds; never in the clock thread).
  std::unique_ptr<DecoderBuffers> make_buffers(int64_t batch = 1,
                                               StepGraph graph = StepGraph::live) const;
  bool has_batch_step() const { return card_.files.count(kBatchStepRole) > 0; }
  // state <- decoder_init(z, emotion)
  void decode_init_in_place(DecoderBuffers& b) const;
  // (onset_logits, hold_logits, velocity, state_out) <- decoder_step(prev, z, emotion, state);
  // then state <- state_out.
  void decode_step_in_place(DecoderBuffers& b) const;

  // Any batch size B >= 1 (and encode: steps >= 1), else std::invalid_argument (ONNX Runtime
  // aborts the process on an empty batch); arrays are row-major float32 of the contract's shapes.
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
  // ModelError unless one decoder step (of `step`) on a silent frame gives finite outputs (a
  // diverged training run leaves NaN weights; the engine would play silence or garbage) within
  // kTrialStepLimit (a graph that loops for ever would hang the load, Ctrl-C included).
  void check_finite(const Session& step) const;
  const Session& batch_step() const;  // decoder_step_batch, loaded on first use
  // Runs with `options` where given (to end them from another thread), else with none.
  std::vector<Ort::Value> run(const Session& s, const std::vector<Ort::Value>& inputs,
                              const Ort::RunOptions* options = nullptr) const;
  std::vector<float> run_init(const float* z, const float* emotion, int64_t batch,
                              const Ort::RunOptions* options = nullptr) const;
  StepOutputs run_step(const Session& step, const float* prev, const float* z,
                       const float* emotion, const float* state, int64_t batch,
                       const Ort::RunOptions* options = nullptr) const;

  std::string dir_;
  ModelCard card_;
  Session decoder_init_, decoder_step_;
  // The encoder is loaded and checked with the others, then let go: live play and generation
  // never encode, and its session holds megabytes. encode() loads it again on first use.
  mutable std::mutex encoder_mutex_;
  mutable Session encoder_;
  // The batch step likewise: checked at load, let go, loaded again by the first offline buffers.
  mutable std::mutex batch_step_mutex_;
  mutable Session batch_step_;
};

}  // namespace emolive
