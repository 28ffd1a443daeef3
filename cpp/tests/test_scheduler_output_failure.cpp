// An output that fails and comes back: note-offs owed, then the all-off sequence once.
#include <catch2/catch.hpp>

#include <cstdint>

#include "emolive/scheduler.hpp"
#include "scheduler_support.hpp"

using namespace emolive;
using namespace emolive::test;

TEST_CASE("after a port failure the scheduler forgets the notes it can no longer switch off") {
  FailingOutput out;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(out, tracker, blocks, lateness, 0, false);
  auto chord_at = [](int64_t step) {
    StepEvents chord;
    chord.clear(step);
    for (uint8_t key : {39, 43, 46}) chord.push({NoteEvent::kOn, key, 90});
    return chord;
  };
  REQUIRE(blocks.push(chord_at(0)));
  scheduler.start(400.0);
  wait_for_steps(scheduler, 1);
  REQUIRE(tracker.count() == 3);
  out.failing = true;
  StepEvents empty;
  empty.clear(1);
  REQUIRE(blocks.push(empty));
  wait_for_steps(scheduler, 2);
  CHECK(tracker.count() == 0);
  REQUIRE(blocks.push(chord_at(2)));  // later notes are not tracked either: nothing to switch off
  wait_for_steps(scheduler, 3);
  CHECK(tracker.count() == 0);
  scheduler.stop();
  CHECK(out.recorder.count() == 3);  // the three note-ons; nothing reached the dead port after
}

TEST_CASE("when the output comes back, the scheduler ends what the receiver may hold, owed note-offs first, then plays") {
  FailingOutput out;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(out, tracker, blocks, lateness, 0, false);
  StepEvents chord;
  chord.clear(0);
  chord.push({NoteEvent::kOn, 39, 90});
  REQUIRE(blocks.push(chord));
  scheduler.start(400.0);
  wait_for_steps(scheduler, 1);
  out.failing = true;  // the note-off of key 39 will never reach the receiver
  StepEvents off;
  off.clear(1);
  off.push({NoteEvent::kOff, 39, 0});
  REQUIRE(blocks.push(off));
  wait_for_steps(scheduler, 2);
  out.failing = false;  // reconnected
  StepEvents next;
  next.clear(2);
  next.push({NoteEvent::kOn, 50, 80});
  REQUIRE(blocks.push(next));
  wait_for_steps(scheduler, 3);
  scheduler.stop();
  const RecordingOutput& rec = out.recorder;
  // note-on 39; then, after the failure: its owed note-off, sustain off, all notes off, all
  // sound off, note-on 50
  REQUIRE(rec.count() >= 6);
  CHECK(rec.at(0).bytes[0] == 0x90);
  CHECK(rec.at(0).bytes[1] == kPitchLow + 39);
  check_all_off_at(rec, 1, 39);
  CHECK(rec.at(5).bytes[0] == 0x90);
  CHECK(rec.at(5).bytes[1] == kPitchLow + 50);
  CHECK_FALSE(tracker.owes());
}

TEST_CASE("a note-off dropped by a failure that ends within its step goes out at the next step") {
  FailingOutput out;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(out, tracker, blocks, lateness, 0, false);
  REQUIRE(blocks.push(block_for(0)));  // key 0 on
  scheduler.start(400.0);
  wait_for_steps(scheduler, 1);
  out.drop_next = 1;  // step 1's note-off of key 0 is dropped; its note-on of key 1 goes out
  REQUIRE(blocks.push(block_for(1)));
  REQUIRE(blocks.push(block_for(2)));
  wait_for_steps(scheduler, 3);
  scheduler.stop();
  const RecordingOutput& rec = out.recorder;
  // on 0; (off 0 dropped) on 1; then step 2: the owed off 0 first, off 1, on 2; no controllers
  REQUIRE(rec.count() >= 5);
  CHECK((rec.at(0).bytes[0] == 0x90 && rec.at(0).bytes[1] == kPitchLow + 0));
  CHECK((rec.at(1).bytes[0] == 0x90 && rec.at(1).bytes[1] == kPitchLow + 1));
  CHECK((rec.at(2).bytes[0] == 0x80 && rec.at(2).bytes[1] == kPitchLow + 0));
  CHECK((rec.at(3).bytes[0] == 0x80 && rec.at(3).bytes[1] == kPitchLow + 1));
  CHECK((rec.at(4).bytes[0] == 0x90 && rec.at(4).bytes[1] == kPitchLow + 2));
}

TEST_CASE("after the output comes back the all-off sequence is sent once, and later notes are held") {
  FailingOutput out;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(out, tracker, blocks, lateness, 0, false);
  StepEvents empty;
  empty.clear(0);
  REQUIRE(blocks.push(empty));
  scheduler.start(120.0);  // 125 ms per step
  wait_for_steps(scheduler, 1);
  out.failing = true;
  const int64_t failed_at = scheduler.steps_played();
  wait_for_steps(scheduler, failed_at + 2);  // at least one whole step ran on the failed output
  out.failing = false;  // reconnected
  const int64_t back = scheduler.steps_played();
  StepEvents on;  // a note that holds: no note-off follows
  on.clear(back + 1);
  on.push({NoteEvent::kOn, 50, 80});
  REQUIRE(blocks.push(on));
  wait_for_steps(scheduler, back + 4);  // steps back+2 and back+3 have no block
  CHECK(tracker.count() == 1);  // still sounding: not cut by a second all-off
  CHECK(count_messages(out.recorder, 0xB0, 123) == 1);
  scheduler.stop();
  CHECK(count_messages(out.recorder, 0x90) == 1);
}

TEST_CASE("a run after one that ended on a failed output sends the owed note-offs and the all-off first") {
  FailingOutput out;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(out, tracker, blocks, lateness, 0, false);
  StepEvents chord;
  chord.clear(0);
  chord.push({NoteEvent::kOn, 39, 90});
  REQUIRE(blocks.push(chord));
  scheduler.start(400.0);
  wait_for_steps(scheduler, 1);
  out.failing = true;
  wait_for_steps(scheduler, scheduler.steps_played() + 2);  // a step saw the failure
  scheduler.stop();  // its all-off is dropped too
  REQUIRE(tracker.owes());
  out.failing = false;
  out.recorder.clear();
  StepEvents next;
  next.clear(0);
  next.push({NoteEvent::kOn, 50, 80});
  REQUIRE(blocks.push(next));
  scheduler.start(400.0);
  wait_for_steps(scheduler, 1);
  scheduler.stop();
  const RecordingOutput& rec = out.recorder;
  REQUIRE(rec.count() >= 5);
  check_all_off_at(rec, 0, 39);
  CHECK((rec.at(4).bytes[0] == 0x90 && rec.at(4).bytes[1] == kPitchLow + 50));
}
