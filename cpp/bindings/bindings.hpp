// Registration functions of the emolive._core module, one per area.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>

#include "emolive/midi_out.hpp"

namespace emolive::bindings {

// A MIDI output opened before the engine that will own it (Python: `_core.Output`), so that
// Python can match the port among the names the output's own client lists (open_output's
// `choose`). Engine() takes the output out of it; a taken handle cannot be used again.
struct OutputHandle {
  std::unique_ptr<MidiOutput> output;
  std::unique_ptr<MidiOutput> take();
};

void register_errors(pybind11::module_& m);
void register_model(pybind11::module_& m);
void register_engine(pybind11::module_& m);
void register_ports(pybind11::module_& m);

}  // namespace emolive::bindings
