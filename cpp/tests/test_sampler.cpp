#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "emolive/sampler.hpp"

using namespace emolive;

namespace {
struct Outputs {
  std::vector<float> onset = std::vector<float>(kPitchCount, -20.f);
  std::vector<float> hold = std::vector<float>(kPitchCount, -20.f);
  std::vector<float> velocity = std::vector<float>(kPitchCount, 0.5f);
};
}  // namespace

TEST_CASE("onsets start notes and holds keep them until the hold falls") {
  Sampler sampler(1);
  SamplerSettings s;
  s.deterministic = true;
  Outputs o;
  std::vector<float> frame(kFrameSize);
  StepEvents ev;
  o.onset[39] = 20.f;  // C4 = key 39
  ev.clear(0);
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  REQUIRE(ev.count == 1);
  CHECK(ev.events[0].kind == NoteEvent::kOn);
  CHECK(ev.events[0].key == 39);
  CHECK(ev.events[0].velocity == 64);
  CHECK(frame[39] == 1.f);
  CHECK(frame[kPitchCount + 39] == 1.f);
  CHECK(frame[2 * kPitchCount + 39] == Approx(64 / 127.f));

  o.onset[39] = -20.f;
  o.hold[39] = 20.f;
  ev.clear(1);
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  CHECK(ev.count == 0);
  CHECK(frame[39] == 0.f);
  CHECK(frame[kPitchCount + 39] == 1.f);

  o.hold[39] = -20.f;
  ev.clear(2);
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  REQUIRE(ev.count == 1);
  CHECK(ev.events[0].kind == NoteEvent::kOff);
  CHECK(sampler.sounding_count() == 0);
}

TEST_CASE("a new onset on a sounding key re-strikes it with the note-off first") {
  Sampler sampler(1);
  SamplerSettings s;
  s.deterministic = true;
  Outputs o;
  std::vector<float> frame(kFrameSize);
  StepEvents ev;
  o.onset[10] = 20.f;
  o.hold[10] = 20.f;
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  ev.clear(1);
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  REQUIRE(ev.count == 2);
  CHECK(ev.events[0].kind == NoteEvent::kOff);
  CHECK(ev.events[1].kind == NoteEvent::kOn);
}

TEST_CASE("the scale mask keeps onsets to allowed pitch classes") {
  Sampler sampler(3);
  SamplerSettings s;
  s.scale_mask = 0b101010110101;  // C major: C D E F G A B
  Outputs o;
  std::fill(o.onset.begin(), o.onset.end(), 20.f);
  std::vector<float> frame(kFrameSize);
  StepEvents ev;
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  CHECK(ev.count == 52);  // white keys of an 88-key piano
  for (int i = 0; i < ev.count; ++i) {
    const int pc = (kPitchLow + ev.events[i].key) % 12;
    CHECK(((s.scale_mask >> pc) & 1) == 1);
  }
}

TEST_CASE("transposition moves the notes played, not the frame the model sees") {
  Sampler sampler(1);
  SamplerSettings s;
  s.deterministic = true;
  s.transpose = -3;
  Outputs o;
  std::vector<float> frame(kFrameSize);
  StepEvents ev;
  o.onset[39] = 20.f;  // model key C4 -> A3 (key 36) played
  o.hold[39] = 20.f;
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  REQUIRE(ev.count == 1);
  CHECK(ev.events[0].kind == NoteEvent::kOn);
  CHECK(ev.events[0].key == 36);
  CHECK(frame[39] == 1.f);  // the model's own key is its next input
  CHECK(frame[36] == 0.f);
  CHECK(sampler.sounding(39));

  // The transposition changes while the note sounds: its note-off still goes to key 36.
  s.transpose = 4;
  o.onset[39] = -20.f;
  o.hold[39] = -20.f;
  ev.clear(1);
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  REQUIRE(ev.count == 1);
  CHECK(ev.events[0].kind == NoteEvent::kOff);
  CHECK(ev.events[0].key == 36);

  // release_all also ends notes where they were played.
  o.onset[39] = 20.f;
  o.hold[39] = 20.f;
  ev.clear(2);
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  REQUIRE(ev.count == 1);
  CHECK(ev.events[0].key == 43);
  s.transpose = 0;
  ev.clear(3);
  sampler.release_all(ev);
  REQUIRE(ev.count == 1);
  CHECK(ev.events[0].kind == NoteEvent::kOff);
  CHECK(ev.events[0].key == 43);
}

TEST_CASE("a transposed note off the keyboard is not started; the scale applies to notes played") {
  Sampler sampler(1);
  SamplerSettings s;
  s.deterministic = true;
  s.transpose = 2;
  s.scale_mask = 0b101010110101;  // C major, on the notes played
  Outputs o;
  std::fill(o.onset.begin(), o.onset.end(), 20.f);
  std::vector<float> frame(kFrameSize);
  StepEvents ev;
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  for (int i = 0; i < ev.count; ++i) {
    CHECK(ev.events[i].key >= 2);  // model keys 86, 87 would leave the keyboard
    CHECK(((s.scale_mask >> ((kPitchLow + ev.events[i].key) % 12)) & 1) == 1);
  }
  CHECK(ev.count == 51);  // white keys B0..C8: nothing moves up onto A0 (key 0)
  CHECK(frame[kPitchCount - 1] == 0.f);
  CHECK(frame[kPitchCount - 2] == 0.f);
}

TEST_CASE("Bernoulli onsets follow the probability and repeat with the seed") {
  SamplerSettings s;
  Outputs o;
  std::fill(o.onset.begin(), o.onset.end(), 0.f);  // p = 0.5
  auto count_onsets = [&](uint64_t seed, std::vector<int>& keys) {
    Sampler sampler(seed);
    std::vector<float> frame(kFrameSize);
    int total = 0;
    for (int step = 0; step < 50; ++step) {
      StepEvents ev;
      ev.clear(step);
      sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
      for (int i = 0; i < ev.count; ++i) {
        if (ev.events[i].kind == NoteEvent::kOn) {
          ++total;
          keys.push_back(ev.events[i].key);
        }
      }
    }
    return total;
  };
  std::vector<int> a, b, c;
  const int n = count_onsets(9, a);
  count_onsets(9, b);
  count_onsets(10, c);
  CHECK(n == Approx(50 * 88 * 0.5).epsilon(0.05));
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE("release_all switches off every sounding key") {
  Sampler sampler(1);
  SamplerSettings s;
  s.deterministic = true;
  Outputs o;
  o.onset[0] = o.onset[87] = 20.f;
  std::vector<float> frame(kFrameSize);
  StepEvents ev;
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  ev.clear(1);
  sampler.release_all(ev);
  CHECK(ev.count == 2);
  CHECK(sampler.sounding_count() == 0);
}

TEST_CASE("an onset cap keeps only the most probable of the drawn onsets") {
  Sampler sampler(5);
  SamplerSettings s;
  s.deterministic = true;
  s.max_onsets_per_step = 3;
  Outputs o;
  for (int k = 0; k < kPitchCount; ++k) o.onset[k] = 1.0f + 0.01f * k;  // all drawn; key 87 likeliest
  std::vector<float> frame(kFrameSize);
  StepEvents ev;
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  REQUIRE(ev.count == 3);
  for (int i = 0; i < 3; ++i) CHECK(ev.events[i].key >= 85);
}

TEST_CASE("a performance's first step starts the most probable allowed key when the draw is silent") {
  Sampler sampler(5);
  SamplerSettings s;
  s.scale_mask = 0b101010110101;  // C major
  Outputs o;
  std::fill(o.onset.begin(), o.onset.end(), -30.f);  // nothing would be drawn
  o.onset[40] = -5.f;                                 // C#4 (MIDI 61): not in C major
  o.onset[39] = -6.f;                                 // C4 (MIDI 60): the best allowed key
  std::vector<float> frame(kFrameSize);
  StepEvents ev;
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev, true);
  REQUIRE(ev.count == 1);
  CHECK(ev.events[0].kind == NoteEvent::kOn);
  CHECK(ev.events[0].key == 39);
  CHECK(frame[39] == 1.0f);  // and the played frame says so (the decoder's next prev)
  ev.clear(1);
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  for (int i = 0; i < ev.count; ++i) CHECK(ev.events[i].kind != NoteEvent::kOn);  // only step 0
}

TEST_CASE("NaN onset logits start no note, the first step's included, and are counted") {
  // A step of NaNs started A0 on the first step (a NaN lost every comparison; helper-65).
  Sampler sampler(5);
  SamplerSettings s;
  Outputs o;
  std::fill(o.onset.begin(), o.onset.end(), std::nanf(""));
  std::vector<float> frame(kFrameSize);
  StepEvents ev;
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev, true);
  CHECK(ev.count == 0);
  CHECK(sampler.nonfinite_steps() == 1);
  o.onset[50] = -3.f;  // one finite key among NaNs: the one the first step may start
  ev.clear(1);
  Sampler fresh(5);
  fresh.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev, true);
  REQUIRE(ev.count == 1);
  CHECK(ev.events[0].key == 50);
  std::fill(o.onset.begin(), o.onset.end(), -20.f);  // a sound step is not counted
  ev.clear(2);
  fresh.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev);
  CHECK(fresh.nonfinite_steps() == 1);
}

namespace {
// One deterministic step of `sampler`: its events.
StepEvents step_of(Sampler& sampler, const Outputs& o, const SamplerSettings& s,
                   bool must_start = false) {
  std::vector<float> frame(kFrameSize);
  StepEvents ev;
  ev.clear(0);
  sampler.sample(o.onset.data(), o.hold.data(), o.velocity.data(), s, frame.data(), ev, must_start);
  return ev;
}
}  // namespace

TEST_CASE("temperature divides the onset logits: low sharpens, high flattens") {
  SamplerSettings s;
  s.deterministic = true;
  s.onset_threshold = 0.8f;
  Outputs o;
  o.onset[40] = 1.f;  // p = sigmoid(1 / T): 0.73 at T = 1
  Sampler plain(1), sharp(1), flat(1);
  CHECK(step_of(plain, o, s).count == 0);
  s.temperature = 0.5f;  // sigmoid(2) = 0.88 > 0.8
  CHECK(step_of(sharp, o, s).count == 1);
  s.temperature = 2.f;  // sigmoid(0.5) = 0.62
  s.onset_threshold = 0.7f;
  CHECK(step_of(flat, o, s).count == 0);
}

TEST_CASE("the hold ignores temperature: a note held at T = 1 is held at T = 2") {
  SamplerSettings s;
  s.deterministic = true;
  s.hold_threshold = 0.7f;
  Outputs o;
  o.onset[40] = 20.f;
  Sampler sampler(1);
  REQUIRE(step_of(sampler, o, s).count == 1);
  o.onset[40] = -20.f;
  o.hold[40] = 1.f;  // sigmoid(1) = 0.73 > 0.7 (sigmoid(1 / 2) = 0.62 would end it)
  s.temperature = 2.f;
  CHECK(step_of(sampler, o, s).count == 0);
  CHECK(sampler.sounding(40));
}

TEST_CASE("velocities are clamped to 1..127, and a NaN velocity plays at 64") {
  SamplerSettings s;
  s.deterministic = true;
  Outputs o;
  o.onset[10] = 20.f;
  o.onset[20] = 20.f;
  o.onset[30] = 20.f;
  o.velocity[10] = 0.f;
  o.velocity[20] = std::nanf("");
  o.velocity[30] = 2.f;
  Sampler sampler(1);
  const StepEvents ev = step_of(sampler, o, s);
  REQUIRE(ev.count == 3);
  CHECK(ev.events[0].velocity == 1);  // a note-on of velocity 0 would be a note-off
  CHECK(ev.events[1].velocity == 64);
  CHECK(ev.events[2].velocity == 127);
}

TEST_CASE("a note transposed one key past either end of the keyboard is not started") {
  SamplerSettings s;
  s.deterministic = true;
  Outputs o;
  o.onset[0] = 20.f;  // A0, the lowest key
  s.transpose = -1;
  Sampler low(1);
  CHECK(step_of(low, o, s).count == 0);
  o.onset[0] = -20.f;
  o.onset[87] = 20.f;  // C8, the highest key
  s.transpose = 1;
  Sampler high(1);
  CHECK(step_of(high, o, s).count == 0);
}

TEST_CASE("a held note ends exactly max_hold_steps steps after its onset") {
  SamplerSettings s;
  s.deterministic = true;
  s.max_hold_steps = 3;
  Outputs o;
  o.hold[12] = 20.f;  // the model would hold it for ever
  o.onset[12] = 20.f;
  Sampler sampler(1);
  REQUIRE(step_of(sampler, o, s).count == 1);  // step 0: note-on
  o.onset[12] = -20.f;
  CHECK(step_of(sampler, o, s).count == 0);  // step 1
  CHECK(step_of(sampler, o, s).count == 0);  // step 2
  const StepEvents off = step_of(sampler, o, s);  // step 3
  REQUIRE(off.count == 1);
  CHECK(off.events[0].kind == NoteEvent::kOff);
  CHECK_FALSE(sampler.sounding(12));
}

TEST_CASE("a probability equal to the threshold neither starts nor holds a note") {
  SamplerSettings s;
  s.deterministic = true;  // thresholds 0.5; logit 0 gives exactly 0.5
  Outputs o;
  o.onset[50] = 0.f;
  Sampler sampler(1);
  CHECK(step_of(sampler, o, s).count == 0);
  o.onset[50] = 20.f;
  REQUIRE(step_of(sampler, o, s).count == 1);
  o.onset[50] = -20.f;
  o.hold[50] = 0.f;
  const StepEvents ev = step_of(sampler, o, s);
  REQUIRE(ev.count == 1);
  CHECK(ev.events[0].kind == NoteEvent::kOff);
}

TEST_CASE("ties go to the lower key: the onset cap and a first step with no onset") {
  SamplerSettings s;
  s.deterministic = true;
  s.max_onsets_per_step = 1;
  Outputs o;
  o.onset[30] = 20.f;
  o.onset[20] = 20.f;
  Sampler capped(1);
  StepEvents ev = step_of(capped, o, s);
  REQUIRE(ev.count == 1);
  CHECK(ev.events[0].key == 20);
  // Every key equally improbable: the first step starts the lowest, key 0.
  Outputs silent;
  Sampler first(1);
  ev = step_of(first, silent, s, true);
  REQUIRE(ev.count == 1);
  CHECK(ev.events[0].kind == NoteEvent::kOn);
  CHECK(ev.events[0].key == 0);
}
