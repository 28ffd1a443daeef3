#include "emolive/model.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "emolive/errors.hpp"

namespace emolive {
namespace {

Ort::MemoryInfo& cpu_memory() {  // never destroyed: threads may load models during exit
  static Ort::MemoryInfo* info =
      new Ort::MemoryInfo(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault));
  return *info;
}

// ONNX Runtime aborts the process (an exception thrown across its GRU's threads) on a batch or
// a sequence of 0, and a negative size is no tensor: both are refused before a run.
void require_at_least_one(const char* what, int64_t size) {
  if (size < 1) {
    throw std::invalid_argument(std::string(what) + " must be at least 1, got " +
                                std::to_string(size));
  }
}

Ort::Value view(std::vector<float>& data, const Shape& shape) {
  return Ort::Value::CreateTensor<float>(cpu_memory(), data.data(), data.size(), shape.data(),
                                         shape.size());
}

Ort::Value view(const float* data, size_t count, const Shape& shape) {
  // ONNX Runtime only reads input tensors; the const_cast never leads to a write.
  return Ort::Value::CreateTensor<float>(cpu_memory(), const_cast<float*>(data), count,
                                         shape.data(), shape.size());
}

// An output's values, once its shape is the one the card gives (`expected`): a file may leave a
// size symbolic, and then only the run tells. A state of another size was read and written as
// if it had the card's (a heap overrun, or a crash, from a downloaded model).
std::vector<float> copy_out(const Ort::Value& value, const Shape& expected, const std::string& what) {
  const auto info = value.GetTensorTypeAndShapeInfo();
  if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || info.GetShape() != expected) {
    throw ModelError(what + ": expected a float32 tensor of shape " + shape_to_string(expected) +
                     " (from the model card), the run gave " + shape_to_string(info.GetShape()));
  }
  const float* data = value.GetTensorData<float>();
  return std::vector<float>(data, data + info.GetElementCount());
}

const char* element_type_name(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    default: return "a non-float32 type";
  }
}

// One tensor of the model against the card: float32, same rank, every size fixed on both
// sides equal. A size the card fixes may be dynamic in the file (we always feed the card's;
// outputs are checked after each run, copy_out). A size the contract makes dynamic (batch,
// steps: -1 in the card) must be dynamic in the file too: a file with batch 1 loaded, then
// failed in generate_many.
void check_tensor(const std::string& where, const std::string& name, Ort::TypeInfo info,
                  const Shape& card_shape) {
  if (info.GetONNXType() != ONNX_TYPE_TENSOR) {
    throw ModelError(where + " tensor '" + name + "': expected a float32 tensor, found a non-tensor");
  }
  auto tensor = info.GetTensorTypeAndShapeInfo();
  if (tensor.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
    throw ModelError(where + " tensor '" + name + "': expected float32, found " +
                     element_type_name(tensor.GetElementType()));
  }
  Shape found = tensor.GetShape();
  bool ok = found.size() == card_shape.size();
  for (size_t i = 0; ok && i < found.size(); ++i) {
    if (found[i] > 0 && card_shape[i] > 0 && found[i] != card_shape[i]) ok = false;
    if (found[i] > 0 && card_shape[i] < 0) ok = false;
  }
  if (!ok) {
    // ONNX Runtime reports a tensor declared without a shape as rank 0, as a scalar.
    throw ModelError(where + " tensor '" + name + "': expected shape " +
                     shape_to_string(card_shape) + " (from the model card), found " +
                     (found.empty() ? std::string("[] (a scalar, or no shape declared)") : shape_to_string(found)));
  }
}

// The load's trial step may take this long. The bundled model's takes well under a
// millisecond; a model 10,000 times slower could not play a 16th (125 ms at 120 BPM) in time.
constexpr std::chrono::seconds kTrialStepLimit{5};

// Run options that end the runs made with them once `limit` has passed, from a thread of its
// own (ONNX Runtime's terminate flag); expired() tells whether it came to that.
class RunDeadline {
 public:
  explicit RunDeadline(std::chrono::milliseconds limit)
      : watcher_([this, limit] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (ended_.wait_for(lock, limit, [this] { return done_; })) return;
          expired_ = true;
          end_runs(options_);
        }) {}
  ~RunDeadline() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    ended_.notify_one();
    watcher_.join();
  }
  RunDeadline(const RunDeadline&) = delete;
  RunDeadline& operator=(const RunDeadline&) = delete;

  const Ort::RunOptions* options() const { return &options_; }
  bool expired() {
    std::lock_guard<std::mutex> lock(mutex_);
    return expired_;
  }

 private:
  Ort::RunOptions options_;  // declared, so made, before the watcher thread that uses it
  std::mutex mutex_;
  std::condition_variable ended_;
  bool done_ = false, expired_ = false;  // guarded by mutex_
  std::thread watcher_;
};

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

Model::Model(const std::string& model_dir, const std::string& onnxruntime_lib) : dir_(model_dir) {
  card_ = load_model_card(model_dir);
  ensure_onnxruntime(onnxruntime_lib);
  load_session("encoder");  // refused now if broken; loaded again by encode()
  decoder_init_ = load_session("decoder_init");
  decoder_step_ = load_session("decoder_step");
  check_finite(decoder_step_);
  if (has_batch_step()) check_finite(load_session(kBatchStepRole));  // refused now if broken
}

void Model::check_finite(const Session& step) const {
  // Two rows: a graph that computes its outputs from row 0 alone ([1, 88] whatever the batch)
  // loaded and played, then failed in generate_many (helper-65); the run's shape check sees it.
  constexpr int64_t kBatch = 2;
  const std::vector<float> z(size_t(kBatch * card_.z), 0.f), emotion(kBatch * kEmotionCount, 0.25f),
      silent(kBatch * kFrameSize, 0.f);
  std::vector<float> state;
  StepOutputs out;
  RunDeadline deadline(kTrialStepLimit);
  try {
    state = run_init(z.data(), emotion.data(), kBatch, deadline.options());
    out = run_step(step, silent.data(), z.data(), emotion.data(), state.data(), kBatch,
                   deadline.options());
  } catch (const ModelError&) {
    throw;
  } catch (const EngineError& e) {  // loads, but cannot run: a broken model, named as one
    if (deadline.expired()) {
      throw ModelError("model '" + dir_ + "': a silent trial step of decoder_init and " +
                       step.role + " did not finish within " +
                       std::to_string(kTrialStepLimit.count()) +
                       " s (the bundled model's takes under a millisecond): the graph loops "
                       "for ever, or is far too slow to play");
    }
    throw ModelError("model '" + dir_ + "': " + step.role + " cannot run a silent step of batch 2: " +
                     e.what());
  }
  const std::pair<const char*, const std::vector<float>*> outputs[] = {
      {"state", &state}, {"onset_logits", &out.onset_logits}, {"hold_logits", &out.hold_logits},
      {"velocity", &out.velocity}, {"state_out", &out.state_out}};
  for (const auto& [name, values] : outputs) {
    if (!std::all_of(values->begin(), values->end(), [](float v) { return std::isfinite(v); })) {
      throw ModelError("model '" + dir_ + "': " + (name == std::string("state") ? "decoder_init"
                       : step.role) + " output '" + name + "' is not finite (NaN or infinity) "
                       "for a silent input: the weights are broken");
    }
  }
}

Model::Session Model::load_session(const std::string& role) const {
  Session s;
  s.role = role;
  s.path = dir_ + "/" + card_.files.at(role);
  if (const std::string problem = file_problem(s.path); !problem.empty()) {
    throw ModelError("model directory " + dir_ + ": " +
                     (problem == "does not exist" ? "missing " + role + " file " + s.path
                                                  : role + " file " + s.path + " " + problem) +
                     " (named in model_card.json 'files." + role + "')");
  }
  if (!inside_folder(s.path, dir_)) {  // a link out of a downloaded folder: any file the user reads
    throw ModelError("model directory " + dir_ + ": " + role + " file " + s.path +
                     " is a link to a file outside the model folder");
  }
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(1);
  options.SetInterOpNumThreads(1);
  options.SetExecutionMode(ORT_SEQUENTIAL);
  options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  options.AddConfigEntry("session.intra_op.allow_spinning", "0");
  options.AddConfigEntry("session.inter_op.allow_spinning", "0");
  try {
#ifdef _WIN32
    std::wstring wide(s.path.begin(), s.path.end());
    s.session = std::make_unique<Ort::Session>(ort_env(), wide.c_str(), options);
#else
    s.session = std::make_unique<Ort::Session>(ort_env(), s.path.c_str(), options);
#endif
  } catch (const Ort::Exception& e) {
    throw ModelError(role + " file " + s.path + " could not be loaded by ONNX Runtime: " +
                     e.what());
  }
  const FileIo& io = card_.io.at(role);
  for (const auto& t : io.inputs) s.input_names.push_back(t.name);
  for (const auto& t : io.outputs) s.output_names.push_back(t.name);
  validate(s);
  for (const auto& n : s.input_names) s.input_ptrs.push_back(n.c_str());
  for (const auto& n : s.output_names) s.output_ptrs.push_back(n.c_str());
  return s;
}

void Model::validate(const Session& s) const {
  Ort::AllocatorWithDefaultOptions allocator;
  const std::string where = s.role + " file " + s.path;
  const FileIo& io = card_.io.at(s.role);
  auto check_side = [&](const char* side, size_t count, auto name_at, auto type_at,
                        const std::vector<TensorSpec>& specs) {
    std::vector<std::string> found;
    for (size_t i = 0; i < count; ++i) found.push_back(name_at(i).get());
    std::vector<std::string> wanted;
    for (const auto& t : specs) wanted.push_back(t.name);
    auto sorted_found = found, sorted_wanted = wanted;
    std::sort(sorted_found.begin(), sorted_found.end());
    std::sort(sorted_wanted.begin(), sorted_wanted.end());
    if (sorted_found != sorted_wanted) {
      throw ModelError(where + ": " + side + " expected [" + join(wanted) +
                       "] (from the model card), found [" + join(found) + "]");
    }
    for (size_t i = 0; i < count; ++i) {
      const auto& spec = *std::find_if(specs.begin(), specs.end(),
                                       [&](const TensorSpec& t) { return t.name == found[i]; });
      check_tensor(where, found[i], type_at(i), spec.shape);
    }
  };
  const Ort::Session& session = *s.session;
  check_side("inputs", session.GetInputCount(),
             [&](size_t i) { return session.GetInputNameAllocated(i, allocator); },
             [&](size_t i) { return session.GetInputTypeInfo(i); }, io.inputs);
  check_side("outputs", session.GetOutputCount(),
             [&](size_t i) { return session.GetOutputNameAllocated(i, allocator); },
             [&](size_t i) { return session.GetOutputTypeInfo(i); }, io.outputs);
}

const Model::Session& Model::batch_step() const {
  std::lock_guard<std::mutex> lock(batch_step_mutex_);
  if (!batch_step_.session) batch_step_ = load_session(kBatchStepRole);
  return batch_step_;
}

std::unique_ptr<DecoderBuffers> Model::make_buffers(int64_t batch, StepGraph graph) const {
  if (batch < 1) throw std::invalid_argument("decoder buffers need a batch of at least 1");
  const Session& step =
      graph == StepGraph::offline && has_batch_step() ? batch_step() : decoder_step_;
  auto b = std::make_unique<DecoderBuffers>();
  b->step_session = step.session.get();
  b->step_file = step.role + " (" + step.path + ")";
  b->step_input_names = &step.input_ptrs;
  b->step_output_names = &step.output_ptrs;
  const int64_t B = batch, Z = card_.z, L = card_.layers, H = card_.hidden;
  b->prev.assign(B * kFrameSize, 0.0f);
  b->z.assign(B * Z, 0.0f);
  b->emotion.assign(B * kEmotionCount, 0.0f);
  b->state.assign(L * B * H, 0.0f);
  b->state_out.assign(L * B * H, 0.0f);
  b->onset_logits.assign(B * kPitchCount, 0.0f);
  b->hold_logits.assign(B * kPitchCount, 0.0f);
  b->velocity.assign(B * kPitchCount, 0.0f);
  auto tensor_for = [&](const std::string& name) -> Ort::Value {
    if (name == "prev") return view(b->prev, {B, kFrameSize});
    if (name == "z") return view(b->z, {B, Z});
    if (name == "emotion") return view(b->emotion, {B, kEmotionCount});
    if (name == "state") return view(b->state, {L, B, H});
    throw std::logic_error("no buffer for input " + name);
  };
  for (const auto& n : decoder_init_.input_names) b->init_inputs.push_back(tensor_for(n));
  b->init_outputs.push_back(view(b->state, {L, B, H}));  // decoder_init's only output: state
  for (const auto& n : step.input_names) b->step_inputs.push_back(tensor_for(n));
  for (const auto& n : step.output_names) {
    if (n == "onset_logits") b->step_outputs.push_back(view(b->onset_logits, {B, kPitchCount}));
    else if (n == "hold_logits") b->step_outputs.push_back(view(b->hold_logits, {B, kPitchCount}));
    else if (n == "velocity") b->step_outputs.push_back(view(b->velocity, {B, kPitchCount}));
    else b->step_outputs.push_back(view(b->state_out, {L, B, H}));  // state_out
  }
  return b;
}

// The in-place runs write into the buffers' tensors, whose shapes ONNX Runtime checks against
// what the graph computes (a mismatch is an Ort::Exception, made an EngineError here).
void Model::decode_init_in_place(DecoderBuffers& b) const {
  try {
    decoder_init_.session->Run(b.run_options, decoder_init_.input_ptrs.data(),
                               b.init_inputs.data(), b.init_inputs.size(),
                               decoder_init_.output_ptrs.data(), b.init_outputs.data(),
                               b.init_outputs.size());
  } catch (const Ort::Exception& e) {
    throw EngineError(decoder_init_.role + " run failed: " + e.what());
  }
}

void Model::decode_step_in_place(DecoderBuffers& b) const {
  try {
    b.step_session->Run(b.run_options, b.step_input_names->data(), b.step_inputs.data(),
                        b.step_inputs.size(), b.step_output_names->data(), b.step_outputs.data(),
                        b.step_outputs.size());
  } catch (const Ort::Exception& e) {
    throw EngineError(b.step_file + " run failed: " + e.what());
  }
  std::memcpy(b.state.data(), b.state_out.data(), b.state.size() * sizeof(float));
}

std::vector<Ort::Value> Model::run(const Session& s, const std::vector<Ort::Value>& inputs,
                                   const Ort::RunOptions* options) const {
  try {
    const Ort::RunOptions none{nullptr};
    return s.session->Run(options != nullptr ? *options : none, s.input_ptrs.data(),
                          inputs.data(), inputs.size(), s.output_ptrs.data(), s.output_ptrs.size());
  } catch (const Ort::Exception& e) {
    throw EngineError(s.role + " run failed: " + e.what());
  }
}

std::vector<float> Model::decode_init(const float* z, const float* emotion, int64_t batch) const {
  return run_init(z, emotion, batch);
}

std::vector<float> Model::run_init(const float* z, const float* emotion, int64_t batch,
                                   const Ort::RunOptions* options) const {
  require_at_least_one("batch", batch);
  const int64_t Z = card_.z;
  std::vector<Ort::Value> inputs;
  for (const auto& n : decoder_init_.input_names) {
    if (n == "z") inputs.push_back(view(z, batch * Z, {batch, Z}));
    else inputs.push_back(view(emotion, batch * kEmotionCount, {batch, kEmotionCount}));
  }
  return copy_out(run(decoder_init_, inputs, options)[0], {card_.layers, batch, card_.hidden},
                  decoder_init_.role + " output 'state'");
}

Model::StepOutputs Model::decode_step(const float* prev, const float* z, const float* emotion,
                                      const float* state, int64_t batch) const {
  return run_step(decoder_step_, prev, z, emotion, state, batch);
}

Model::StepOutputs Model::run_step(const Session& step, const float* prev, const float* z,
                                   const float* emotion, const float* state, int64_t batch,
                                   const Ort::RunOptions* options) const {
  require_at_least_one("batch", batch);
  const int64_t Z = card_.z, L = card_.layers, H = card_.hidden;
  std::vector<Ort::Value> inputs;
  for (const auto& n : step.input_names) {
    if (n == "prev") inputs.push_back(view(prev, batch * kFrameSize, {batch, kFrameSize}));
    else if (n == "z") inputs.push_back(view(z, batch * Z, {batch, Z}));
    else if (n == "emotion") inputs.push_back(view(emotion, batch * kEmotionCount, {batch, kEmotionCount}));
    else inputs.push_back(view(state, L * batch * H, {L, batch, H}));
  }
  auto outputs = run(step, inputs, options);
  StepOutputs out;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const std::string& n = step.output_names[i];
    const Shape shape = n == "state_out" ? Shape{L, batch, H} : Shape{batch, kPitchCount};
    auto values = copy_out(outputs[i], shape, step.role + " output '" + n + "'");
    if (n == "onset_logits") out.onset_logits = std::move(values);
    else if (n == "hold_logits") out.hold_logits = std::move(values);
    else if (n == "velocity") out.velocity = std::move(values);
    else out.state_out = std::move(values);
  }
  return out;
}

std::pair<std::vector<float>, std::vector<float>> Model::encode(const float* roll, int64_t steps,
                                                                const float* emotion,
                                                                int64_t batch) const {
  require_at_least_one("batch", batch);
  require_at_least_one("steps", steps);
  std::lock_guard<std::mutex> lock(encoder_mutex_);
  if (!encoder_.session) encoder_ = load_session("encoder");
  std::vector<Ort::Value> inputs;
  for (const auto& n : encoder_.input_names) {
    if (n == "roll") inputs.push_back(view(roll, batch * steps * kFrameSize, {batch, steps, kFrameSize}));
    else inputs.push_back(view(emotion, batch * kEmotionCount, {batch, kEmotionCount}));
  }
  auto outputs = run(encoder_, inputs);
  std::vector<float> mu, logvar;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const std::string& n = encoder_.output_names[i];
    (n == "mu" ? mu : logvar) = copy_out(outputs[i], {batch, card_.z}, "encoder output '" + n + "'");
  }
  return {mu, logvar};
}

}  // namespace emolive
