// An open RtMidi output (rtmidi_output.cpp): sends on the clock thread without waiting on a
// stopped JACK server (JackSendGuard), watches its destination and server, reconnects when they
// come back, and names its own port (MidiOutput::source_name). Made by the openers of
// rtmidi_open.cpp. Only with RtMidi at build time.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "emolive/midi_out.hpp"
#include "rtmidi_api.hpp"

namespace emolive {

// How long the RtMidiOut outlives closePort(): longer than a JACK process cycle that began
// before the port was closed (one period: 1.3 ms at 64 frames / 48 kHz, 43 ms at 2048), with a
// margin for a process thread descheduled on a busy machine. RtMidi 5.0's ~MidiOutJack frees
// the ring buffer its process callback reads *before* it closes the JACK client, so such a
// cycle could read freed memory (a crash at exit, docs/reliability.md "Exit crash"); after
// closePort() new cycles return at once (no port), and this wait lets one in flight finish.
constexpr std::chrono::milliseconds kCycleSettleTime{100};

// `client_name`: the client of a named port (its destination is watched and reconnected),
// empty for a virtual port; `source_name`: its own port as others see it where the opener
// knows it ("" for a named port: it finds it itself).
std::unique_ptr<MidiOutput> make_rtmidi_output(OpenedApi api, std::string port_name, std::string client_name,
                                               std::string source_name);

}  // namespace emolive
