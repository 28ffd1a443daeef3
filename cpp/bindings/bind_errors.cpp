#include <cstring>
#include <exception>
#include <stdexcept>

#include "bindings.hpp"
#include "emolive/errors.hpp"

namespace py = pybind11;

namespace emolive::bindings {
namespace {

// The Python classes, made once at import (pybind11 keeps them alive for the module's life).
PyObject* g_engine_error = nullptr;
PyObject* g_model_error = nullptr;
PyObject* g_port_error = nullptr;

// Raise `type` with `message` decoded as UTF-8, bytes that are not UTF-8 as U+FFFD: a message
// that quotes a path or a card's bytes as they are raised UnicodeDecodeError instead
// (pybind11's own translators decode strictly).
void raise(PyObject* type, const char* message) {
  PyObject* text = PyUnicode_DecodeUTF8(message, Py_ssize_t(std::strlen(message)), "replace");
  if (!text) return;  // the decode error is then the one raised
  PyErr_SetObject(type, text);
  Py_DECREF(text);
}

}  // namespace

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
  g_engine_error = engine_error.ptr();
  g_model_error = model_error.ptr();
  g_port_error = port_error.ptr();
  // Registered last, so tried first: the same classes, with messages decoded leniently.
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const ModelError& e) {
      raise(g_model_error, e.what());
    } catch (const PortError& e) {
      raise(g_port_error, e.what());
    } catch (const EngineError& e) {
      raise(g_engine_error, e.what());
    } catch (const std::invalid_argument& e) {
      raise(PyExc_ValueError, e.what());
    }
  });
}

}  // namespace emolive::bindings
