#include <catch2/catch.hpp>
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

TEST_CASE("forget clears sounding notes without sending") {
  RecordingOutput rec;
  NoteTracker tracker;
  tracker.note_on(rec, 0, 60, 100);
  tracker.forget();
  CHECK(tracker.count() == 0);
  CHECK_FALSE(tracker.sounding(0, 60));
  CHECK(rec.count() == 1);
}
