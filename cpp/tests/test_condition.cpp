#include <catch2/catch.hpp>

#include "emolive/condition.hpp"

using namespace emolive;

TEST_CASE("an emotion glide moves linearly and lands on its target") {
  EmotionGlide glide({1, 0, 0, 0});
  glide.set({0, 0, 1, 0}, 4);
  auto w = glide.next();
  CHECK(w[0] == Approx(0.75f));
  CHECK(w[2] == Approx(0.25f));
  glide.next();
  glide.next();
  w = glide.next();
  CHECK(w[0] == Approx(0.f));
  CHECK(w[2] == Approx(1.f));
  CHECK(glide.next() == w);  // stays on the target
}

TEST_CASE("a zero-length glide jumps, and weights are normalised and validated") {
  EmotionGlide glide;
  glide.set({2, 0, 0, 2}, 0);
  CHECK(glide.current()[0] == Approx(0.5f));
  CHECK(glide.current()[3] == Approx(0.5f));
  CHECK_THROWS_AS(glide.set({0, 0, 0, 0}, 0), std::invalid_argument);
  CHECK_THROWS_AS(glide.set({-1, 1, 0, 0}, 0), std::invalid_argument);
  CHECK_THROWS_AS(glide.set({1, 0, 0, 0}, -1), std::invalid_argument);
}

TEST_CASE("weights near the float maximum are normalised, not summed to infinity") {
  // {3e38, 3e38} summed in float is infinity: every weight became 0, and live play stopped.
  const Weights w = normalised({3e38f, 3e38f, 0, 0});
  CHECK(w[0] == Approx(0.5f));
  CHECK(w[1] == Approx(0.5f));
  CHECK(w[2] == 0.f);
  EmotionGlide glide;
  glide.set({3e38f, 0, 0, 3e38f}, 0);
  CHECK(glide.current()[3] == Approx(0.5f));
}

TEST_CASE("a second glide after a finished one moves again, a quarter of the way after 1 of 4 steps") {
  EmotionGlide glide({1, 0, 0, 0});
  glide.set({0, 1, 0, 0}, 2);
  glide.next();
  glide.next();  // landed on Q2
  glide.set({0, 0, 0, 1}, 4);
  const Weights w = glide.next();
  CHECK(w[1] == Approx(0.75f));
  CHECK(w[3] == Approx(0.25f));
}

TEST_CASE("a negative weight is refused even when the sum is positive") {
  CHECK_THROWS_AS(normalised({-0.5f, 1, 1, 1}), std::invalid_argument);
  EmotionGlide glide;
  CHECK_THROWS_AS(glide.set({1, 1, -0.1f, 1}, 4), std::invalid_argument);
}
