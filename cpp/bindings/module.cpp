// emolive._core: the C++ engine for Python. Thin: validation of user input happens in
// python/emolive/engine.py; C++ checks again and its exceptions map to Python ones.
#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "emolive's native engine (ONNX Runtime, latent walk, scheduler, RtMidi)";
  m.attr("__version__") = EMOLIVE_VERSION;  // the package's (CMakeLists.txt reads __init__.py)
  emolive::bindings::remember_main_thread();
  emolive::bindings::register_errors(m);
  emolive::bindings::register_model(m);
  // Ports before the engine: Engine's constructor takes an Output, whose signature said
  // "emolive::bindings::OutputHandle" when the class was registered after it (helper-63).
  emolive::bindings::register_ports(m);
  emolive::bindings::register_engine(m);
}
