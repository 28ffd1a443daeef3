#include "emolive/errors.hpp"

namespace emolive {

std::string backend_setup_hint() {
  return "On macOS enable the IAC Driver in Audio MIDI Setup (its ports are named "
         "'IAC Driver Bus 1'); on Windows install a loopback driver such as loopMIDI; on Linux "
         "start JACK (jackd) or load ALSA's snd-seq.";
}

std::string port_setup_hint() {
  std::string hint = backend_setup_hint();
  hint.pop_back();  // the full stop
  return hint + ", or open a virtual port (--virtual; virtual=... in Python).";
}

}  // namespace emolive
