#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "emolive/latent_walk.hpp"

using emolive::LatentWalk;
using emolive::slerp;

namespace {
double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s);
}
bool all_finite(const std::vector<float>& v) {
  for (float x : v) if (!std::isfinite(x)) return false;
  return true;
}
}  // namespace

TEST_CASE("slerp hits its endpoints and keeps unit norm between unit vectors") {
  std::vector<float> a = {1, 0, 0}, b = {0, 1, 0}, out(3);
  slerp(a.data(), b.data(), 0.f, out.data(), 3);
  CHECK(out[0] == Approx(1.f));
  slerp(a.data(), b.data(), 1.f, out.data(), 3);
  CHECK(out[1] == Approx(1.f));
  CHECK(out[0] == Approx(0.f).margin(1e-6));
  for (float t : {0.1f, 0.25f, 0.5f, 0.9f}) {
    slerp(a.data(), b.data(), t, out.data(), 3);
    CHECK(norm(out) == Approx(1.0).epsilon(1e-5));
  }
  slerp(a.data(), b.data(), 0.5f, out.data(), 3);
  CHECK(out[0] == Approx(std::sqrt(0.5f)));
  CHECK(out[1] == Approx(std::sqrt(0.5f)));
}

TEST_CASE("slerp of equal endpoints is finite and constant") {
  std::vector<float> a = {0.3f, -1.2f, 2.0f, 0.5f}, out(4);
  for (float t : {0.f, 0.3f, 0.5f, 1.f}) {
    slerp(a.data(), a.data(), t, out.data(), 4);
    REQUIRE(all_finite(out));
    for (int i = 0; i < 4; ++i) CHECK(out[i] == Approx(a[i]).epsilon(1e-5));
  }
}

TEST_CASE("slerp of opposite endpoints is finite, unit norm, and turns from a to b") {
  std::vector<float> a = {0.6f, 0.8f, 0.f}, b = {-0.6f, -0.8f, 0.f}, out(3);
  for (float t : {0.f, 0.25f, 0.5f, 0.75f, 1.f}) {
    slerp(a.data(), b.data(), t, out.data(), 3);
    REQUIRE(all_finite(out));
    CHECK(norm(out) == Approx(1.0).epsilon(1e-5));
  }
  slerp(a.data(), b.data(), 1.f, out.data(), 3);
  for (int i = 0; i < 3; ++i) CHECK(out[i] == Approx(b[i]).margin(1e-5));
  slerp(a.data(), b.data(), 0.5f, out.data(), 3);  // halfway: orthogonal to a
  CHECK(out[0] * a[0] + out[1] * a[1] + out[2] * a[2] == Approx(0.f).margin(1e-5));
}

TEST_CASE("slerp interpolates the norm linearly and survives a zero endpoint") {
  std::vector<float> a = {2, 0}, b = {0, 4}, zero = {0, 0}, out(2);
  slerp(a.data(), b.data(), 0.5f, out.data(), 2);
  CHECK(norm(out) == Approx(3.0));
  slerp(zero.data(), b.data(), 0.5f, out.data(), 2);
  REQUIRE(all_finite(out));
  CHECK(out[1] == Approx(2.f));
}

TEST_CASE("slerp on a line (z of 1) glides through zero instead of jumping") {
  // Opposite signs: the norm-keeping path jumped from +1.04 to 0 to -0.96 around t = 0.5.
  const float a = 1.3f, b = -1.2f;
  float previous = a, out = 0.f;
  for (int k = 1; k <= 20; ++k) {
    slerp(&a, &b, float(k) / 20.f, &out, 1);
    CHECK(std::fabs(out - previous) == Approx(2.5 / 20).epsilon(1e-4));
    previous = out;
  }
  CHECK(out == Approx(b));
}

TEST_CASE("the latent walk is reproducible from its seed and differs across seeds") {
  const int z = 16;
  LatentWalk w1(z, 42, 8), w2(z, 42, 8), w3(z, 43, 8);
  std::vector<float> a(z), b(z), c(z);
  bool any_difference = false;
  for (int step = 0; step < 40; ++step) {
    w1.next(a.data());
    w2.next(b.data());
    w3.next(c.data());
    REQUIRE(all_finite(a));
    CHECK(a == b);
    if (a != c) any_difference = true;
  }
  CHECK(any_difference);
}

TEST_CASE("the latent walk moves smoothly: consecutive steps are closer than distant points") {
  const int z = 32;
  LatentWalk walk(z, 7, 16);
  std::vector<float> prev(z), cur(z);
  walk.next(prev.data());
  double max_step = 0.0;
  for (int step = 1; step < 64; ++step) {
    walk.next(cur.data());
    double d = 0;
    for (int i = 0; i < z; ++i) d += double(cur[i] - prev[i]) * (cur[i] - prev[i]);
    max_step = std::max(max_step, std::sqrt(d));
    prev = cur;
  }
  // Prior points in 32-D lie ~8 apart; 16 steps per point keep each step well below that.
  CHECK(max_step < 1.5);
  CHECK(max_step > 0.0);
}

TEST_CASE("the latent walk rejects a rate below one step per point") {
  CHECK_THROWS_AS(LatentWalk(4, 0, 0), std::invalid_argument);
}

TEST_CASE("the latent walk reaches a new prior point every steps_per_point steps") {
  // Same seed, same prior points: at 1 step per point call k gives point k; at 10 steps per
  // point, call 1 + 10k gives it (the 9 calls between glide towards the next point).
  const int z = 8;
  LatentWalk every_step(z, 5, 1), every_ten(z, 5, 10);
  std::vector<float> point(z), z_out(z);
  for (int k = 0; k < 4; ++k) {
    every_step.next(point.data());
    for (int call = 0; call < 10; ++call) {
      every_ten.next(z_out.data());
      if (call == 0) {
        for (int i = 0; i < z; ++i) CHECK(z_out[i] == Approx(point[i]).margin(1e-5));
      }
    }
  }
}

TEST_CASE("the latent walk refuses a rate change to zero and a latent of size zero") {
  LatentWalk walk(4, 0, 8);
  CHECK_THROWS_AS(walk.set_steps_per_point(0), std::invalid_argument);
  CHECK_NOTHROW(walk.set_steps_per_point(1));
  CHECK_THROWS_AS(LatentWalk(0, 0, 8), std::invalid_argument);
}

TEST_CASE("slerp of opposite endpoints on an axis is finite with unit norm halfway") {
  std::vector<float> a = {1, 0, 0}, b = {-1, 0, 0}, out(3);
  slerp(a.data(), b.data(), 0.5f, out.data(), 3);
  REQUIRE(all_finite(out));
  CHECK(norm(out) == Approx(1.0).epsilon(1e-5));
  CHECK(out[0] == Approx(0.f).margin(1e-5));  // a quarter turn: orthogonal to both
}

TEST_CASE("slerp between nearly opposite endpoints still ends on b") {
  // 0.005 rad short of a half turn: the path is the great circle through b, not a turn to -a.
  const float e = 0.005f;
  std::vector<float> a = {1, 0, 0}, b = {-std::cos(e), std::sin(e), 0}, out(3);
  slerp(a.data(), b.data(), 1.f, out.data(), 3);
  REQUIRE(all_finite(out));
  for (int i = 0; i < 3; ++i) CHECK(out[i] == Approx(b[i]).margin(1e-5));
}
