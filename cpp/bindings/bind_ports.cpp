#include <pybind11/stl.h>

#include "bindings.hpp"
#include "emolive/errors.hpp"
#include "emolive/midi_out.hpp"

namespace py = pybind11;

namespace emolive::bindings {

void register_ports(py::module_& m) {
  m.def("list_ports", &list_output_ports, py::call_guard<py::gil_scoped_release>(),
        "Output port names of the MIDI API in use (empty when no backend opens).");
  m.def("midi_api", &midi_api_name, py::call_guard<py::gil_scoped_release>(),
        "Name of the MIDI API in use (EMOLIVE_MIDI_API or the first that opens); '' if none.");
  m.def("rtmidi_available", &rtmidi_available, "Whether RtMidi was built in.");
  m.def("port_setup_hint", &port_setup_hint);
}

}  // namespace emolive::bindings
