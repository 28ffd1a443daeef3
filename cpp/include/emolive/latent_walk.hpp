// A walk through the latent space: points drawn from the prior N(0, I), joined by slerp.
#pragma once

#include <cstdint>
#include <vector>

#include "emolive/rng.hpp"

namespace emolive {

// Spherical interpolation between a and b at t in [0, 1], written to out (all of size n).
// Direction moves along the great circle between a/|a| and b/|b|; the norm moves linearly
// from |a| to |b|. Finite for every input: equal directions fall back to the shared direction,
// opposite ones turn through a fixed orthogonal direction, a zero vector falls back to lerp,
// and so does n == 1 (a line: through zero when the signs differ).
void slerp(const float* a, const float* b, float t, float* out, int n);

class LatentWalk {
 public:
  // steps_per_point: steps between consecutive prior points (the walk's rate), >= 1.
  LatentWalk(int z_dim, uint64_t seed, int steps_per_point);

  // The latent for the current step (size z_dim), then advance one step.
  void next(float* z_out);
  // Change the rate; the walk keeps its position (fraction along the current segment).
  void set_steps_per_point(int steps_per_point);

 private:
  void draw(std::vector<float>& point);

  int z_dim_;
  Rng rng_;
  int steps_per_point_;
  double position_ = 0.0;  // fraction along [from_, to_], in [0, 1)
  std::vector<float> from_, to_;
};

}  // namespace emolive
