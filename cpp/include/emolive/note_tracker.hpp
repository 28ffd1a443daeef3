// Which notes are sounding on the output, and which note-offs it still owes, in fixed arrays
// (no allocation; clock-thread safe). One thread at a time calls the senders and owe_all().
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
  // Send a note-off if the note sounds or its note-off is owed; otherwise nothing. A note-off
  // the output did not take (it had failed: out.failed() before or after the send) stays owed.
  void note_off(MidiOutput& out, int channel, int note);
  // The all-off sequence: a note-off for every sounding note and every owed one (on every
  // channel), then on each channel used CC64 0 (sustain off), CC123 0 (all notes off), CC120 0
  // (all sound off).
  void all_off(MidiOutput& out);
  // The output failed: every sounding note's note-off is owed, without sending. The receiver
  // may still get their note-ons (a stalled JACK server delivers what waited in RtMidi's ring
  // when it runs again), so all_off() sends these note-offs once the output is back.
  void owe_all();
  // A note-off for every owed note only (an output that failed briefly, within a step).
  void send_owed(MidiOutput& out);
  bool sounding(int channel, int note) const { return on_[channel][note]; }
  int count() const { return count_.load(std::memory_order_relaxed); }
  // Note-offs owed (readable from any thread; owes() true until all_off() got them out).
  int owed() const { return owed_count_.load(std::memory_order_acquire); }
  bool owes() const { return owed() > 0; }
  // Note-ons sent since construction.
  int64_t notes_sent() const { return notes_sent_.load(std::memory_order_relaxed); }
  // Mark a channel as used (so all_off sends its controller messages even when silent).
  void use_channel(int channel) { used_channels_ |= uint16_t(1u << channel); }

 private:
  void set_owed(int channel, int note, bool owed);

  std::array<std::array<bool, 128>, 16> on_{};
  std::array<std::array<bool, 128>, 16> owed_{};  // note-offs not yet taken by the output
  uint16_t used_channels_ = 0;
  std::atomic<int> count_{0};
  std::atomic<int> owed_count_{0};  // true entries of owed_
  std::atomic<int64_t> notes_sent_{0};
};

}  // namespace emolive
