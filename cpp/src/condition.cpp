#include "emolive/condition.hpp"

#include <cmath>
#include <stdexcept>

namespace emolive {

Weights normalised(const Weights& w) {
  double sum = 0.0;  // in double: four floats near FLT_MAX overflow a float sum to infinity
  for (float x : w) {
    if (!std::isfinite(x) || x < 0.f) {
      throw std::invalid_argument("emotion weights must be finite and non-negative");
    }
    sum += x;
  }
  if (!(sum > 0.0)) throw std::invalid_argument("emotion weights must not all be zero");
  return {float(w[0] / sum), float(w[1] / sum), float(w[2] / sum), float(w[3] / sum)};
}

void EmotionGlide::set(const Weights& target, int steps) {
  if (steps < 0) throw std::invalid_argument("glide length must be >= 0 steps");
  target_ = normalised(target);
  from_ = current_;
  total_ = steps;
  done_ = 0;
  if (steps == 0) current_ = target_;
}

Weights EmotionGlide::next() {
  if (done_ < total_) {
    ++done_;
    const float t = float(done_) / float(total_);
    for (int i = 0; i < 4; ++i) current_[i] = from_[i] + (target_[i] - from_[i]) * t;
  }
  return current_;
}

}  // namespace emolive
