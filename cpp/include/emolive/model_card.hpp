// The model card (model_card.json, docs/model-contract.md): parsed and validated against the
// contract. Validation here covers the card alone; Model checks the ONNX files against it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace emolive {

// Fixed sizes of the contract.
constexpr int kPitchLow = 21;      // MIDI note of key index 0 (A0)
constexpr int kPitchCount = 88;    // keys 21..108
constexpr int kFrameSize = 3 * kPitchCount;  // [onset | hold | velocity]
constexpr int kEmotionCount = 4;   // Q1..Q4
// Bounds of a card a model from elsewhere may bring: far above any model emolive trains (z 128,
// hidden 513, 1 layer, 32 steps; a card of 15 kB), far below what would exhaust memory before
// the ONNX files are even compared with the card.
constexpr int kMaxSize = 16384;            // sizes.z, sizes.hidden, sizes.segment_steps
constexpr int kMaxLayers = 64;             // sizes.layers
constexpr size_t kMaxCardBytes = 4 << 20;  // model_card.json
constexpr int kMaxCardDepth = 64;          // nesting of objects and arrays in it

// Shape of one tensor; -1 marks a dynamic dimension.
using Shape = std::vector<int64_t>;

struct TensorSpec {
  std::string name;
  Shape shape;
};

// Inputs and outputs of one ONNX file, in the card's order.
struct FileIo {
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

struct ModelCard {
  int format_version = 0;
  std::string name;  // "unnamed" when the card has none
  // The grid is the contract's (4 steps per beat, 4 beats per bar): checked, not kept.
  int z = 0;
  int layers = 0;
  int hidden = 0;
  int segment_steps = 0;  // steps per phrase; the engine re-seeds the decoder at each phrase start
  // role (encoder, decoder_init, decoder_step, and decoder_step_batch if present) -> file
  std::map<std::string, std::string> files;
  std::map<std::string, FileIo> io;          // role -> inputs/outputs
  float onset_threshold = 0.5f;
  float hold_threshold = 0.5f;
  float temperature = 1.0f;
  int max_onsets_per_step = 0;  // optional sampling.max_onsets_per_step; 0 = no cap
  // Optional "tonic": the pitch class (0 = C) the model was trained in (every clip moved
  // there); -1 (absent or null) when it was trained in every key.
  int tonic = -1;
  std::string json;  // the card as parsed, written again (compact; no byte-order mark)
};

// The roles of the three ONNX files every model has, in load order (the batch step is optional).
const std::vector<std::string>& model_roles();

// The optional fourth file (docs/model-contract.md, "The batch step"): decoder_step's inputs
// and outputs, its weights stored for fast batches; offline generation decodes through it.
// A literal, not a std::string: a global string is destroyed at exit, while a daemon thread
// may still be loading a model (ThreadSanitizer saw it read freed memory).
inline constexpr const char kBatchStepRole[] = "decoder_step_batch";

// The contract's shapes for one role, built from the card's sizes (Z, L, H); the batch step's
// are decoder_step's.
FileIo expected_io(const std::string& role, const ModelCard& card);

// Parse and validate card text. `source` names it in errors (e.g. the file path).
// Throws ModelError naming the key and expected vs found.
ModelCard parse_model_card(const std::string& json_text, const std::string& source);

// Read and parse <dir>/model_card.json; ModelError if missing or unreadable.
ModelCard load_model_card(const std::string& model_dir);

// Why `path` cannot be read as a file, or "" when it can: "does not exist", "is a folder",
// "is not a regular file (a pipe or a device)" (opening a pipe waited forever) or "cannot be
// read (permission denied?)".
std::string file_problem(const std::string& path);
// Whether `path`, its links followed, is a file directly in `folder` (its links followed too):
// a link in a downloaded model folder must not lead to any file the user can read.
bool inside_folder(const std::string& path, const std::string& folder);

std::string shape_to_string(const Shape& shape);

}  // namespace emolive
