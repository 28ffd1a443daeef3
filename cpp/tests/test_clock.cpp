#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <thread>

#include "emolive/clock.hpp"

using namespace emolive;

TEST_CASE("the lateness log keeps each sample, the largest, and the notes more than 1 ms late") {
  LatenessLog log(8);
  log.record(1500.f, 3);  // microseconds; 3 note-ons 1.5 ms late
  log.record(1000.f, 2);  // exactly 1 ms: not late
  log.record(999.f, 4);
  log.record(200.f, 1);
  REQUIRE(log.count() == 4);
  CHECK(log.data()[0] == 1500.f);
  CHECK(log.data()[1] == 1000.f);
  CHECK(log.data()[3] == 200.f);
  CHECK(log.max_us() == 1500.f);
  CHECK(log.late_notes() == 3);
  log.record(5000.f, 1);
  CHECK(log.max_us() == 5000.f);
  CHECK(log.late_notes() == 4);
}

TEST_CASE("clearing the lateness log resets its samples and every count") {
  LatenessLog log(8);
  log.record(2500.f, 2);
  log.record_missed_step();
  log.record_dropped(3);
  REQUIRE(log.late_notes() == 2);
  REQUIRE(log.missed_steps() == 1);
  REQUIRE(log.dropped_notes() == 3);
  log.clear();
  CHECK(log.count() == 0);
  CHECK(log.max_us() == 0.f);
  CHECK(log.late_notes() == 0);
  CHECK(log.missed_steps() == 0);
  CHECK(log.dropped_notes() == 0);
}

TEST_CASE("a wait for a far deadline returns soon after it is cancelled") {
  std::atomic<bool> cancel{false};
  const auto begin = SteadyClock::now();
  std::thread canceller([&cancel] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    cancel = true;
  });
  const bool reached = wait_until(begin + std::chrono::seconds(30), cancel);
  const auto waited = SteadyClock::now() - begin;
  canceller.join();
  CHECK_FALSE(reached);
  CHECK(waited < std::chrono::seconds(10));  // polls every 2 ms; generous for a loaded machine
}
