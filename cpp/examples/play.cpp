// emolive_play: the C++ engine on its own, as a plugin or another program embeds it: load an
// exported model, glide from one emotion to another while playing into a MIDI port (or
// nowhere), stop cleanly, print what was sent. No Python.
//
//   emolive_play MODEL_DIR [options]    (emolive_play --help: kUsage below)
//
// ONNX Runtime is loaded at run time: set EMOLIVE_ONNXRUNTIME_LIB to libonnxruntime.so (the
// onnxruntime Python package has one, in onnxruntime/capi/) unless the loader finds it.
// Exit status: 0 played and stopped (also after Ctrl-C), 2 a bad argument, model or port.
#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "emolive/engine.hpp"
#include "emolive/errors.hpp"
#include "emolive/midi_out.hpp"
#include "emolive/model.hpp"

namespace {

std::atomic<bool> g_interrupted{false};

void on_signal(int) { g_interrupted = true; }

struct Options {
  std::string model_dir, port, virtual_name;
  double seconds = 8.0, bpm = 120.0;
  std::string from = "sad", to = "happy";
};

// The quadrant weights (Q1..Q4) of an emotion name; std::invalid_argument for another name.
emolive::Weights weights_of(const std::string& name) {
  static const std::map<std::string, emolive::Weights> kNames = {
      {"happy", {1, 0, 0, 0}}, {"tense", {0, 1, 0, 0}}, {"sad", {0, 0, 1, 0}}, {"calm", {0, 0, 0, 1}}};
  const auto found = kNames.find(name);
  if (found == kNames.end()) {
    throw std::invalid_argument("unknown emotion '" + name + "' (happy, tense, sad or calm)");
  }
  return found->second;
}

constexpr const char* kUsage =
    "usage: emolive_play MODEL_DIR [--port SUBSTRING | --virtual NAME] [--seconds 8] [--bpm 120]\n"
    "                    [--from sad] [--to happy]\n"
    "Plays MODEL_DIR's model, gliding from --from to --to over --seconds, into the first MIDI\n"
    "output whose name contains SUBSTRING, a virtual port NAME, or nowhere. Emotions: happy,\n"
    "tense, sad, calm. Set EMOLIVE_ONNXRUNTIME_LIB to libonnxruntime unless the loader finds it.\n";

// A decimal number (no hex, no spaces, no trailing text) in low..high.
double number(const std::string& flag, const std::string& text, double low, double high) {
  double value = 0.0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end || !(value >= low && value <= high)) {
    char range[64];
    std::snprintf(range, sizeof range, "%g..%g", low, high);
    throw std::invalid_argument(flag + " must be a number in " + range + ", got '" + text + "'");
  }
  return value;
}

struct Help {};  // -h or --help: print the usage and exit 0

// A port's name, refused when empty (an empty one would read as no port at all).
std::string port_name(const std::string& flag, const std::string& value) {
  if (value.empty()) throw std::invalid_argument(flag + " is empty; name a port");
  return value;
}

// Each option and what its value sets: the one list of the options there are.
using Setter = void (*)(Options&, const std::string& flag, const std::string& value);
const std::map<std::string, Setter> kSetters = {
    {"--port", [](Options& o, const std::string& f, const std::string& v) { o.port = port_name(f, v); }},
    {"--virtual",
     [](Options& o, const std::string& f, const std::string& v) { o.virtual_name = port_name(f, v); }},
    {"--seconds",
     [](Options& o, const std::string& f, const std::string& v) { o.seconds = number(f, v, 0.1, 86400.0); }},
    {"--bpm",
     [](Options& o, const std::string& f, const std::string& v) {
       o.bpm = number(f, v, emolive::kMinBpm, emolive::kMaxBpm);
     }},
    {"--from", [](Options& o, const std::string&, const std::string& v) { o.from = v; }},
    {"--to", [](Options& o, const std::string&, const std::string& v) { o.to = v; }},
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") throw Help();
    const bool has_value = i + 1 < argc;
    if (arg.rfind("--", 0) != 0) {
      if (!o.model_dir.empty()) throw std::invalid_argument("one model folder, got '" + arg + "' too");
      o.model_dir = arg;
      continue;
    }
    const auto setter = kSetters.find(arg);
    if (setter == kSetters.end()) throw std::invalid_argument("unknown option " + arg);
    if (!has_value) throw std::invalid_argument(arg + " needs a value");
    setter->second(o, arg, argv[++i]);
  }
  if (o.model_dir.empty()) throw std::invalid_argument("give the model folder");
  if (!o.port.empty() && !o.virtual_name.empty()) {
    throw std::invalid_argument("--port and --virtual go to different places: give one");
  }
  return o;
}

// The output the options name: a port by substring, a virtual port, or none (NullOutput).
std::unique_ptr<emolive::MidiOutput> open_output(const Options& o) {
  if (!o.virtual_name.empty()) return emolive::open_virtual_output(o.virtual_name);
  if (o.port.empty()) return std::make_unique<emolive::NullOutput>();
  auto output = emolive::open_port_output(
      [&](const std::vector<std::string>& names) {
        for (std::size_t i = 0; i < names.size(); ++i) {
          if (names[i].find(o.port) != std::string::npos) return int(i);
        }
        return -1;
      },
      "emolive_play");
  if (!output) throw emolive::PortError("no MIDI output port contains '" + o.port + "'");
  return output;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  emolive::Weights from{}, to{};
  std::unique_ptr<emolive::Engine> engine;
  // From the start: a Ctrl-C while the model loads ends the run after the load, cleanly.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  try {
    options = parse(argc, argv);
    from = weights_of(options.from);
    to = weights_of(options.to);
    auto model = std::make_shared<const emolive::Model>(options.model_dir);
    emolive::EngineConfig config;
    config.bpm = options.bpm;
    engine = std::make_unique<emolive::Engine>(model, open_output(options), config);
  } catch (const Help&) {
    std::fputs(kUsage, stdout);
    return 0;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "emolive_play: error: %s (--help for usage)\n", e.what());
    return 2;
  } catch (const emolive::EngineError& e) {  // ModelError, PortError
    std::fprintf(stderr, "emolive_play: error: %s\n", e.what());
    return 2;
  }
  // The glide takes the whole run: seconds -> 16th steps at the tempo.
  const int glide_steps = int(options.seconds * options.bpm / 60.0 * 4.0);
  if (!g_interrupted) engine->morph(from, to, glide_steps);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.seconds);
  while (!g_interrupted && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  engine->close();  // note-offs for every sounding note, then CC64 0, CC123, CC120
  const emolive::EngineStats stats = engine->stats();
  std::printf("emolive_play: %s -> %s, %lld notes, %lld late, %d left sounding%s\n",
              options.from.c_str(), options.to.c_str(), static_cast<long long>(stats.notes_sent),
              static_cast<long long>(stats.late_notes), stats.sounding,
              g_interrupted ? " (interrupted)" : "");
  return 0;
}
