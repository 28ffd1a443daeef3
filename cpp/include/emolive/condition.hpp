// The emotion condition: quadrant weights (Q1..Q4) gliding linearly, one step at a time.
#pragma once

#include <array>

namespace emolive {

using Weights = std::array<float, 4>;

class EmotionGlide {
 public:
  explicit EmotionGlide(const Weights& start = {0.f, 0.f, 0.f, 1.f})
      : current_(start), target_(start) {}

  // Glide from the current weights to `target` over `steps` steps (0 = jump now).
  // Weights must be finite, non-negative with a positive sum (normalised here); else
  // std::invalid_argument.
  void set(const Weights& target, int steps);
  // Advance one step and return the weights for it: after set(t, n), the n-th call returns t.
  Weights next();
  const Weights& current() const { return current_; }

 private:
  Weights current_, from_{}, target_;
  int total_ = 0, done_ = 0;
};

Weights normalised(const Weights& w);

}  // namespace emolive
