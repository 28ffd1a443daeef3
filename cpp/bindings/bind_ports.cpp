#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>

#include "bindings.hpp"
#include "emolive/errors.hpp"
#include "emolive/midi_out.hpp"

namespace py = pybind11;

namespace emolive::bindings {

std::unique_ptr<MidiOutput> OutputHandle::take() {
  if (!output) throw std::invalid_argument("this MIDI output already belongs to an engine");
  return std::move(output);
}

namespace {

// A name from the MIDI system as Python text: bytes that are not UTF-8 (a client may name its
// ports in Latin-1) become U+FFFD, so that one such port does not hide all the others (the
// listing raised UnicodeDecodeError). Needs the GIL.
py::str port_text(const std::string& name) {
  PyObject* text = PyUnicode_DecodeUTF8(name.data(), py::ssize_t(name.size()), "replace");
  if (!text) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(text);
}

py::list port_texts(const std::vector<std::string>& names) {
  py::list out;
  for (const auto& name : names) out.append(port_text(name));
  return out;
}

// `list()`'s names (a call into the MIDI system, made without the GIL) as Python text.
template <class List>
py::list port_texts_of(List list) {
  std::vector<std::string> names;
  {
    ReleaseGil release;
    names = list();
  }
  return port_texts(names);
}

// `choose(names)` as a PortChooser: called with the GIL held, its result an index (int), or
// TypeError naming what it returned (pybind11's own cast said only "Unable to cast").
PortChooser port_chooser(py::function choose) {
  return [choose = std::move(choose)](const std::vector<std::string>& names) {
    py::gil_scoped_acquire gil;
    const py::object picked = choose(port_texts(names));
    if (!py::isinstance<py::int_>(picked) || py::isinstance<py::bool_>(picked)) {
      throw py::type_error("the port chooser must return an index (int), not " +
                           std::string(py::str(py::type::of(picked).attr("__name__"))));
    }
    const py::int_ index(picked);
    if (index < py::int_(-1) || index >= py::int_(names.size())) {
      throw PortError("MIDI output port index " + std::string(py::str(index)) + " is out of range (" +
                      std::to_string(names.size()) + " ports)");
    }
    return index.cast<int>();
  };
}

// Virtual port `virtual_name` if given, else the output port `choose` picks (-1: no output;
// not an int: TypeError; outside -1..n-1: PortError), else (neither) no output. The backend calls run without the GIL.
std::optional<OutputHandle> open_output(const std::optional<py::function>& choose,
                                        const std::string& virtual_name,
                                        const std::string& client_name) {
  std::optional<PortChooser> chooser;
  if (choose) chooser = port_chooser(*choose);
  ReleaseGil release;
  if (!virtual_name.empty()) return OutputHandle{open_virtual_output(virtual_name)};
  if (!chooser) return OutputHandle{std::make_unique<NullOutput>()};
  std::unique_ptr<MidiOutput> output = open_port_output(*chooser, client_name);
  if (!output) return std::nullopt;
  return OutputHandle{std::move(output)};
}

}  // namespace

void register_ports(py::module_& m) {
  py::class_<OutputHandle>(m, "Output", "A MIDI output for one Engine; made by open_output().")
      .def_property_readonly("description", [](const OutputHandle& h) {
        return port_text(h.output ? h.output->describe() : std::string("taken by an engine"));
      });
  m.attr("MAX_VIRTUAL_NAME_BYTES") = kMaxVirtualNameBytes;
  m.def("open_output", &open_output, py::arg("choose") = py::none(), py::arg("virtual_name") = "",
        py::arg("client_name") = "emolive",
        "A virtual port, the output port choose(names) picks (its index; -1: none, returns "
        "None), or with neither no output.");
  m.def("list_ports", [] { return port_texts_of(list_output_ports); },
      "Output port names of the MIDI API in use (empty when no backend opens); bytes that are not "
      "UTF-8 read as U+FFFD.");
  m.def("midi_api", &midi_api_name, py::call_guard<ReleaseGil>(),
        "Name of the MIDI API in use (EMOLIVE_MIDI_API or the first that opens); '' if none.");
  m.def("rtmidi_available", &rtmidi_available, "Whether RtMidi was built in.");
  m.def("port_setup_hint", &port_setup_hint);
  py::class_<JackConnections>(m, "JackConnections",
                              "The connections of JACK ports, through a client of its own.")
      .def(py::init<>(), py::call_guard<ReleaseGil>())
      .def_property_readonly("available", &JackConnections::available)
      .def_property_readonly("server_gone", &JackConnections::server_gone,
                             "Whether its server shut down: a restarted server needs new clients.")
      .def("of", [](const JackConnections& c, const std::string& port_name) {
             return port_texts_of([&] { return c.of(port_name); });
           },
           py::arg("port_name"), "Full names of the ports connected to port_name; [] when it is not there.");
  m.def("too_few_descriptors", &too_few_descriptors,
        "Whether too few file descriptors are free for a MIDI client to open (a low ulimit -n); "
        "no libjack client is opened then.");
  m.def("jack_server_name_refused", &jack_server_name_refused,
        "Why no JACK client may be opened under JACK_DEFAULT_SERVER's name (libjack aborts on a "
        "long one), or ''.");
  m.def("port_open_lock_path", &port_open_lock_path,
        "The file whose lock one emolive process at a time holds while it opens a virtual MIDI port on "
        "this JACK server ('' on Windows).");
  m.def("descriptors_were_short", &descriptors_were_short,
        "What the latest too_few_descriptors check in this process found (the one that refused "
        "the client opened just before, if it did).");
  m.attr("TOO_FEW_DESCRIPTORS") = kTooFewDescriptors;
  m.def("silence_libjack_copy", &silence_libjack_copy, py::arg("library"),
        "The same for another libjack loaded in this process (python-rtmidi's); False if not loaded.");
  m.def("silence_libjack_messages", &silence_libjack_messages,
        "libjack's own stderr lines go nowhere from now on, process-wide (the emolive command).");
}

}  // namespace emolive::bindings
