// The engine with the bundled model (ONNX Runtime from EMOLIVE_ONNXRUNTIME_LIB, set by ctest)
// and an output of the test's own making.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "emolive/engine.hpp"
#include "emolive/errors.hpp"
#include "emolive/midi_out.hpp"
#include "emolive/model.hpp"

using namespace emolive;

namespace {

// An output whose port check throws the first time, then goes through.
class ThrowsOnce final : public MidiOutput {
 public:
  void send(const uint8_t*, size_t) noexcept override {}
  std::string describe() const override { return "throws once"; }
  void check_connection() override {
    if (checks_.fetch_add(1) == 0) throw std::runtime_error("transient");
  }
  int checks() const { return checks_.load(); }

 private:
  std::atomic<int> checks_{0};
};

// Polls `done` every 10 ms for up to `seconds`; whether it came true.
template <class Done>
bool within(double seconds, Done done) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

}  // namespace

TEST_CASE("a port check that threw once is not a port error for good") {
  auto model = std::make_shared<const Model>(EMOLIVE_BUNDLED_MODEL);
  auto output = std::make_unique<ThrowsOnce>();
  const ThrowsOnce& checks = *output;
  Engine engine(model, std::move(output), EngineConfig{});
  engine.play({0.f, 0.f, 0.f, 1.f});
  // Said while it lasts (the next check is 500 ms later).
  CHECK(within(3.0, [&] { return engine.stats().port_error == "port check failed: transient"; }));
  REQUIRE(within(3.0, [&] { return checks.checks() >= 2; }));
  // The second check went through: the error is over (it stayed for the engine's life).
  CHECK(within(1.0, [&] { return engine.stats().port_error.empty(); }));
  engine.close();
}

namespace {

OfflineRequest long_request(Cancellation* cancel) {
  OfflineRequest request;
  request.steps = 1'000'000;  // about 2 minutes of decoding per stream: never reached here
  request.cancel = cancel;
  return request;
}

}  // namespace

TEST_CASE("offline generation cancelled before it starts throws Cancelled") {
  const Model model(EMOLIVE_BUNDLED_MODEL);
  Cancellation cancel;
  cancel.request();
  CHECK_THROWS_AS(generate_one(model, long_request(&cancel), 1), Cancelled);
  CHECK_THROWS_AS(generate_many(model, long_request(&cancel), {1, 2, 3}, BatchPlan{2, 2}), Cancelled);
}

TEST_CASE("offline generation cancelled from another thread ends at once") {
  const Model model(EMOLIVE_BUNDLED_MODEL);
  Cancellation cancel;
  const OfflineRequest request = long_request(&cancel);
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel.request();
  });
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(generate_many(model, request, {1, 2, 3, 4}, BatchPlan{2, 2}), Cancelled);
  canceller.join();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("a cancellation ends the runs made with options attached to it, even after it came") {
  const Model model(EMOLIVE_BUNDLED_MODEL);
  auto buffers = model.make_buffers(1, StepGraph::offline);
  Cancellation cancel;
  {
    const Cancellation::Attachment attached(&cancel, buffers->run_options);
    model.decode_step_in_place(*buffers);  // runs: nothing was requested yet
  }
  cancel.request();
  {  // attached after the request: its runs end at once
    const Cancellation::Attachment attached(&cancel, buffers->run_options);
    CHECK_THROWS_AS(model.decode_step_in_place(*buffers), EngineError);
  }
  // A null cancellation attaches nothing.
  auto other = model.make_buffers(1, StepGraph::offline);
  const Cancellation::Attachment none(nullptr, other->run_options);
  model.decode_step_in_place(*other);
}
