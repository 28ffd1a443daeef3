#include <catch2/catch.hpp>
#include <thread>

#include "emolive/spsc_queue.hpp"

using emolive::SpscQueue;

TEST_CASE("spsc queue keeps order and reports full and empty") {
  SpscQueue<int, 4> q;  // holds 3
  int out = 0;
  CHECK_FALSE(q.pop(out));
  CHECK(q.push(1));
  CHECK(q.push(2));
  CHECK(q.push(3));
  CHECK_FALSE(q.push(4));
  CHECK(q.size() == 3);
  REQUIRE(q.pop(out));
  CHECK(out == 1);
  CHECK(q.push(4));
  for (int expected : {2, 3, 4}) {
    REQUIRE(q.pop(out));
    CHECK(out == expected);
  }
  CHECK(q.empty());
}

TEST_CASE("spsc queue passes a million items between two threads in order") {
  SpscQueue<long, 1024> q;
  const long n = 1000000;
  std::thread producer([&] {
    for (long i = 0; i < n; ++i) {
      while (!q.push(i)) std::this_thread::yield();
    }
  });
  long expected = 0;
  bool in_order = true;
  while (expected < n) {
    long v;
    if (q.pop(v)) {
      in_order = in_order && v == expected;
      ++expected;
    } else {
      std::this_thread::yield();
    }
  }
  producer.join();
  CHECK(in_order);
  CHECK(q.empty());
}

TEST_CASE("spsc queue capacity() is how many items fit (one slot less than its size)") {
  SpscQueue<int, 8> q;
  CHECK(q.capacity() == 7);
  for (int i = 0; i < int(q.capacity()); ++i) REQUIRE(q.push(i));
  CHECK_FALSE(q.push(99));
  CHECK(q.size() == q.capacity());
}
