// MIDI clock out: Start, Song Position Pointer and Continue, Stop, and 6 ticks a step on time.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "emolive/scheduler.hpp"
#include "scheduler_support.hpp"

using namespace emolive;
using namespace emolive::test;

namespace {
// The transport messages (0xF2, 0xFA, 0xFB, 0xFC) a clock_out scheduler sends in one run of a
// step started at `song_position`, in order, each as its bytes.
std::vector<std::vector<uint8_t>> transport_of_a_run(int64_t song_position) {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, true);
  REQUIRE(blocks.push(block_for(0)));
  scheduler.start(400.0, song_position);
  while (scheduler.steps_played() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  scheduler.stop();
  std::vector<std::vector<uint8_t>> transport;
  for (size_t i = 0; i < rec.count(); ++i) {
    const RecordedMessage& m = rec.at(i);
    if (m.bytes[0] == 0xF2 || m.bytes[0] == 0xFA || m.bytes[0] == 0xFB || m.bytes[0] == 0xFC) {
      transport.emplace_back(m.bytes, m.bytes + m.size);
    }
  }
  return transport;
}
}  // namespace

TEST_CASE("a clock_out run from the song's start sends Start, from later Song Position and Continue") {
  using Bytes = std::vector<std::vector<uint8_t>>;
  CHECK(transport_of_a_run(0) == Bytes{{0xFA}, {0xFC}});
  // Bar 5 of 4/4 = 16th step 80; bar 1,000 = step 16,000 = 0x3E80 (LSB 0x00, MSB 0x7D).
  CHECK(transport_of_a_run(80) == Bytes{{0xF2, 80, 0}, {0xFB}, {0xFC}});
  CHECK(transport_of_a_run(16000) == Bytes{{0xF2, 0x00, 0x7D}, {0xFB}, {0xFC}});
  // Past the pointer's 14 bits: Continue alone (the receiver goes on where it stopped).
  CHECK(transport_of_a_run(kMaxSongPosition + 1) == Bytes{{0xFB}, {0xFC}});
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, true);
  CHECK_THROWS_AS(scheduler.start(120.0, -1), std::invalid_argument);
  CHECK_THROWS_AS(scheduler.start(120.0, kMaxStartPosition + 1), std::invalid_argument);
  CHECK_FALSE(scheduler.running());
}

TEST_CASE("with clock_out every step sends 6 clock ticks (24 per quarter note), none before its time") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, true);
  const int steps = 4;
  for (int s = 0; s < steps; ++s) REQUIRE(blocks.push(block_for(s)));
  scheduler.start(120.0);  // 125 ms per step: ticks 20.8 ms apart
  wait_for_steps(scheduler, steps);
  scheduler.stop();
  const int64_t origin = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             scheduler.origin().time_since_epoch()).count();
  const int64_t step_ns = 125000000;
  // Each step: its note-on, then its clock ticks; tick i of step k is due at k + i/6 steps.
  int step = -1, tick = 0;
  std::vector<int> ticks_per_step;
  for (size_t i = 0; i < rec.count(); ++i) {
    const RecordedMessage& m = rec.at(i);
    if ((m.bytes[0] & 0xF0) == 0x90) {
      if (step >= 0) ticks_per_step.push_back(tick);
      step = m.bytes[1] - kPitchLow;
      tick = 0;
    } else if (m.bytes[0] == 0xF8) {
      REQUIRE(step >= 0);
      CHECK(m.time_ns >= origin + step * step_ns + tick * step_ns / 6 - 1000);  // 1 us rounding
      ++tick;
    }
  }
  REQUIRE(ticks_per_step.size() == size_t(steps - 1));
  for (int n : ticks_per_step) CHECK(n == 6);
}

TEST_CASE("a start at the last position a Song Position Pointer can name sends it, then Continue") {
  using Bytes = std::vector<std::vector<uint8_t>>;
  CHECK(transport_of_a_run(kMaxSongPosition) == Bytes{{0xF2, 0x7F, 0x7F}, {0xFB}, {0xFC}});
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, true);
  CHECK_NOTHROW(scheduler.start(120.0, kMaxStartPosition));  // the largest start position
  CHECK(scheduler.running());
  scheduler.stop();
}

TEST_CASE("with clock_out the clock ticks keep time while a step waits for a late block") {
  RecordingOutput rec;
  NoteTracker tracker;
  BlockQueue blocks;
  LatenessLog lateness;
  Scheduler scheduler(rec, tracker, blocks, lateness, 0, true);
  REQUIRE(blocks.push(block_for(0)));
  scheduler.start(20.0);  // 750 ms per step: ticks 125 ms apart; a block may come until 375 ms
  wait_for_steps(scheduler, 1);
  // Step 1's block comes 300 ms after its deadline, after the step's ticks at 0, 125 and 250 ms.
  std::this_thread::sleep_until(scheduler.origin() + std::chrono::milliseconds(750 + 300));
  REQUIRE(blocks.push(block_for(1)));
  wait_for_steps(scheduler, 2);
  scheduler.stop();
  const int64_t step1_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               scheduler.origin().time_since_epoch()).count() + 750'000'000;
  std::vector<int64_t> ticks_ns;  // step 1's ticks, after its deadline
  for (size_t i = 0; i < rec.count(); ++i) {
    const RecordedMessage& m = rec.at(i);
    if (m.bytes[0] == 0xF8 && m.time_ns >= step1_ns - 1000) ticks_ns.push_back(m.time_ns - step1_ns);
  }
  REQUIRE(ticks_ns.size() == 6);
  // Each tick within 100 ms of its time: they went out together with the block, 300 ms late,
  // before (a loaded machine may be late by some milliseconds, never by 175).
  for (int i = 0; i < 3; ++i) CHECK(ticks_ns[i] < i * 125'000'000 + 100'000'000);
  // The block's note-on came after the first three ticks and before the fourth.
  size_t note_on = 0;
  while (note_on < rec.count() && !((rec.at(note_on).bytes[0] & 0xF0) == 0x90 &&
                                     rec.at(note_on).bytes[1] == kPitchLow + 1)) ++note_on;
  REQUIRE(note_on < rec.count());
  CHECK(rec.at(note_on).time_ns - step1_ns >= 300'000'000 - 1000);
}
