// A small seedable random source whose outputs are the same on every platform and standard
// library (std::normal_distribution is implementation-defined, so we do not use it).
#pragma once

#include <cmath>
#include <cstdint>

namespace emolive {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : state_(seed) {}

  // splitmix64: full 64-bit period, passes BigCrush; fine for sampling notes.
  uint64_t next_u64() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  // Standard normal (Box-Muller; the second value is discarded to keep the stream simple).
  double normal() {
    double u1 = uniform();
    double u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

}  // namespace emolive
