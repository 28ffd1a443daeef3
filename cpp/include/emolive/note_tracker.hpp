// Which notes are sounding on the output, in fixed arrays (no allocation; clock-thread safe).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "emolive/midi_out.hpp"

namespace emolive {

class NoteTracker {
 public:
  // Send a note-on (channel 0..15, note 0..127, velocity 1..127); a key already sounding gets
  // its note-off first, so every note-on is paired.
  void note_on(MidiOutput& out, int channel, int note, int velocity);
  // Send a note-off if the note sounds; a note that is not sounding sends nothing.
  void note_off(MidiOutput& out, int channel, int note);
  // The all-off sequence: a note-off for every sounding note (on every channel used), then on
  // each channel used CC64 0 (sustain off), CC123 0 (all notes off), CC120 0 (all sound off).
  void all_off(MidiOutput& out);
  // Forget every sounding note without sending (the port is gone).
  void forget();
  bool sounding(int channel, int note) const { return on_[channel][note]; }
  int count() const { return count_.load(std::memory_order_relaxed); }
  // Note-ons sent since construction.
  int64_t notes_sent() const { return notes_sent_.load(std::memory_order_relaxed); }
  // Mark a channel as used (so all_off sends its controller messages even when silent).
  void use_channel(int channel) { used_channels_ |= uint16_t(1u << channel); }

 private:
  std::array<std::array<bool, 128>, 16> on_{};
  uint16_t used_channels_ = 0;
  std::atomic<int> count_{0};
  std::atomic<int64_t> notes_sent_{0};
};

}  // namespace emolive
