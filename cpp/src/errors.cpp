#include "emolive/errors.hpp"

#include <cstdlib>

namespace emolive {

namespace {
constexpr const char kPlatforms[] =
    "On macOS enable the IAC Driver in Audio MIDI Setup (its ports are named 'IAC Driver Bus 1'); "
    "on Windows install a loopback driver such as loopMIDI; on Linux start JACK (jackd) or load "
    "ALSA's snd-seq";
}  // namespace

std::string backend_setup_hint() {
  // A stale JACK_DEFAULT_SERVER with the default server running was told to start JACK (helper-85).
  const char* server = std::getenv("JACK_DEFAULT_SERVER");
  return std::string(kPlatforms) + "." +
         (server ? std::string(" JACK_DEFAULT_SERVER names the JACK server '") + server + "': is that one running?" : "");
}

std::string port_setup_hint() {
  return std::string(kPlatforms) + ", or open a virtual port (--virtual; virtual=... in Python).";
}

}  // namespace emolive
