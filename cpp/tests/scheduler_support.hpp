// Shared by the scheduler's tests: blocks, waits and outputs of the tests' own making.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "emolive/scheduler.hpp"

namespace emolive::test {

// Step k: note-on of key k (velocity 100) and note-off of key k-1.
inline StepEvents block_for(int64_t step) {
  StepEvents b;
  b.clear(step);
  if (step > 0) b.push({NoteEvent::kOff, uint8_t(step - 1), 0});
  b.push({NoteEvent::kOn, uint8_t(step), 100});
  return b;
}

// Send times of the recorded note-ons, in order.
inline std::vector<int64_t> note_on_times_ns(const RecordingOutput& rec) {
  std::vector<int64_t> times;
  for (size_t i = 0; i < rec.count(); ++i) {
    if ((rec.at(i).bytes[0] & 0xF0) == 0x90) times.push_back(rec.at(i).time_ns);
  }
  return times;
}

inline void wait_for_steps(const Scheduler& scheduler, int64_t steps) {
  while (scheduler.steps_played() < steps) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// How many recorded messages have `status` (and `data1`, where given).
inline int count_messages(const RecordingOutput& rec, uint8_t status, int data1 = -1) {
  int n = 0;
  for (size_t i = 0; i < rec.count(); ++i) {
    const RecordedMessage& m = rec.at(i);
    n += m.bytes[0] == status && (data1 < 0 || (m.size > 1 && m.bytes[1] == data1));
  }
  return n;
}

// The all-off sequence on channel 1 from message `at` on: the note-off of `key` (a key index,
// as in NoteEvent), then sustain off, all notes off, all sound off.
inline void check_all_off_at(const RecordingOutput& rec, size_t at, int key) {
  REQUIRE(rec.count() >= at + 4);
  CHECK((rec.at(at).bytes[0] == 0x80 && rec.at(at).bytes[1] == kPitchLow + key));
  CHECK((rec.at(at + 1).bytes[0] == 0xB0 && rec.at(at + 1).bytes[1] == 64));
  CHECK((rec.at(at + 2).bytes[0] == 0xB0 && rec.at(at + 2).bytes[1] == 123));
  CHECK((rec.at(at + 3).bytes[0] == 0xB0 && rec.at(at + 3).bytes[1] == 120));
}

// An output that starts failing on demand, as a port does when its device disappears.
class FailingOutput final : public MidiOutput {
 public:
  void send(const uint8_t* bytes, size_t size) noexcept override {
    dropped_last = drop_next.load() > 0;
    if (dropped_last) {
      --drop_next;  // a failure that is over by the next send (a stall guard's brief trip)
      return;
    }
    if (!failing) recorder.send(bytes, size);
  }
  bool failed() const noexcept override { return failing.load() || dropped_last.load(); }
  std::string error_text() const override { return failing ? "device unplugged" : ""; }
  std::string describe() const override { return "failing test output"; }
  std::atomic<bool> failing{false};
  std::atomic<int> drop_next{0};
  std::atomic<bool> dropped_last{false};
  RecordingOutput recorder;
};

}  // namespace emolive::test
