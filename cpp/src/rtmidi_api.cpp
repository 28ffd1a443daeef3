#ifdef EMOLIVE_HAVE_RTMIDI  // nothing to build without RtMidi
#include "rtmidi_api.hpp"

#include <cctype>
#include <cstdlib>
#include <thread>

#include "client_names.hpp"
#include "emolive/errors.hpp"
#include "emolive/midi_out.hpp"
#include "jack_send_guard.hpp"
#include "stop_signal_hold.hpp"

namespace emolive {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// EMOLIVE_MIDI_API as the Python side reads it: spaces around it dropped, lower case; "" is unset
// (' jack ' was refused here while the input side took it; helper-78).
std::string chosen_api_name() {
  const char* env = std::getenv("EMOLIVE_MIDI_API");
  std::string name = env ? env : "";
  const auto first = name.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  name = name.substr(first, name.find_last_not_of(" \t\r\n") - first + 1);
  return lower(name);
}


}  // namespace

void ErrorSink::write_text(const char* message) noexcept {
  sequence_.fetch_add(1, std::memory_order_acq_rel);  // odd: readers retry
  std::size_t i = 0;
  // Release stores and acquire loads (plain moves on x86): a reader that loads a character of
  // this write also sees the odd count, so its check after the copy fails. No fences, which
  // ThreadSanitizer does not model.
  for (; i + 1 < kTextSize && message[i] != 0; ++i) text_[i].store(message[i], std::memory_order_release);
  text_[i].store(0, std::memory_order_release);
  sequence_.fetch_add(1, std::memory_order_release);  // even: complete
}

std::string ErrorSink::text() const {
  for (;;) {
    const unsigned before = sequence_.load(std::memory_order_acquire);
    std::string copy;
    for (std::size_t i = 0; i < kTextSize; ++i) {
      const char c = text_[i].load(std::memory_order_acquire);
      if (c == 0) break;
      copy.push_back(c);
    }
    if (before % 2 == 0 && sequence_.load(std::memory_order_relaxed) == before) return copy;
    std::this_thread::yield();
  }
}

std::unique_ptr<RtMidiOut> try_open_api(RtMidi::Api api, const std::string& client,
                                        ErrorSink& sink, std::string& why) {
#ifdef EMOLIVE_HAVE_JACK
  // Asked with a libjack client of our own first: RtMidi's constructor prints "JACK server not
  // running?" on stderr, before an error callback can be set, each time it finds no server
  // (once a second while a lost server is waited for).
  if (api == RtMidi::UNIX_JACK) {
    why = jack_server_name_refused();
    if (!why.empty()) return nullptr;
  }
  if (api == RtMidi::UNIX_JACK && !jack_server_running()) {
    why = descriptors_were_short() ? "too few file descriptors free to open a client"
                                   : "MidiOutJack::initialize: JACK server not running?";
    return nullptr;
  }
#endif
  std::unique_ptr<RtMidiOut> out;
  const SignalMaskKept mask;  // libjack blocks SIGPIPE on this thread
  try {
    out = std::make_unique<RtMidiOut>(api, client);
  } catch (const RtMidiError& e) {
    why = e.getMessage();
    return nullptr;
  }
  sink.reset();
  out->setErrorCallback(&ErrorSink::callback, &sink);
  out->getPortCount();
  if (sink.failed) {
    why = sink.text();
    return nullptr;
  }
  return out;
}

std::vector<RtMidi::Api> candidate_apis() {
  if (const std::string name = chosen_api_name(); !name.empty()) {
    RtMidi::Api api = RtMidi::getCompiledApiByName(name);
    if (api == RtMidi::UNSPECIFIED) {  // named after what this RtMidi has ("core" on Linux said
      std::vector<RtMidi::Api> compiled;  // "not compiled in (alsa, jack, core, winmm)", helper-59)
      RtMidi::getCompiledApi(compiled);
      std::string names;
      for (auto a : compiled) {
        if (a != RtMidi::RTMIDI_DUMMY) names += (names.empty() ? "" : ", ") + RtMidi::getApiName(a);
      }
      throw PortError("EMOLIVE_MIDI_API=" + name + " is not a MIDI API compiled into RtMidi here (" +
                      (names.empty() ? std::string("none") : names) + ")");
    }
    return {api};
  }
  std::vector<RtMidi::Api> apis;
  RtMidi::getCompiledApi(apis);
  std::vector<RtMidi::Api> real;
  for (auto a : apis) if (a != RtMidi::RTMIDI_DUMMY) real.push_back(a);
  return real;
}

namespace {

// Whether a new client of `api` can connect (false for want of descriptors too: libjack is not
// asked then).
bool backend_alive(RtMidi::Api api) {
#ifdef EMOLIVE_HAVE_JACK
  if (api == RtMidi::UNIX_JACK) return jack_server_running();  // no RtMidi client needed
#endif
  ErrorSink sink;
  std::string why;
  return try_open_api(api, probe_client_name("emolive-check"), sink, why) != nullptr;
}

}  // namespace

bool backend_gone(RtMidi::Api api) { return !too_few_descriptors() && !backend_alive(api); }

std::vector<std::string> source_port_names(RtMidi::Api api) {
  std::vector<std::string> names;
  if (too_few_descriptors() || (api == RtMidi::UNIX_JACK && !jack_server_name_refused().empty())) {
    return names;  // libjack may die opening a client
  }
  const StopSignalHold hold;  // the short-lived client's open and close are not interrupted
  ErrorSink sink;  // RtMidi reports through it instead of printing or throwing
  try {
    RtMidiIn in(api, probe_client_name("emolive-check"));
    in.setErrorCallback(&ErrorSink::callback, &sink);
    names = port_names(in);
  } catch (const RtMidiError&) {
    names.clear();  // no input side: nothing known to clash with
  }
  return names;
}

bool virtual_port_listed(const std::vector<std::string>& names, const std::string& name) {
  const std::string jack = name + ":" + name;
  for (const auto& listed : names) {
    if (listed == name || listed == jack || listed.rfind(jack + " ", 0) == 0) return true;
  }
  return false;
}

OpenedApi open_first_api(const std::string& client) {
  std::string report;
  for (auto api : candidate_apis()) {
    auto sink = std::make_unique<ErrorSink>();
    std::string why;
    auto out = try_open_api(api, client, *sink, why);
    if (out) return {std::move(sink), std::move(out), RtMidi::getApiName(api), api};
    report += "\n  " + RtMidi::getApiDisplayName(api) + ": " + why;
  }
  if (descriptors_were_short() || too_few_descriptors()) {  // not for want of a server
    throw PortError(std::string("no MIDI backend could be opened: ") + kTooFewDescriptors + report);
  }
  throw PortError("no MIDI backend could be opened:" + (report.empty() ? std::string(" none compiled") : report) +
                  "\n" + backend_setup_hint());
}

}  // namespace emolive

#endif
