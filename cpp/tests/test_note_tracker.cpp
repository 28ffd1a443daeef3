#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "emolive/note_tracker.hpp"

using namespace emolive;

namespace {
std::vector<std::vector<uint8_t>> messages(const RecordingOutput& r) {
  std::vector<std::vector<uint8_t>> out;
  for (size_t i = 0; i < r.count(); ++i) {
    out.emplace_back(r.at(i).bytes, r.at(i).bytes + r.at(i).size);
  }
  return out;
}
}  // namespace

TEST_CASE("all-off sends a note-off per sounding note, then CC64 0, CC123, CC120") {
  RecordingOutput rec;
  NoteTracker tracker;
  tracker.note_on(rec, 2, 60, 100);
  tracker.note_on(rec, 2, 64, 90);
  tracker.note_off(rec, 2, 60);
  REQUIRE(tracker.count() == 1);
  rec.clear();
  tracker.all_off(rec);
  const std::vector<std::vector<uint8_t>> expected = {
      {0x82, 64, 0}, {0xB2, 64, 0}, {0xB2, 123, 0}, {0xB2, 120, 0}};
  CHECK(messages(rec) == expected);
  CHECK(tracker.count() == 0);
  rec.clear();
  tracker.all_off(rec);  // nothing sounding: only the controller messages
  CHECK(messages(rec).size() == 3);
}

TEST_CASE("a re-struck note is switched off first and unknown note-offs send nothing") {
  RecordingOutput rec;
  NoteTracker tracker;
  tracker.note_on(rec, 0, 60, 100);
  tracker.note_on(rec, 0, 60, 80);
  tracker.note_off(rec, 0, 61);
  const std::vector<std::vector<uint8_t>> expected = {{0x90, 60, 100}, {0x80, 60, 0}, {0x90, 60, 80}};
  CHECK(messages(rec) == expected);
  CHECK(tracker.count() == 1);
  CHECK(tracker.notes_sent() == 2);
}

namespace {
// Records what it takes; while `down`, takes nothing and says it failed (a stalled server).
struct FlakyOutput final : MidiOutput {
  bool down = false;
  std::vector<std::vector<uint8_t>> taken;
  void send(const uint8_t* bytes, size_t size) noexcept override {
    if (!down) taken.emplace_back(bytes, bytes + size);
  }
  bool failed() const noexcept override { return down; }
  std::string describe() const override { return "flaky"; }
};
}  // namespace

TEST_CASE("owe_all turns sounding notes into owed note-offs without sending") {
  FlakyOutput out;
  NoteTracker tracker;
  tracker.note_on(out, 0, 60, 100);
  tracker.note_on(out, 0, 62, 100);
  out.down = true;
  tracker.owe_all();
  CHECK(tracker.count() == 0);
  CHECK_FALSE(tracker.sounding(0, 60));
  CHECK(tracker.owed() == 2);
  CHECK(out.taken.size() == 2);
  tracker.all_off(out);  // still down: nothing taken, both still owed
  CHECK(out.taken.size() == 2);
  CHECK(tracker.owed() == 2);
  out.down = false;
  tracker.all_off(out);
  const std::vector<std::vector<uint8_t>> expected = {
      {0x90, 60, 100}, {0x90, 62, 100}, {0x80, 60, 0}, {0x80, 62, 0},
      {0xB0, 64, 0}, {0xB0, 123, 0}, {0xB0, 120, 0}};
  CHECK(out.taken == expected);
  CHECK_FALSE(tracker.owes());
}

TEST_CASE("a note-off the output did not take stays owed, and a re-strike sends it first") {
  FlakyOutput out;
  NoteTracker tracker;
  tracker.note_on(out, 1, 40, 90);
  out.down = true;
  tracker.note_off(out, 1, 40);
  CHECK(tracker.count() == 0);
  CHECK(tracker.owed() == 1);
  out.down = false;
  tracker.note_on(out, 1, 40, 80);
  const std::vector<std::vector<uint8_t>> expected = {{0x91, 40, 90}, {0x81, 40, 0}, {0x91, 40, 80}};
  CHECK(out.taken == expected);
  CHECK(tracker.owed() == 0);
  CHECK(tracker.count() == 1);
}

TEST_CASE("send_owed sends only the owed note-offs, leaving sounding notes alone") {
  FlakyOutput out;
  NoteTracker tracker;
  tracker.note_on(out, 0, 60, 100);
  tracker.note_on(out, 0, 64, 100);
  out.down = true;
  tracker.note_off(out, 0, 60);  // dropped: owed
  out.down = false;
  CHECK(tracker.owed() == 1);
  tracker.send_owed(out);
  const std::vector<std::vector<uint8_t>> expected = {{0x90, 60, 100}, {0x90, 64, 100}, {0x80, 60, 0}};
  CHECK(out.taken == expected);
  CHECK(tracker.owed() == 0);
  CHECK(tracker.sounding(0, 64));  // the sounding note is left alone
}

TEST_CASE("all-off ends a note on channel 16 and on the top key") {
  RecordingOutput rec;
  NoteTracker tracker;
  tracker.note_on(rec, 15, 127, 100);  // channel index 15 = MIDI channel 16, note 127 = G9
  REQUIRE(tracker.count() == 1);
  rec.clear();
  tracker.all_off(rec);
  const std::vector<std::vector<uint8_t>> expected = {
      {0x8F, 127, 0}, {0xBF, 64, 0}, {0xBF, 123, 0}, {0xBF, 120, 0}};
  CHECK(messages(rec) == expected);
  CHECK(tracker.count() == 0);
}

TEST_CASE("send_owed sends an owed note-off on channel 16 and on the top key") {
  FlakyOutput out;
  NoteTracker tracker;
  tracker.note_on(out, 15, 127, 100);
  tracker.note_on(out, 15, 60, 100);
  out.down = true;
  tracker.note_off(out, 15, 127);  // dropped: owed
  tracker.note_off(out, 15, 60);   // dropped: owed
  out.down = false;
  REQUIRE(tracker.owed() == 2);
  tracker.send_owed(out);
  const std::vector<std::vector<uint8_t>> expected = {
      {0x9F, 127, 100}, {0x9F, 60, 100}, {0x8F, 60, 0}, {0x8F, 127, 0}};
  CHECK(out.taken == expected);
  CHECK_FALSE(tracker.owes());
}

namespace {
// Failed while it is sent a message, fine again by the time the send returns (a reconnection
// that ends its pause just after the dropped send).
struct RecoveringOutput final : MidiOutput {
  bool down = false;
  std::vector<std::vector<uint8_t>> taken;
  void send(const uint8_t* bytes, size_t size) noexcept override {
    if (!down) taken.emplace_back(bytes, bytes + size);
    down = false;
  }
  bool failed() const noexcept override { return down; }
  std::string describe() const override { return "recovering"; }
};
}  // namespace

TEST_CASE("a note-off dropped by an output that recovers during the send stays owed") {
  RecoveringOutput out;
  NoteTracker tracker;
  tracker.note_on(out, 0, 60, 100);
  out.down = true;
  tracker.note_off(out, 0, 60);  // dropped; the output reads as fine afterwards
  CHECK_FALSE(out.failed());
  CHECK(tracker.count() == 0);
  CHECK(tracker.owed() == 1);
  tracker.send_owed(out);
  const std::vector<std::vector<uint8_t>> expected = {{0x90, 60, 100}, {0x80, 60, 0}};
  CHECK(out.taken == expected);
  CHECK(tracker.owed() == 0);
}
