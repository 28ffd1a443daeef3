// Opening RtMidi's backends (APIs) with their errors captured: what rtmidi_output.cpp builds
// its outputs on. Only compiled with RtMidi (EMOLIVE_HAVE_RTMIDI).
#pragma once

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <rtmidi/RtMidi.h>

namespace emolive {

// Captures RtMidi's errors and warnings (installed as its error callback, so RtMidi neither
// prints nor throws). The first error is kept; the text buffer is written once, so reading
// after failed() is true needs no lock.
struct ErrorSink {
  std::atomic<bool> failed{false};
  std::atomic<bool> writing{false};
  char text[256] = {0};

  static void callback(RtMidiError::Type type, const std::string& message, void* self) {
    if (type == RtMidiError::DEBUG_WARNING) return;
    static_cast<ErrorSink*>(self)->fail(message.c_str());
  }
  // Keep the first error. No allocation: callable from the clock thread.
  void fail(const char* message) noexcept {
    if (writing.exchange(true)) return;
    std::strncpy(text, message, sizeof(text) - 1);
    failed.store(true, std::memory_order_release);
  }
  // Record a new cause in place of the first, `failed` staying set, so that a reader never
  // sees "no error" in between. Only while nothing else can report (sends paused).
  void replace(const char* message) noexcept {
    writing.store(true);
    std::strncpy(text, message, sizeof(text) - 1);
    failed.store(true, std::memory_order_release);
  }
  void reset() {
    failed.store(false);
    writing.store(false);
    text[0] = 0;
  }
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

// Whether a new client of `api` can still connect (false once e.g. the JACK server is gone).
bool backend_alive(RtMidi::Api api);

// The first candidate API that opens, as client `client`; PortError listing why each failed.
OpenedApi open_first_api(const std::string& client);

}  // namespace emolive
