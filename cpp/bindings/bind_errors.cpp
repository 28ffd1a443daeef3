#include "bindings.hpp"
#include "emolive/errors.hpp"

namespace py = pybind11;

namespace emolive::bindings {

void register_errors(py::module_& m) {
  // The base is registered first: pybind11 tries the most recently registered translator
  // first, so ModelError and PortError are matched before EngineError.
  auto& engine_error = py::register_exception<EngineError>(m, "EngineError", PyExc_RuntimeError);
  auto& model_error = py::register_exception<ModelError>(m, "ModelError", engine_error.ptr());
  auto& port_error = py::register_exception<PortError>(m, "PortError", engine_error.ptr());
  engine_error.attr("__doc__") = "An error of the emolive engine (a RuntimeError).";
  model_error.attr("__doc__") =
      "A model directory, ONNX file or model card that cannot be used; the message names the "
      "file, the tensor and what was expected against what was found.";
  port_error.attr("__doc__") =
      "A MIDI port that cannot be found or opened, or no MIDI backend; the message lists the "
      "available ports and how to get one.";
}

}  // namespace emolive::bindings
