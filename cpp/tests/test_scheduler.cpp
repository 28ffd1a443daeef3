// The clock thread: steps at their deadlines, tempo, stops, counts of late, missed and dropped
// notes, a producer that ends. Clock out: test_scheduler_clock_out.cpp; a failing output:
// test_scheduler_output_failure.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "emolive/scheduler.hpp"
#include "scheduler_support.hpp"

using namespace emolive;
using namespace emolive::test;

namespace {
// An output whose every send takes 4 ms (a slow driver), recorded after the wait.
class SlowOutput final : public MidiOutput {
 public:
  void send(const uint8_t* bytes, size_t size) noexcept override {
    std::this_thread::sleep_for(std::chrono::milliseconds(4));
    recorder.send(bytes, size);
  }
  std::string describe() const override { return "slow test output"; }
  RecordingOutput recorder;
};
}  // namespace

namespace {
// Stalls for `stall` in its first note-on's send, as a machine or process that stops for a
// while (SIGSTOP, swapping) makes the clock thread do.
struct StallingOutput final : MidiOutput {
  std::chrono::milliseconds stall{0};
  bool stalled = false;
  void send(const uint8_t* bytes, size_t) noexcept override {
    if (!stalled && (bytes[0] & 0xF0) == 0x90) {
      stalled = true;
      std::this_thread::sleep_for(stall);
    }
  }
  std::string describe() const override { return "stalling"; }
};
}  // namespace

TEST_CASE("the scheduler sends each step at or after its deadline, and pairs every note-on") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 3, false);
  const double bpm = 400.0;  // 37.5 ms per step
  const int steps = 12;
  for (int s = 0; s < 4; ++s) REQUIRE(blocks.push(block_for(s)));
  scheduler.start(bpm);
  for (int s = 4; s < steps; ++s) {
    while (scheduler.steps_played() + 4 <= s) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    REQUIRE(blocks.push(block_for(s)));
  }
  wait_for_steps(scheduler, steps);
  scheduler.stop();
  scheduler.stop();  // idempotent

  const int64_t origin = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             scheduler.origin().time_since_epoch()).count();
  const double step_ns = 60e9 / bpm / 4;
  std::map<int, int> balance;
  int ons = 0;
  for (size_t i = 0; i < rec.count(); ++i) {
    const RecordedMessage& m = rec.at(i);
    const int status = m.bytes[0] & 0xF0;
    if (m.size == 3 && (m.bytes[0] & 0x0F) != 3) FAIL("message on the wrong channel");
    if (status == 0x90) {
      const int step = m.bytes[1] - kPitchLow;
      CHECK(m.time_ns >= origin + int64_t(step * step_ns) - 1000);  // never early (1 us rounding)
      ++balance[m.bytes[1]];
      ++ons;
    } else if (status == 0x80) {
      --balance[m.bytes[1]];
    }
  }
  CHECK(ons == steps);
  for (auto [note, b] : balance) CHECK(b == 0);
  CHECK(tracker.count() == 0);
  CHECK(lateness.count() >= size_t(steps));
  // The last three messages are the controller part of the all-off sequence.
  REQUIRE(rec.count() >= 3);
  CHECK(rec.at(rec.count() - 1).bytes[1] == 120);
  CHECK(rec.at(rec.count() - 2).bytes[1] == 123);
  CHECK(rec.at(rec.count() - 3).bytes[1] == 64);
}

TEST_CASE("the scheduler keeps tempo: step spacing follows bpm without drift") {
  SlowOutput out;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(out, tracker, blocks, lateness, 0, false);
  for (int s = 0; s < 16; ++s) REQUIRE(blocks.push(block_for(s)));
  scheduler.start(300.0);  // 50 ms per step; each step's two sends take 8 ms
  wait_for_steps(scheduler, 16);
  scheduler.stop();
  const std::vector<int64_t> on_times = note_on_times_ns(out.recorder);
  REQUIRE(on_times.size() == 16);
  // Deadlines are absolute (step k at origin + k steps), so the time the sends take does not
  // add up: the last steps are as late as the first (about 8 ms), not 15 x 8 ms later. Judged
  // by the least late of four, so that a step a loaded machine delays is no drift.
  const int64_t origin = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             scheduler.origin().time_since_epoch()).count();
  std::vector<double> late_ms;
  for (int k = 0; k < 16; ++k) late_ms.push_back((on_times[k] - origin - k * 50'000'000LL) / 1e6);
  for (double ms : late_ms) CHECK(ms >= 0.0);  // never early
  const double first = *std::min_element(late_ms.begin(), late_ms.begin() + 4);
  const double last = *std::min_element(late_ms.end() - 4, late_ms.end());
  CHECK(last - first < 5.0);
}

TEST_CASE("a tempo change applies from the next step boundary") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, false);
  for (int s = 0; s < 8; ++s) REQUIRE(blocks.push(block_for(s)));
  scheduler.start(60.0);  // 250 ms per step
  // steps_played() counts a step once its notes are sent, at its start: 1 within step 0.
  wait_for_steps(scheduler, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // inside step 0
  scheduler.set_bpm(400.0);  // 37.5 ms per step from step 1
  wait_for_steps(scheduler, 5);
  scheduler.stop();
  std::vector<int64_t> on_ms = note_on_times_ns(rec);
  for (int64_t& t : on_ms) t /= 1000000;
  REQUIRE(on_ms.size() >= 5);
  CHECK(on_ms[1] - on_ms[0] == Approx(250).margin(15));  // step 0 keeps the old tempo
  CHECK(on_ms[2] - on_ms[1] == Approx(37.5).margin(15));  // step 1 has the new one (was 250)
}

TEST_CASE("stopping a scheduler that never got a block sends only the controller messages") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, true);
  scheduler.start(120.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  scheduler.stop();
  REQUIRE(rec.count() == 3);  // CC64, CC123, CC120; no MIDI Stop, as no Start was sent
  CHECK(rec.at(2).bytes[1] == 120);
}

TEST_CASE("the song position is the start's plus the steps played, read as one value") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, true);
  scheduler.start(400.0, 80);
  CHECK(scheduler.song_position() == 80);  // before the first step: where it starts
  for (int s = 0; s < 3; ++s) REQUIRE(blocks.push(block_for(s)));
  wait_for_steps(scheduler, 3);
  scheduler.stop();
  CHECK(scheduler.song_position() == 80 + scheduler.steps_played());
  // Stopped before its first step: no Stop either, as no Start or Continue went out.
  RecordingOutput idle;
  Scheduler never_started(idle, tracker, blocks, lateness, 0, true);
  never_started.start(120.0, 32);
  never_started.stop();
  for (size_t i = 0; i < idle.count(); ++i) CHECK(idle.at(i).bytes[0] != 0xFC);
  CHECK(never_started.song_position() == 32);
}

TEST_CASE("the scheduler refuses tempos outside 20..400 bpm") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, false);
  CHECK_THROWS_AS(scheduler.set_bpm(19.0), std::invalid_argument);
  CHECK_THROWS_AS(scheduler.set_bpm(401.0), std::invalid_argument);
  CHECK_NOTHROW(scheduler.set_bpm(20.0));
}

TEST_CASE("when the producer dies, the clock ends the notes it left sounding") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  std::atomic<bool> producer_alive{true};
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, false, &producer_alive);
  for (int s = 0; s < 3; ++s) REQUIRE(blocks.push(block_for(s)));  // key 2 still sounds after
  scheduler.start(400.0);
  wait_for_steps(scheduler, 5);
  CHECK(tracker.count() == 1);  // an underrun alone keeps the note: its block may still come
  producer_alive = false;       // as the generator's loop does when the model throws
  // The tracker empties with the note-off, before the controller messages follow it: wait for
  // the last of those (all sound off, CC120), not only for the tracker.
  const auto last_is_all_sound_off = [&rec] {
    const size_t n = rec.count();
    return n > 0 && rec.at(n - 1).bytes[0] == 0xB0 && rec.at(n - 1).bytes[1] == 120;
  };
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while ((tracker.count() > 0 || !last_is_all_sound_off()) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(tracker.count() == 0);
  const size_t after_release = rec.count();
  CHECK(rec.at(after_release - 1).bytes[1] == 120);  // the all-off sequence, sent once
  wait_for_steps(scheduler, 9);
  CHECK(rec.count() == after_release);
  scheduler.stop();
}

TEST_CASE("steps not decoded in time are counted as missed, and the note-ons that came late as dropped") {
  // A model too slow for the tempo lost its notes with no word: late_notes stayed 0 (helper-65).
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, false);
  for (int s = 4; s < 8; ++s) REQUIRE(blocks.push(block_for(s)));  // steps 0-3: nothing decoded
  scheduler.start(400.0);  // 37.5 ms per step
  wait_for_steps(scheduler, 10);
  REQUIRE(blocks.push(block_for(8)));  // two steps after its own
  for (int s = 11; s < 16; ++s) REQUIRE(blocks.push(block_for(s)));  // more than are played
  wait_for_steps(scheduler, 13);
  scheduler.stop();
  CHECK(lateness.missed_steps() == 7);  // 0-3 and 8-10
  CHECK(lateness.dropped_notes() == 1);  // step 8's note-on
  // Steps 4-7 and 11 on (12, and 13 if stop() came after it began) played their note-ons.
  CHECK(int64_t(note_on_times_ns(rec).size()) == scheduler.steps_played() - 7);
  CHECK(tracker.count() == 0);
}

TEST_CASE("a block that comes after its step still sends its note-offs, and counts its note-ons as dropped") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, false);
  StepEvents first;
  first.clear(0);
  first.push({NoteEvent::kOn, 5, 100});
  REQUIRE(blocks.push(first));
  scheduler.start(400.0);  // 37.5 ms per step
  wait_for_steps(scheduler, 3);
  REQUIRE(tracker.count() == 1);
  StepEvents late;  // step 1's block, two steps or more after its own
  late.clear(1);
  late.push({NoteEvent::kOff, 5, 0});
  late.push({NoteEvent::kOn, 6, 100});
  late.push({NoteEvent::kOn, 7, 100});
  REQUIRE(blocks.push(late));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!blocks.empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  wait_for_steps(scheduler, scheduler.steps_played() + 1);
  CHECK(tracker.count() == 0);  // the note-off went out while running, not at stop()
  CHECK(lateness.dropped_notes() == 2);  // its two note-ons, never sent
  scheduler.stop();
  CHECK(count_messages(rec, 0x90) == 1);
  CHECK(count_messages(rec, 0x80, kPitchLow + 5) == 1);
}

TEST_CASE("lateness is the send time after the deadline, and a late step's note-ons count as late") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, false);
  StepEvents empty;
  empty.clear(0);
  REQUIRE(blocks.push(empty));
  scheduler.start(20.0);  // 750 ms per step; a block may come until 375 ms after its deadline
  wait_for_steps(scheduler, 1);
  // Step 1's block comes 150 ms after its deadline: it is sent then, late.
  std::this_thread::sleep_until(scheduler.origin() + std::chrono::milliseconds(750 + 150));
  StepEvents chord;
  chord.clear(1);
  chord.push({NoteEvent::kOn, 30, 100});
  chord.push({NoteEvent::kOn, 34, 100});
  REQUIRE(blocks.push(chord));
  wait_for_steps(scheduler, 2);
  scheduler.stop();
  CHECK(count_messages(rec, 0x90) == 2);
  CHECK(lateness.late_notes() == 2);
  CHECK(lateness.missed_steps() == 0);
  REQUIRE(lateness.count() >= 2);
  for (size_t i = 0; i < lateness.count(); ++i) CHECK(lateness.data()[i] >= 0.f);
  CHECK(lateness.data()[1] >= 150000.f);  // microseconds
  CHECK(lateness.max_us() >= 150000.f);
}

TEST_CASE("a second run starts afresh: no steps played, and the clock ends the notes a dead producer left") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  std::atomic<bool> producer_alive{false};  // it queued its blocks and ended
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, false, &producer_alive);
  for (int run = 0; run < 2; ++run) {
    scheduler.start(120.0);  // 125 ms per step
    CHECK(scheduler.steps_played() == 0);  // the thread waits for the first block
    for (int s = 0; s < 3; ++s) REQUIRE(blocks.push(block_for(s)));  // key 2 sounds after
    // The queue empty and the producer gone: the clock sends the all-off sequence itself.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while ((scheduler.steps_played() < 3 || tracker.count() > 0) &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(tracker.count() == 0);
    wait_for_steps(scheduler, 6);
    CHECK(lateness.missed_steps() == 0);  // no block can come: not the model's slowness
    scheduler.stop();
    CHECK(count_messages(rec, 0x90) == 3);
    rec.clear();
  }
}

TEST_CASE("the scheduler refuses a MIDI channel index outside 0..15") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  CHECK_THROWS_AS(Scheduler(rec, tracker, blocks, lateness, 16, false), std::invalid_argument);
  CHECK_THROWS_AS(Scheduler(rec, tracker, blocks, lateness, -1, false), std::invalid_argument);
  CHECK_NOTHROW(Scheduler(rec, tracker, blocks, lateness, 15, false));
}

TEST_CASE("stopping while a step waits for its block does not count that step as missed") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, false);
  REQUIRE(blocks.push(block_for(0)));
  scheduler.start(20.0);  // 750 ms per step; step 1 waits for its block until 1,125 ms
  wait_for_steps(scheduler, 1);
  std::this_thread::sleep_until(scheduler.origin() + std::chrono::milliseconds(750 + 100));
  scheduler.stop();  // inside step 1's wait
  CHECK(lateness.missed_steps() == 0);
}

TEST_CASE("steps the clock itself came too late for are not counted as missed") {
  StallingOutput out;
  out.stall = std::chrono::milliseconds(200);
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(out, tracker, blocks, lateness, 0, false);
  REQUIRE(blocks.push(block_for(0)));  // no later block: every later step lacks one
  scheduler.start(400.0);  // 37.5 ms per step: steps 1-4 end their wait (half a step) by 169 ms
  wait_for_steps(scheduler, 8);
  scheduler.stop();
  // Steps 1-4 came after the 200 ms stall, past their half step: no sign of a slow model.
  CHECK(lateness.missed_steps() <= scheduler.steps_played() - 5);
}
