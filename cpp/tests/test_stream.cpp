#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "emolive/stream.hpp"

using namespace emolive;

namespace {
constexpr int kZ = 8;
constexpr int kSegment = 4;

// Decoder outputs standing in for a model: every key wants to start and to hold.
struct Outputs {
  std::vector<float> onset = std::vector<float>(kPitchCount, 20.f);
  std::vector<float> hold = std::vector<float>(kPitchCount, 20.f);
  std::vector<float> velocity = std::vector<float>(kPitchCount, 0.5f);
};

GeneratorConfig config(uint64_t seed) {
  GeneratorConfig c;
  c.seed = seed;
  c.emotion = {2.f, 0.f, 0.f, 2.f};
  c.sampling.max_onsets_per_step = 3;
  return c;
}

struct Step {
  std::vector<float> z, emotion;
  bool phrase_start;
  std::vector<float> frame;
  StepEvents events;
};

Step run_step(Stream& stream, const Outputs& o) {
  Step s{std::vector<float>(kZ), std::vector<float>(kEmotionCount), false,
         std::vector<float>(kFrameSize), {}};
  s.phrase_start = stream.begin_step(s.z.data(), s.emotion.data());
  stream.end_step(o.onset.data(), o.hold.data(), o.velocity.data(), s.frame.data(), s.events);
  return s;
}
}  // namespace

TEST_CASE("a stream starts a phrase every segment_steps steps and again after finish") {
  Stream stream(kZ, kSegment, config(1));
  Outputs o;
  for (int step = 0; step < 3 * kSegment; ++step) {
    const Step s = run_step(stream, o);
    CHECK(s.phrase_start == (step % kSegment == 0));
    CHECK(s.events.step == step);
    CHECK(s.emotion == std::vector<float>{0.5f, 0.f, 0.f, 0.5f});  // normalised
    for (float x : s.z) CHECK(std::isfinite(x));
  }
  StepEvents last;
  stream.finish(last);
  CHECK(last.step == 3 * kSegment);
  CHECK(stream.step() == 0);
  CHECK(run_step(stream, o).phrase_start);
}

TEST_CASE("finish sends a note-off for every sounding key") {
  Stream stream(kZ, kSegment, config(2));
  Outputs o;
  run_step(stream, o);
  run_step(stream, o);  // held keys keep sounding, new onsets add more (3 per step)
  const int sounding = stream.sounding_count();
  REQUIRE(sounding > 0);
  StepEvents last;
  stream.finish(last);
  CHECK(last.count == sounding);
  for (int i = 0; i < last.count; ++i) CHECK(last.events[i].kind == NoteEvent::kOff);
  CHECK(stream.sounding_count() == 0);
}

TEST_CASE("streams with the same config and decoder outputs agree; other seeds differ") {
  Stream a(kZ, kSegment, config(7)), b(kZ, kSegment, config(7)), c(kZ, kSegment, config(8));
  Outputs o;
  for (auto& x : o.onset) x = 0.f;  // p = 0.5: the draws decide
  bool c_differs = false;
  for (int step = 0; step < 20; ++step) {
    const Step sa = run_step(a, o), sb = run_step(b, o), sc = run_step(c, o);
    CHECK(sa.z == sb.z);
    CHECK(sa.frame == sb.frame);
    REQUIRE(sa.events.count == sb.events.count);
    for (int i = 0; i < sa.events.count; ++i) {
      CHECK(sa.events.events[i].key == sb.events.events[i].key);
      CHECK(sa.events.events[i].kind == sb.events.events[i].kind);
    }
    c_differs = c_differs || sc.z != sa.z || sc.frame != sa.frame;
  }
  CHECK(c_differs);
}

TEST_CASE("a stream's emotion glides to its target over the given steps") {
  Stream stream(kZ, kSegment, config(3));
  stream.set_emotion({0.f, 1.f, 0.f, 0.f}, 4);
  Outputs o;
  std::vector<float> second;
  for (int step = 0; step < 4; ++step) second.push_back(run_step(stream, o).emotion[1]);
  CHECK(second[0] == Approx(0.25f));
  CHECK(second[3] == Approx(1.f));
  CHECK_THROWS_AS(stream.set_temperature(0.f), std::invalid_argument);
}

TEST_CASE("a transposition outside -11..11 semitones is refused") {
  // key + transpose overflowed an int for INT_MAX (UBSan: signed integer overflow).
  GeneratorConfig c = config(1);
  Stream stream(kZ, kSegment, c);
  CHECK_THROWS_AS(stream.set_key(0x0FFF, 12), std::invalid_argument);
  CHECK_THROWS_AS(stream.set_key(0x0FFF, INT32_MAX), std::invalid_argument);
  stream.set_key(0x0FFF, -11);
  c.sampling.transpose = -12;
  CHECK_THROWS_AS(Stream(kZ, kSegment, c), std::invalid_argument);
}

TEST_CASE("a stream's first step starts one note when the model starts none, later steps do not") {
  GeneratorConfig c;
  c.seed = 4;
  c.sampling.deterministic = true;
  Stream stream(kZ, kSegment, c);
  Outputs o;
  std::fill(o.onset.begin(), o.onset.end(), -20.f);  // hold stays high: the note keeps sounding
  const Step first = run_step(stream, o);
  REQUIRE(first.events.count == 1);
  CHECK(first.events.events[0].kind == NoteEvent::kOn);
  for (int step = 1; step < 4; ++step) CHECK(run_step(stream, o).events.count == 0);
  StepEvents last;
  stream.finish(last);
  CHECK(run_step(stream, o).events.count == 1);  // a new performance starts one again
}

TEST_CASE("the temperature bounds 0.05 and 5 and transposition 11 are accepted; a config temperature of 0 is not") {
  GeneratorConfig c;
  Stream stream(kZ, kSegment, c);
  CHECK_NOTHROW(stream.set_temperature(0.05f));
  CHECK_NOTHROW(stream.set_temperature(5.0f));
  CHECK_THROWS_AS(stream.set_temperature(5.01f), std::invalid_argument);
  CHECK_NOTHROW(stream.set_key(0x0FFF, 11));
  CHECK_NOTHROW(stream.set_key(0x0FFF, -11));
  c.sampling.temperature = 0.f;
  CHECK_THROWS_AS(Stream(kZ, kSegment, c), std::invalid_argument);
}

TEST_CASE("the sampler's random draws are not the latent walk's") {
  // Both come from the config's seed; the walk draws from Rng(seed). At p = 0.5 the onsets
  // would repeat that stream's first 88 uniforms (u < 0.5) if the sampler drew the same ones.
  GeneratorConfig c;
  c.seed = 11;
  Stream stream(kZ, kSegment, c);
  Outputs o;
  std::fill(o.onset.begin(), o.onset.end(), 0.f);
  const Step s = run_step(stream, o);
  std::vector<bool> onsets(kPitchCount, false);
  for (int i = 0; i < s.events.count; ++i) {
    if (s.events.events[i].kind == NoteEvent::kOn) onsets[s.events.events[i].key] = true;
  }
  Rng walk_stream(c.seed);
  std::vector<bool> walk_draws(kPitchCount);
  for (int k = 0; k < kPitchCount; ++k) walk_draws[k] = walk_stream.uniform() < 0.5;
  CHECK(onsets != walk_draws);
  // The walk itself follows Rng(seed): its first point is the stream's first latent.
  LatentWalk walk(kZ, c.seed, c.walk_steps_per_point);
  std::vector<float> z(kZ);
  walk.next(z.data());
  for (int i = 0; i < kZ; ++i) CHECK(s.z[i] == Approx(z[i]).margin(1e-6));
}
