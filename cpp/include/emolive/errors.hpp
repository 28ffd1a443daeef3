// Typed errors of the engine. The Python bindings map EngineError, ModelError and PortError to
// exceptions of the same name: EngineError -> emolive.EngineError (a RuntimeError), ModelError
// and PortError subclass it. Cancelled has no Python class: the bindings cancel a generation
// only for a KeyboardInterrupt, which is what Python then sees.
// Bad argument values throw std::invalid_argument (Python ValueError).
#pragma once

#include <stdexcept>
#include <string>

namespace emolive {

class EngineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A model directory, ONNX file or model card that cannot be used: the message names the file,
// the tensor or key, and what was expected against what was found.
class ModelError : public EngineError {
 public:
  using EngineError::EngineError;
};

// A MIDI port that cannot be found or opened, or a MIDI backend that is missing.
class PortError : public EngineError {
 public:
  using EngineError::EngineError;
};

// An offline generation stopped through its request's `cancel` flag (batch_generator.hpp).
class Cancelled : public EngineError {
 public:
  Cancelled() : EngineError("generation cancelled") {}
};

// Hints appended to port errors. backend_setup_hint: how to get a MIDI system on each platform
// (for no backend at all). port_setup_hint: the same, or a virtual port (for a missing port).
std::string backend_setup_hint();
std::string port_setup_hint();

}  // namespace emolive
