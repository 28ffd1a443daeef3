// Opening RtMidi outputs: listing the ports, opening the one a chooser picks or a virtual
// one (checked to be the port its name says), and the MIDI API in use. Without RtMidi at build
// time every entry point raises PortError.
#include <algorithm>
#include <stdexcept>
#include <thread>

#include "client_names.hpp"
#include "emolive/errors.hpp"
#include "emolive/midi_out.hpp"
#include "stop_signal_hold.hpp"

#ifdef EMOLIVE_HAVE_RTMIDI
#include "port_open_lock.hpp"
#include "rtmidi_api.hpp"
#include "rtmidi_output.hpp"
#endif

namespace emolive {

#ifdef EMOLIVE_HAVE_RTMIDI

bool rtmidi_available() { return true; }

std::string midi_api_name() {
  try {
    return open_first_api(probe_client_name("emolive-probe")).name;
  } catch (const PortError&) {
    return "";
  }
}

std::vector<std::string> list_output_ports() {
  candidate_apis();  // an EMOLIVE_MIDI_API naming no compiled API is an error, not "no ports"
  const StopSignalHold hold;  // the listing client's open and close are not interrupted
  OpenedApi api;
  try {
    api = open_first_api(probe_client_name("emolive-list"));
  } catch (const PortError&) {
    return {};
  }
  return port_names(*api.out);
}

namespace {

// The port that appeared in `after` and not in `before`, named as JACK names a port `port` of
// client `client` ("client:port", or "client-NN:port" where JACK renamed the client); "" unless
// exactly one did.
std::string new_own_port(const std::vector<std::string>& before, const std::vector<std::string>& after,
                         const std::string& client, const std::string& port) {
  std::string found;
  for (const auto& name : after) {
    if (std::find(before.begin(), before.end(), name) != before.end()) continue;
    if (!named_as_client_port(name, client, port)) continue;
    if (!found.empty()) return "";  // two: not ours to tell apart
    found = name;
  }
  return found;
}

// A port opened and then refused: closed, and a JACK cycle let finish, before its RtMidiOut
// is destroyed. ~MidiOutJack frees the ring its process callback reads before it closes the
// client (kCycleSettleTime), so destroying it with the port open crashed now and then: a
// segmentation fault in CI while a virtual port named like another program's client was
// refused (2026-12-07).
void close_refused(OpenedApi& api) {
  api.out->closePort();
  if (api.id == RtMidi::UNIX_JACK) std::this_thread::sleep_for(kCycleSettleTime);
}

// A JACK virtual port `name` just opened on `api`: its name as others see it, which must be
// "NAME:NAME", the port that appeared since `before` was listed. JACK gives a client whose
// name is taken another one ("NAME-01"), so the port a DAW sees is not "NAME:NAME" when another
// program (a synth, another emolive's output) already has a client called NAME: refused, as the
// banner would name a port that is not there. So is a port that cannot be told from one opened
// at the same moment (another emolive that could not take the port-open lock). "" and
// unchecked when nothing could be listed (a low ulimit -n): the port is there, under some name.
std::string own_virtual_port(OpenedApi& api, const std::vector<std::string>& before, const std::string& name) {
  const auto after = source_port_names(api.id);
  if (after.empty()) return "";
  const std::string own = new_own_port(before, after, name, name);
  if (own == name + ":" + name) return own;
  close_refused(api);
  if (own.empty()) {
    throw PortError("another MIDI port named '" + name + "' opened at the same moment (another "
                    "emolive?): give the virtual port another name, or start again");
  }
  throw PortError("a JACK client named '" + name + "' is already open (another program, or "
                  "another emolive's output), so the port would be '" + own + "': give the "
                  "virtual port another name");
}

}  // namespace

// Neither opener holds the stop signals (StopSignalHold) around its client: a port opened so
// left the stop signals blocked on the thread that later closed it (Python's main
// thread: Ctrl-C did nothing there, nor in the programs it started). Only the short-lived
// listing clients, opened and closed within one hold, are held (source_port_names).
std::unique_ptr<MidiOutput> open_port_output(const PortChooser& choose, const std::string& client_name) {
  OpenedApi api;
  std::string name;
  {
    api = open_first_api(client_name);
    const std::vector<std::string> names = port_names(*api.out);
    const unsigned count = unsigned(names.size());
    const int index = choose(names);
    if (index == -1) return nullptr;
    if (index < 0 || unsigned(index) >= count) {
      throw PortError("MIDI output port index " + std::to_string(index) + " is out of range (" +
                      std::to_string(count) + " ports)");
    }
    name = names[size_t(index)];
    api.sink->reset();
    api.out->openPort(unsigned(index), "out");
    if (api.sink->failed) {
      close_refused(api);
      throw PortError("could not open MIDI output port '" + name + "': " + api.sink->text());
    }
  }
  return make_rtmidi_output(std::move(api), name, client_name, "");
}

std::unique_ptr<MidiOutput> open_virtual_output(const std::string& name) {
  if (name.size() > kMaxVirtualNameBytes) {
    throw std::invalid_argument("a virtual port's name is at most " + std::to_string(kMaxVirtualNameBytes) +
                                " bytes (it names its MIDI client too), got " + std::to_string(name.size()));
  }
  OpenedApi api;
  std::string source;  // "" where not known: no JACK, or nothing could be listed
  {
    const PortOpenLock serialised;  // another emolive's port of this name is there, or not yet opened
    api = open_first_api(name);
    if (api.name == "winmm") {
      throw PortError("virtual MIDI ports are not supported on Windows; install a loopback driver "
                      "such as loopMIDI and pass its port name as port=...");
    }
    const auto before = source_port_names(api.id);
    if (virtual_port_listed(before, name)) {
      throw PortError("a MIDI port named '" + name + "' is already open (another emolive, or "
                      "another program): give the virtual port another name");
    }
    api.sink->reset();
    api.out->openVirtualPort(name);
    if (api.sink->failed) {
      close_refused(api);
      throw PortError("could not open virtual MIDI port '" + name + "': " + api.sink->text() +
                      "\n" + backend_setup_hint());
    }
    if (api.id == RtMidi::UNIX_JACK) source = own_virtual_port(api, before, name);
  }
  return make_rtmidi_output(std::move(api), name + " (virtual)", "", source);
}

#else  // no RtMidi

namespace {
[[noreturn]] void no_rtmidi() {
  throw PortError("emolive was built without RtMidi, so no MIDI port can be opened; install "
                  "librtmidi-dev (Debian/Ubuntu) or rtmidi (Homebrew) and reinstall emolive");
}
}  // namespace

bool rtmidi_available() { return false; }
std::string midi_api_name() { return ""; }
std::vector<std::string> list_output_ports() { return {}; }
std::unique_ptr<MidiOutput> open_port_output(const PortChooser&, const std::string&) { no_rtmidi(); }
std::unique_ptr<MidiOutput> open_virtual_output(const std::string&) { no_rtmidi(); }

#endif

}  // namespace emolive
