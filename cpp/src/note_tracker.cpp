#include "emolive/note_tracker.hpp"

namespace emolive {

void NoteTracker::note_on(MidiOutput& out, int channel, int note, int velocity) {
  note_off(out, channel, note);
  const uint8_t msg[3] = {uint8_t(0x90 | channel), uint8_t(note), uint8_t(velocity)};
  out.send(msg, 3);
  on_[channel][note] = true;
  used_channels_ |= uint16_t(1u << channel);
  count_.fetch_add(1, std::memory_order_relaxed);
  notes_sent_.fetch_add(1, std::memory_order_relaxed);
}

void NoteTracker::note_off(MidiOutput& out, int channel, int note) {
  const bool was_on = on_[channel][note];
  if (!was_on && !owed_[channel][note]) return;
  const uint8_t msg[3] = {uint8_t(0x80 | channel), uint8_t(note), 0};
  // A failed output drops what it is sent. Looked at before and after the send: a reconnection
  // that ends its pause just after a dropped send reads as no failure afterwards.
  const bool failed_before = out.failed();
  out.send(msg, 3);
  if (was_on) {
    on_[channel][note] = false;
    count_.fetch_sub(1, std::memory_order_relaxed);
  }
  set_owed(channel, note, failed_before || out.failed());
}

void NoteTracker::send_owed(MidiOutput& out) {
  for (int ch = 0; ch < 16 && owes(); ++ch) {
    for (int note = 0; note < 128; ++note) {
      if (owed_[ch][note]) note_off(out, ch, note);
    }
  }
}

void NoteTracker::set_owed(int channel, int note, bool owed) {
  if (owed_[channel][note] == owed) return;
  owed_[channel][note] = owed;
  owed_count_.fetch_add(owed ? 1 : -1, std::memory_order_release);
}

void NoteTracker::all_off(MidiOutput& out) {
  for (int ch = 0; ch < 16; ++ch) {
    for (int note = 0; note < 128; ++note) note_off(out, ch, note);
  }
  for (int ch = 0; ch < 16; ++ch) {
    if (!(used_channels_ & (1u << ch))) continue;
    const uint8_t status = uint8_t(0xB0 | ch);
    const uint8_t sustain_off[3] = {status, 64, 0};
    const uint8_t all_notes_off[3] = {status, 123, 0};
    const uint8_t all_sound_off[3] = {status, 120, 0};
    out.send(sustain_off, 3);
    out.send(all_notes_off, 3);
    out.send(all_sound_off, 3);
  }
}

void NoteTracker::owe_all() {
  for (int ch = 0; ch < 16; ++ch) {
    for (int note = 0; note < 128; ++note) {
      if (!on_[ch][note]) continue;
      on_[ch][note] = false;
      set_owed(ch, note, true);
    }
  }
  count_.store(0, std::memory_order_relaxed);
}

}  // namespace emolive
