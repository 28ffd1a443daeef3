// How a virtual output's port shows among the sources of each MIDI API (a private helper of
// the core's RtMidi outputs): a name already taken is recognised, a longer or shorter one not.
#ifdef EMOLIVE_HAVE_RTMIDI
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "../src/rtmidi_api.hpp"

using emolive::virtual_port_listed;

TEST_CASE("a virtual port's name is recognised as JACK, ALSA and CoreMIDI list it") {
  CHECK(virtual_port_listed({"system:capture_1", "dup:dup"}, "dup"));           // JACK
  CHECK(virtual_port_listed({"Midi Through:Port-0 14:0", "dup:dup 130:0"}, "dup"));  // ALSA
  CHECK(virtual_port_listed({"IAC Driver Bus 1", "dup"}, "dup"));               // CoreMIDI
}

TEST_CASE("other ports with similar names are not a clash") {
  const std::vector<std::string> names = {"dup-01:dup", "dupe:dupe", "dup:out", "other:dup",
                                          "dup:dup2", "dup:dup2 130:0", "Dup:Dup"};
  CHECK_FALSE(virtual_port_listed(names, "dup"));
  CHECK_FALSE(virtual_port_listed({}, "dup"));
}
#endif
