// Opening RtMidi's backends (APIs) with their errors captured: what the outputs of
// rtmidi_open.cpp and rtmidi_output.cpp are built on. Only compiled with RtMidi (EMOLIVE_HAVE_RTMIDI).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <RtMidi.h>  // as rtmidi.pc gives it: -I${prefix}/include/rtmidi (Homebrew, vcpkg, Debian alike)

namespace emolive {

// Captures RtMidi's errors and warnings (installed as its error callback, so RtMidi neither
// prints nor throws) and keeps the first error, readable from any thread.
//
// Threads: fail() runs on the clock thread (a send; no lock, no allocation) or the connection
// watch thread (a port check), text() on any thread (stats(), opening), reset() and replace()
// on the watch thread while sends are paused. Writers never overlap: fail() writes only if no
// error is kept (`claimed_`), and reset()/replace() run only while nothing sends. The text is a
// sequence lock over atomic characters: a reader retries while a write is under way, so it
// never reads half a message.
struct ErrorSink {
  std::atomic<bool> failed{false};

  static void callback(RtMidiError::Type type, const std::string& message, void* self) {
    if (type == RtMidiError::DEBUG_WARNING) return;
    static_cast<ErrorSink*>(self)->fail(message.c_str());
  }
  // Keep the first error. No allocation: callable from the clock thread.
  void fail(const char* message) noexcept {
    if (claimed_.exchange(true)) return;
    write_text(message);
    failed.store(true, std::memory_order_release);
  }
  // Record a new cause in place of the first, `failed` staying set, so that a reader never
  // sees "no error" in between. Only while sends are paused.
  void replace(const char* message) noexcept {
    claimed_.store(true);
    write_text(message);
    failed.store(true, std::memory_order_release);
  }
  // Forget the error. Only while sends are paused.
  void reset() noexcept {
    failed.store(false);
    write_text("");
    claimed_.store(false);
  }
  // The error kept; "" before the first and after reset(). Never half of a message.
  std::string text() const;

 private:
  void write_text(const char* message) noexcept;

  static constexpr std::size_t kTextSize = 256;  // bytes, the terminating 0 included
  std::atomic<bool> claimed_{false};
  std::atomic<unsigned> sequence_{0};  // odd while text_ is being written
  std::atomic<char> text_[kTextSize] = {};
};

struct OpenedApi {
  std::unique_ptr<ErrorSink> sink;  // declared first: destroyed after `out`, which may report
  std::unique_ptr<RtMidiOut> out;
  std::string name;
  RtMidi::Api id = RtMidi::UNSPECIFIED;
};

// Construct an RtMidiOut for `api` with the error sink installed; nullptr if it does not open
// (constructor throws, or listing ports reports an error, as JACK does with no server).
std::unique_ptr<RtMidiOut> try_open_api(RtMidi::Api api, const std::string& client,
                                        ErrorSink& sink, std::string& why);

// The APIs to try: EMOLIVE_MIDI_API if set (PortError if RtMidi lacks it), else every
// compiled API in RtMidi's order.
std::vector<RtMidi::Api> candidate_apis();

// Whether `api`'s server is gone: a new client cannot connect although this process has file
// descriptors to spare for one. A client that fails for want of descriptors (a low
// `ulimit -n`) says nothing of the server: false then. Not on the clock thread.
bool backend_gone(RtMidi::Api api);

// The first candidate API that opens, as client `client`; PortError listing why each failed.
OpenedApi open_first_api(const std::string& client);

// The names of the ports `api` lists as sources (what an RtMidiIn could read from: other
// programs' outputs and virtual ports); empty when they cannot be listed (no backend, or too
// few descriptors to open a client with).
std::vector<std::string> source_port_names(RtMidi::Api api);

// The names of the ports `midi` (an RtMidiIn or RtMidiOut) lists, in its order.
inline std::vector<std::string> port_names(RtMidi& midi) {
  std::vector<std::string> names;
  const unsigned count = midi.getPortCount();
  for (unsigned i = 0; i < count; ++i) names.push_back(midi.getPortName(i));
  return names;
}

// Whether `names` (source_port_names) hold the port a virtual output called `name` shows as:
// "name:name" under JACK (client and port are both `name`), "name:name 130:0" under ALSA,
// "name" under CoreMIDI. JACK would open a second one as client "name-01", which the port's
// name (and emolive's banner) would not say.
bool virtual_port_listed(const std::vector<std::string>& names, const std::string& name);

}  // namespace emolive
