#include "emolive/model_card.hpp"

#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <sstream>
#include <utility>
#include <vector>

#include "emolive/errors.hpp"

namespace emolive {
namespace {

using nlohmann::json;

// A card value for an error message: its JSON text when it is small and shallow, else what it
// is. json::dump() recurses once per level: a value nested 200,000 deep overflowed the stack.
std::string shown(const json& v) {
  if (!v.is_structured()) return v.dump();
  constexpr size_t kMaxNodes = 200;
  constexpr int kMaxDepth = 16;
  std::vector<std::pair<const json*, int>> todo{{&v, 1}};
  size_t nodes = 0;
  while (!todo.empty()) {
    const auto [node, depth] = todo.back();
    todo.pop_back();
    if (++nodes > kMaxNodes || depth > kMaxDepth) {
      return std::string(v.is_array() ? "an array of " : "an object of ") +
             std::to_string(v.size()) + (v.is_array() ? " items" : " keys") +
             " (too large or deep to show)";
    }
    if (node->is_structured()) {
      for (const auto& child : *node) todo.emplace_back(&child, depth + 1);
    }
  }
  return v.dump();
}

class CardReader {
 public:
  CardReader(const json& root, std::string source) : root_(root), source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw ModelError("model card " + source_ + ": '" + key + "' " + what);
  }

  // The value at a dotted path ("sizes.z"), or nullptr where the path has none.
  const json* find(const std::string& dotted) const {
    const json* node = &root_;
    std::stringstream parts(dotted);
    std::string part;
    while (std::getline(parts, part, '.')) {
      if (!node->is_object() || !node->contains(part)) return nullptr;
      node = &(*node)[part];
    }
    return node;
  }

  const json& at(const std::string& dotted) const {
    const json* node = find(dotted);
    if (!node) fail(dotted, "is missing");
    return *node;
  }

  int integer(const std::string& key) const {
    const json& v = at(key);
    if (!v.is_number_integer()) fail(key, "must be an integer, found " + shown(v));
    // Read wide, then range-checked: get<int>() would wrap 2^32 + 32 to 32.
    const bool too_large = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT_MAX);
    if (too_large || v.get<int64_t>() < INT_MIN || v.get<int64_t>() > INT_MAX) {
      fail(key, "is out of range, found " + shown(v));
    }
    return int(v.get<int64_t>());
  }

  int positive(const std::string& key, int most) const {
    int v = integer(key);
    if (v <= 0 || v > most) {
      fail(key, "must be in 1.." + std::to_string(most) + ", found " + std::to_string(v));
    }
    return v;
  }

  void expect_int(const std::string& key, int expected) const {
    int v = integer(key);
    if (v != expected) {
      fail(key, "expected " + std::to_string(expected) + ", found " + std::to_string(v));
    }
  }

  std::string text(const std::string& key) const {
    const json& v = at(key);
    if (!v.is_string()) fail(key, "must be a string, found " + shown(v));
    return v.get<std::string>();
  }

  float probability(const std::string& key, float fallback) const {
    const json* node = find(key);
    if (!node) return fallback;
    if (!node->is_number()) fail(key, "must be a number, found " + shown(*node));
    return node->get<float>();
  }

  std::vector<TensorSpec> tensors(const std::string& key) const {
    const json& v = at(key);
    if (!v.is_object()) fail(key, "must be an object of name -> shape");
    std::vector<TensorSpec> out;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it.value().is_array()) fail(key + "." + it.key(), "must be a list of sizes");
      Shape shape;
      for (const auto& dim : it.value()) {
        // An unsigned value above INT64_MAX would wrap (2^64 - 1 read as -1, "dynamic").
        if (!dim.is_number_integer() || dim.get<int64_t>() < -1 || dim.get<int64_t>() == 0 ||
            (dim.is_number_unsigned() && dim.get<uint64_t>() > uint64_t(INT64_MAX))) {
          fail(key + "." + it.key(), "sizes must be positive integers or -1, found " + shown(dim));
        }
        shape.push_back(dim.get<int64_t>());
      }
      out.push_back({it.key(), shape});
    }
    return out;
  }

 private:
  const json& root_;
  std::string source_;
};

const TensorSpec* find_tensor(const std::vector<TensorSpec>& list, const std::string& name) {
  for (const auto& t : list) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// The card's io for one role must list exactly the contract's tensors with the contract's shapes.
void check_io_against_contract(const CardReader& reader, const std::string& role,
                               const FileIo& found, const FileIo& expected) {
  auto check_side = [&](const char* side, const std::vector<TensorSpec>& have,
                        const std::vector<TensorSpec>& want) {
    std::string where = "io." + role + "." + side;
    for (const auto& w : want) {
      const TensorSpec* h = find_tensor(have, w.name);
      if (!h) reader.fail(where, "lacks tensor '" + w.name + "' " + shape_to_string(w.shape));
      if (h->shape != w.shape) {
        reader.fail(where + "." + w.name, "expected shape " + shape_to_string(w.shape) +
                                              ", found " + shape_to_string(h->shape));
      }
    }
    for (const auto& h : have) {
      if (!find_tensor(want, h.name)) {
        reader.fail(where, "has unexpected tensor '" + h.name + "'");
      }
    }
  };
  check_side("inputs", found.inputs, expected.inputs);
  check_side("outputs", found.outputs, expected.outputs);
}

}  // namespace

const std::vector<std::string>& model_roles() {
  // Never destroyed: a daemon thread may still load a model while the process exits.
  static const auto* roles = new std::vector<std::string>{"encoder", "decoder_init", "decoder_step"};
  return *roles;
}

FileIo expected_io(const std::string& role, const ModelCard& c) {
  const int64_t B = -1;
  if (role == "encoder") {
    return {{{"roll", {B, -1, kFrameSize}}, {"emotion", {B, kEmotionCount}}},
            {{"mu", {B, c.z}}, {"logvar", {B, c.z}}}};
  }
  if (role == "decoder_init") {
    return {{{"z", {B, c.z}}, {"emotion", {B, kEmotionCount}}},
            {{"state", {c.layers, B, c.hidden}}}};
  }
  if (role == "decoder_step" || role == kBatchStepRole) {
    return {{{"prev", {B, kFrameSize}},
             {"z", {B, c.z}},
             {"emotion", {B, kEmotionCount}},
             {"state", {c.layers, B, c.hidden}}},
            {{"onset_logits", {B, kPitchCount}},
             {"hold_logits", {B, kPitchCount}},
             {"velocity", {B, kPitchCount}},
             {"state_out", {c.layers, B, c.hidden}}}};
  }
  throw std::invalid_argument("unknown model role '" + role + "'");
}

ModelCard parse_model_card(const std::string& json_text, const std::string& source) {
  if (json_text.size() > kMaxCardBytes) {
    throw ModelError("model card " + source + " is " + std::to_string(json_text.size()) +
                     " bytes, more than a model card holds (at most " +
                     std::to_string(kMaxCardBytes) + ")");
  }
  json root;
  try {
    // Nested deeper than kMaxCardDepth: refused while parsing (Python's json, which reads the
    // card again, gave RecursionError at 1,000 levels).
    root = json::parse(json_text, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxCardDepth) throw std::length_error("nesting");
      return true;
    });
  } catch (const std::length_error&) {
    throw ModelError("model card " + source + " is nested deeper than " +
                     std::to_string(kMaxCardDepth) + " levels");
  } catch (const json::exception& e) {  // parse errors, and numbers out of range (1e999)
    throw ModelError("model card " + source + " is not valid JSON: " + e.what());
  }
  if (!root.is_object()) throw ModelError("model card " + source + " must be a JSON object");
  CardReader r(root, source);
  ModelCard card;
  card.json = root.dump();  // as parsed: no byte-order mark, which Python's json refuses
  if (r.text("format") != "emolive-cvae") {
    r.fail("format", "expected \"emolive-cvae\", found \"" + r.text("format") + "\"");
  }
  card.format_version = r.integer("format_version");
  if (card.format_version != 1) {
    r.fail("format_version", "expected 1 (this engine reads format 1), found " +
                                 std::to_string(card.format_version));
  }
  card.name = root.contains("name") && root["name"].is_string() ? root["name"].get<std::string>()
                                                                  : "unnamed";
  r.expect_int("grid.steps_per_beat", 4);
  r.expect_int("grid.beats_per_bar", 4);
  r.expect_int("grid.steps_per_bar", 16);
  r.expect_int("pitch.low", kPitchLow);
  r.expect_int("pitch.high", kPitchLow + kPitchCount - 1);
  r.expect_int("pitch.count", kPitchCount);
  r.expect_int("features.size", kFrameSize);
  const json& layout = r.at("features.layout");
  if (layout != json::array({"onset", "hold", "velocity"})) {
    r.fail("features.layout", "expected [\"onset\",\"hold\",\"velocity\"], found " + shown(layout));
  }
  const json& order = r.at("emotions.order");
  if (order != json::array({"Q1", "Q2", "Q3", "Q4"})) {
    r.fail("emotions.order", "expected [\"Q1\",\"Q2\",\"Q3\",\"Q4\"], found " + shown(order));
  }
  card.z = r.positive("sizes.z", kMaxSize);
  card.layers = r.positive("sizes.layers", kMaxLayers);
  card.hidden = r.positive("sizes.hidden", kMaxSize);
  card.segment_steps = r.positive("sizes.segment_steps", kMaxSize);
  std::vector<std::string> roles = model_roles();
  if (const json& files = r.at("files"); files.is_object() && files.contains(kBatchStepRole)) {
    roles.push_back(kBatchStepRole);
  }
  for (const auto& role : roles) {
    card.files[role] = r.text("files." + role);
    const std::string& name = card.files[role];
    // A plain name in the model folder: "../x" made a downloaded card open any file the user
    // can read (and `emolive generate -o` could overwrite a model file reached that way).
    const bool has_separator = name.find_first_of(std::string("/\\\0", 3)) != std::string::npos;
    if (name.empty() || name == "." || name == ".." || has_separator) {
      r.fail("files." + role, "must be the name of a file in the model folder, found " +
                                  shown(json(name)));
    }
    FileIo io{r.tensors("io." + role + ".inputs"), r.tensors("io." + role + ".outputs")};
    check_io_against_contract(r, role, io, expected_io(role, card));
    card.io[role] = io;
  }
  // Optional, but an object where given: "sampling": "hot" read as no sampling (the defaults).
  if (root.contains("sampling") && !root["sampling"].is_object()) {
    r.fail("sampling", "must be an object of sampling defaults, found " + shown(root["sampling"]));
  }
  card.onset_threshold = r.probability("sampling.onset_threshold", 0.5f);
  card.hold_threshold = r.probability("sampling.hold_threshold", 0.5f);
  card.temperature = r.probability("sampling.temperature", 1.0f);
  for (auto [key, value] : {std::pair{"sampling.onset_threshold", card.onset_threshold},
                            std::pair{"sampling.hold_threshold", card.hold_threshold}}) {
    if (!(value > 0.0f && value < 1.0f)) {
      r.fail(key, "must be in (0, 1), found " + std::to_string(value));
    }
  }
  if (const json& sampling = root.contains("sampling") ? root["sampling"] : json();
      sampling.is_object() && sampling.contains("max_onsets_per_step")) {
    card.max_onsets_per_step = r.integer("sampling.max_onsets_per_step");
    if (card.max_onsets_per_step < 0 || card.max_onsets_per_step > kPitchCount) {
      r.fail("sampling.max_onsets_per_step", "must be in 0..88 (0: no cap), found " +
                                                 std::to_string(card.max_onsets_per_step));
    }
  }
  if (!(card.temperature >= 0.05f && card.temperature <= 5.0f)) {
    r.fail("sampling.temperature", "must be in [0.05, 5], found " + std::to_string(card.temperature));
  }
  if (root.contains("tonic") && !root["tonic"].is_null()) {
    card.tonic = r.integer("tonic");
    if (card.tonic < 0 || card.tonic > 11) {
      r.fail("tonic", "must be a pitch class 0..11 (0 = C) or null, found " +
                          std::to_string(card.tonic));
    }
  }
  return card;
}

std::string file_problem(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) return "does not exist";
  if (fs::is_directory(status)) return "is a folder";
  if (!fs::is_regular_file(status)) return "is not a regular file (a pipe or a device)";
  if (!std::ifstream(path, std::ios::binary)) return "cannot be read (permission denied?)";
  return "";
}

bool inside_folder(const std::string& path, const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code file_error, dir_error;
  const fs::path file = fs::canonical(path, file_error);
  const fs::path dir = fs::canonical(folder, dir_error);
  return !file_error && !dir_error && file.parent_path() == dir;
}

ModelCard load_model_card(const std::string& model_dir) {
  const std::string path = model_dir + "/model_card.json";
  const std::string problem = file_problem(path);
  if (!problem.empty()) {
    throw ModelError("model directory " + model_dir + " has no readable model_card.json (" + path +
                     " " + problem + ")");
  }
  if (!inside_folder(path, model_dir)) {  // the ONNX files' rule (a card read from elsewhere)
    throw ModelError("model card " + path + " is a link to a file outside the model folder");
  }
  std::error_code error;
  if (const auto size = std::filesystem::file_size(path, error); !error && size > kMaxCardBytes) {
    throw ModelError("model card " + path + " is " + std::to_string(size) +  // not read: 200 MB aborted
                     " bytes, more than a model card holds (at most " + std::to_string(kMaxCardBytes) + ")");
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_model_card(buffer.str(), path);
}

std::string shape_to_string(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

}  // namespace emolive
