// The error sink of the RtMidi outputs (a private header of the core): the first error is
// kept, and a reader on another thread never sees half of a message while it is replaced.
#ifdef EMOLIVE_HAVE_RTMIDI
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "../src/rtmidi_api.hpp"

using emolive::ErrorSink;

TEST_CASE("error sink keeps the first error until reset, and replace changes it") {
  ErrorSink sink;
  CHECK_FALSE(sink.failed.load());
  CHECK(sink.text().empty());
  sink.fail("first");
  sink.fail("second");
  CHECK(sink.failed.load());
  CHECK(sink.text() == "first");
  sink.replace("the cause now");
  CHECK(sink.failed.load());
  CHECK(sink.text() == "the cause now");
  sink.reset();
  CHECK_FALSE(sink.failed.load());
  CHECK(sink.text().empty());
  sink.fail(std::string(1000, 'x').c_str());
  CHECK(sink.text() == std::string(255, 'x'));  // cut to the buffer, 0 included
}

TEST_CASE("error sink readers never see a message half replaced, nor no error") {
  ErrorSink sink;
  const std::string long_cause(250, 'a');
  const std::string short_cause(40, 'b');
  sink.fail(long_cause.c_str());
  std::atomic<bool> done{false};
  std::atomic<long> writes{0};
  std::thread writer([&] {
    for (long i = 0; !done.load(); ++i) {
      sink.replace((i % 2 ? short_cause : long_cause).c_str());
      writes.store(i + 1);
      std::this_thread::yield();  // let readers through between writes, as rare writes do
    }
  });
  // At least 20,000 reads (about 0.2 s here) and until the writer has replaced the cause 100
  // times (on a loaded machine it may hardly run during the first reads), or 2 s where a
  // sanitizer slows every access down.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  long torn = 0, unfailed = 0;
  for (int read = 0; (read < 20000 || writes.load() < 100) &&
                     std::chrono::steady_clock::now() < deadline; ++read) {
    const std::string seen = sink.text();
    torn += seen != long_cause && seen != short_cause;
    unfailed += !sink.failed.load();
  }
  done.store(true);
  writer.join();
  INFO(writes.load() << " replacements");
  CHECK(writes.load() >= 100);
  CHECK(torn == 0);
  CHECK(unfailed == 0);
}
#endif
