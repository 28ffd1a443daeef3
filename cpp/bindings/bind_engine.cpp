#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "bindings.hpp"
#include "emolive/engine.hpp"
#include "offline_work.hpp"

namespace py = pybind11;

namespace emolive::bindings {
namespace {

using Release = py::call_guard<ReleaseGil>;

py::dict stats_dict(const EngineStats& s) {
  py::dict d;
  d["step"] = s.step;
  d["bpm"] = s.bpm;
  d["temperature"] = s.temperature;
  d["emotion"] = py::make_tuple(s.emotion[0], s.emotion[1], s.emotion[2], s.emotion[3]);
  d["notes_sent"] = s.notes_sent;
  d["sounding"] = s.sounding;
  d["owed_note_offs"] = s.owed_note_offs;
  d["late_notes"] = s.late_notes;
  d["max_lateness_us"] = s.max_lateness_us;
  d["missed_steps"] = s.missed_steps;
  d["dropped_notes"] = s.dropped_notes;
  d["nonfinite_steps"] = s.nonfinite_steps;
  d["port_error"] = s.port_error.empty() ? py::none() : py::object(py::str(s.port_error));
  d["port_reconnects"] = s.port_reconnects;
  d["port_may_return"] = s.port_may_return;
  d["generator_error"] = s.generator_error.empty() ? py::none() : py::object(py::str(s.generator_error));
  d["recording_dropped"] = s.recording_dropped;
  d["realtime"] = s.realtime;
  return d;
}

// Rows: step, 1 = note-on / 0 = note-off, MIDI pitch, velocity.
py::array_t<int64_t> events_array(const std::vector<OfflineEvent>& events) {
  py::array_t<int64_t> out({py::ssize_t(events.size()), py::ssize_t(4)});
  auto rows = out.mutable_unchecked<2>();
  for (size_t i = 0; i < events.size(); ++i) {
    rows(i, 0) = events[i].step;
    rows(i, 1) = events[i].event.kind;
    rows(i, 2) = kPitchLow + events[i].event.key;
    rows(i, 3) = events[i].event.velocity;
  }
  return out;
}

}  // namespace

void register_engine(py::module_& m) {
  py::class_<Engine>(m, "Engine", "The live engine; use emolive.Engine, which validates arguments.")
      .def(py::init([](std::shared_ptr<Model> model, OutputHandle& output, double bpm, int channel,
                       uint64_t seed, int program, float temperature, bool clock_out, bool record) {
             EngineConfig config;
             config.bpm = bpm;
             config.channel = channel;
             config.seed = seed;
             config.program = program;
             config.temperature = temperature;
             config.clock_out = clock_out;
             config.record = record;
             ReleaseGil release;
             return std::make_unique<Engine>(std::move(model), output.take(), config);
           }),
           py::arg("model"), py::arg("output"), py::arg("bpm") = 120.0, py::arg("channel") = 0, py::arg("seed") = 0,
           py::arg("program") = -1, py::arg("temperature") = 1.0f, py::arg("clock_out") = false,
           py::arg("record") = false)
      .def("play", &Engine::play, py::arg("emotion"), Release())
      .def("set_emotion", &Engine::set_emotion, py::arg("emotion"), py::arg("glide_steps"), Release())
      .def("morph", &Engine::morph, py::arg("start"), py::arg("target"), py::arg("glide_steps"), Release())
      .def("set_bpm", &Engine::set_bpm, py::arg("bpm"), Release())
      .def("set_temperature", &Engine::set_temperature, py::arg("temperature"), Release())
      .def("set_key", &Engine::set_key, py::arg("mask"), py::arg("transpose") = 0, Release())
      .def("set_walk_rate", &Engine::set_walk_rate, py::arg("steps_per_point"), Release())
      .def("resume", &Engine::resume, py::arg("bar") = Engine::kBarAfterStop, Release())
      .def("stop", &Engine::stop, Release())
      .def("close", &Engine::close, Release())
      .def_property_readonly("is_playing", &Engine::is_playing)
      .def_property_readonly("is_closed", &Engine::is_closed)
      .def_property_readonly("emotion", [](const Engine& e) {
        const Weights w = e.emotion();
        return py::make_tuple(w[0], w[1], w[2], w[3]);
      })
      .def_property_readonly("output", &Engine::output_description)
      .def_property_readonly("source_name", &Engine::output_source_name)
      .def("stats", [](const Engine& e) { return stats_dict(e.stats()); })
      .def("recorded", [](const Engine& e) {
        py::list out;
        for (const auto& msg : e.recorded()) {
          out.append(py::make_tuple(msg.seconds,
                                    py::bytes(reinterpret_cast<const char*>(msg.bytes.data()),
                                              msg.bytes.size())));
        }
        return out;
      })
      .def("lateness_us", [](const Engine& e) {
        const auto samples = e.lateness_us();
        py::array_t<float> out(py::ssize_t(samples.size()));
        std::copy(samples.begin(), samples.end(), out.mutable_data());
        return out;
      }, "Lateness of each step's deadline in microseconds (send time minus deadline).")
      .def("generate",
           [](const Engine& e, int steps, const Weights& emotion, uint64_t seed,
              std::optional<Weights> glide_to, int glide_steps) {
             std::vector<OfflineEvent> events;
             run_interruptible(e, steps, [&](Cancellation* cancel) {
               events = e.generate(steps, emotion, seed, glide_to ? &*glide_to : nullptr,
                                   glide_steps, cancel);
             });
             return events_array(events);
           },
           py::arg("steps"), py::arg("emotion"), py::arg("seed"), py::arg("glide_to") = std::nullopt,
           py::arg("glide_steps") = 0)
      .def("generate_many",
           [](const Engine& e, int steps, const Weights& emotion, const std::vector<uint64_t>& seeds,
              std::optional<Weights> glide_to, int glide_steps, int max_batch, int threads) {
             std::vector<std::vector<OfflineEvent>> streams;
             run_interruptible(e, int64_t(steps) * int64_t(seeds.size()), [&](Cancellation* cancel) {
               streams = e.generate_many(steps, emotion, seeds, glide_to ? &*glide_to : nullptr,
                                         glide_steps, BatchPlan{max_batch, threads}, cancel);
             });
             py::list out;
             for (const auto& events : streams) out.append(events_array(events));
             return out;
           },
           py::arg("steps"), py::arg("emotion"), py::arg("seeds"), py::arg("glide_to") = std::nullopt,
           py::arg("glide_steps") = 0, py::arg("max_batch") = 64, py::arg("threads") = 0,
           "One events array per seed, decoded in batches of up to max_batch streams on up to "
           "`threads` threads (0: one per core).");
}

}  // namespace emolive::bindings
