#include "emolive/errors.hpp"

namespace emolive {

namespace {
constexpr const char kPlatforms[] =
    "On macOS enable the IAC Driver in Audio MIDI Setup (its ports are named 'IAC Driver Bus 1'); "
    "on Windows install a loopback driver such as loopMIDI; on Linux start JACK (jackd) or load "
    "ALSA's snd-seq";
}  // namespace

std::string backend_setup_hint() { return std::string(kPlatforms) + "."; }

std::string port_setup_hint() {
  return std::string(kPlatforms) + ", or open a virtual port (--virtual; virtual=... in Python).";
}

}  // namespace emolive
