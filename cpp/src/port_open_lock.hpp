// One emolive process at a time opens a virtual MIDI port on a JACK server (per user and
// server name).
//
// JACK names a client after the name asked for, or "NAME-01", "NAME-02", ... where that is
// taken, and RtMidi does not say which one it got. Two emolive processes starting together both
// saw no port "NAME:NAME" before opening, and both then found one after (the other's), so the
// one JACK had named "NAME-01" printed a port name that was not its own (helper-71). Opened one
// after the other, the second sees the first's port and its virtual port is refused as taken.
// (A named output finds its own port through its cycle counter's client instead: rtmidi_output.cpp.)
#pragma once

#include <string>

#include "emolive/midi_out.hpp"  // port_open_lock_path

namespace emolive {

class PortOpenLock {
 public:
  // Waits for the lock up to kWaitMs. Holds nothing where the lock file cannot be made or
  // locked in that time (a read-only /tmp, no descriptor free, Windows): the open goes on
  // unserialised, as before (a virtual port opened at the same moment as another of its name
  // is then refused: rtmidi_open.cpp, own_virtual_port).
  PortOpenLock();
  ~PortOpenLock();
  PortOpenLock(const PortOpenLock&) = delete;
  PortOpenLock& operator=(const PortOpenLock&) = delete;

  static constexpr int kWaitMs = 5000;

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace emolive
