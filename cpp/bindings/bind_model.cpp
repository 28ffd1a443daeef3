#include <pybind11/numpy.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "bindings.hpp"
#include "emolive/generator.hpp"
#include "emolive/model.hpp"
#include "emolive/onnx_runtime.hpp"

namespace py = pybind11;

namespace emolive::bindings {
namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// Check an array's shape against `want` (-1: any size, the same for every -1 of one call).
void check_shape(const char* name, const FloatArray& a, std::vector<int64_t> want) {
  bool ok = a.ndim() == py::ssize_t(want.size());
  for (size_t i = 0; ok && i < want.size(); ++i) {
    if (want[i] >= 0 && a.shape(i) != want[i]) ok = false;
  }
  if (!ok) {
    std::string found = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) found += (i ? ", " : "") + std::to_string(a.shape(i));
    found += ")";
    throw std::invalid_argument(std::string(name) + " must have shape " + shape_to_string(want) +
                                " (-1: the batch or time size), got " + found);
  }
}

FloatArray to_array(std::vector<float> data, std::vector<py::ssize_t> shape) {
  FloatArray out(shape);
  std::copy(data.begin(), data.end(), out.mutable_data());
  return out;
}

py::ssize_t batch_of(const FloatArray& a, const char* name, py::ssize_t expected) {
  const py::ssize_t b = a.shape(0);
  if (expected >= 0 && b != expected) {
    throw std::invalid_argument(std::string(name) + " has batch " + std::to_string(b) +
                                ", expected " + std::to_string(expected));
  }
  return b;
}

// Microseconds per call of `fn`, `n` times after `warmup` untimed calls.
template <typename Fn>
py::array_t<double> time_calls(int n, int warmup, Fn&& fn) {
  if (n < 1) throw std::invalid_argument("n must be >= 1");
  std::vector<double> us(n);
  {
    ReleaseGil release;
    for (int i = 0; i < warmup; ++i) fn();
    for (int i = 0; i < n; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      us[i] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    }
  }
  py::array_t<double> out(n);
  std::copy(us.begin(), us.end(), out.mutable_data());
  return out;
}

}  // namespace

void register_model(py::module_& m) {
  py::class_<Model, std::shared_ptr<Model>>(m, "Model",
      "A model directory (model_card.json and the ONNX files it names) loaded into ONNX Runtime.")
      // path: a str or an os.PathLike (pybind11's std::filesystem::path caster).
      .def(py::init([](const std::filesystem::path& path, const std::string& onnxruntime_lib) {
             ReleaseGil release;
             return std::make_shared<Model>(path.string(), onnxruntime_lib);
           }),
           py::arg("path"), py::arg("onnxruntime_lib") = "")
      .def_property_readonly("directory", &Model::directory)
      .def_property_readonly("card_json", [](const Model& self) { return self.card().json; })
      .def_property_readonly("z_dim", [](const Model& self) { return self.card().z; })
      .def_property_readonly("layers", [](const Model& self) { return self.card().layers; })
      .def_property_readonly("hidden", [](const Model& self) { return self.card().hidden; })
      .def_property_readonly("segment_steps", [](const Model& self) { return self.card().segment_steps; })
      .def_property_readonly("default_temperature", [](const Model& self) { return self.card().temperature; })
      .def("decode_init",
           [](const Model& self, FloatArray z, FloatArray emotion) {
             const auto& c = self.card();
             check_shape("z", z, {-1, c.z});
             check_shape("emotion", emotion, {-1, kEmotionCount});
             const auto b = batch_of(z, "z", -1);
             batch_of(emotion, "emotion", b);
             std::vector<float> state;
             {
               ReleaseGil release;
               state = self.decode_init(z.data(), emotion.data(), b);
             }
             return to_array(std::move(state), {c.layers, b, c.hidden});
           },
           py::arg("z"), py::arg("emotion"),
           "state [L,B,H] = decoder_init(z [B,Z], emotion [B,4]); float32 arrays.")
      .def("decode_step",
           [](const Model& self, FloatArray prev, FloatArray z, FloatArray emotion, FloatArray state) {
             const auto& c = self.card();
             check_shape("prev", prev, {-1, kFrameSize});
             check_shape("z", z, {-1, c.z});
             check_shape("emotion", emotion, {-1, kEmotionCount});
             check_shape("state", state, {c.layers, -1, c.hidden});
             const auto b = batch_of(prev, "prev", -1);
             batch_of(z, "z", b);
             batch_of(emotion, "emotion", b);
             if (state.shape(1) != b) throw std::invalid_argument("state's batch (axis 1) differs from prev's");
             Model::StepOutputs out;
             {
               ReleaseGil release;
               out = self.decode_step(prev.data(), z.data(), emotion.data(), state.data(), b);
             }
             return py::make_tuple(to_array(std::move(out.onset_logits), {b, kPitchCount}),
                                   to_array(std::move(out.hold_logits), {b, kPitchCount}),
                                   to_array(std::move(out.velocity), {b, kPitchCount}),
                                   to_array(std::move(out.state_out), {c.layers, b, c.hidden}));
           },
           py::arg("prev"), py::arg("z"), py::arg("emotion"), py::arg("state"),
           "(onset_logits, hold_logits, velocity, state_out) = decoder_step(...).")
      .def("encode",
           [](const Model& self, FloatArray roll, FloatArray emotion) {
             const auto& c = self.card();
             check_shape("roll", roll, {-1, -1, kFrameSize});
             check_shape("emotion", emotion, {-1, kEmotionCount});
             const auto b = batch_of(roll, "roll", -1);
             batch_of(emotion, "emotion", b);
             if (roll.shape(1) < 1) throw std::invalid_argument("roll needs at least one step");
             std::pair<std::vector<float>, std::vector<float>> out;
             {
               ReleaseGil release;
               out = self.encode(roll.data(), roll.shape(1), emotion.data(), b);
             }
             return py::make_tuple(to_array(std::move(out.first), {b, c.z}),
                                   to_array(std::move(out.second), {b, c.z}));
           },
           py::arg("roll"), py::arg("emotion"), "(mu, logvar) = encoder(roll [B,T,264], emotion [B,4]).")
      .def("time_decode_steps",
           [](const Model& self, int n, int warmup) {
             auto b = self.make_buffers();
             b->emotion = {0.25f, 0.25f, 0.25f, 0.25f};
             self.decode_init_in_place(*b);
             return time_calls(n, warmup, [&] { self.decode_step_in_place(*b); });
           },
           py::arg("n") = 1000, py::arg("warmup") = 20,
           "Microseconds of each of n batch-1 decoder_step calls on the engine's fast path.")
      .def("time_generator_steps",
           [](const Model& self, int n, int warmup, uint64_t seed) {
             GeneratorConfig config;
             config.seed = seed;
             config.sampling = sampling_from_card(self.card());
             Generator generator(self, config);
             StepEvents events;
             return time_calls(n, warmup, [&] { generator.produce(events); });
           },
           py::arg("n") = 1000, py::arg("warmup") = 20, py::arg("seed") = 0,
           "Microseconds of each of n engine steps: latent walk, decoder (with phrase re-seeds) "
           "and note sampling, as the generator thread runs them.");
  m.def("loaded_onnxruntime_library", &onnxruntime_library_path,
        "Path of the ONNX Runtime library loaded ('' before the first model).");
}

}  // namespace emolive::bindings
