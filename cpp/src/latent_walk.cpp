#include "emolive/latent_walk.hpp"

#include <cmath>
#include <stdexcept>

namespace emolive {
namespace {

double norm(const float* v, int n) {
  double s = 0.0;
  for (int i = 0; i < n; ++i) s += double(v[i]) * v[i];
  return std::sqrt(s);
}

}  // namespace

void slerp(const float* a, const float* b, float t, float* out, int n) {
  const double na = norm(a, n), nb = norm(b, n);
  // No direction to follow (a zero endpoint), or a line (z of 1), whose only continuous path
  // from a to b is the straight one: plain linear interpolation.
  if (n == 1 || na < 1e-12 || nb < 1e-12) {
    for (int i = 0; i < n; ++i) out[i] = float((1.0 - t) * a[i] + t * b[i]);
    return;
  }
  double dot = 0.0;
  for (int i = 0; i < n; ++i) dot += (a[i] / na) * (b[i] / nb);
  dot = std::fmax(-1.0, std::fmin(1.0, dot));
  const double omega = std::acos(dot);
  const double length = (1.0 - t) * na + t * nb;
  const double s = std::sin(omega);
  if (s > 1e-6) {
    const double wa = std::sin((1.0 - t) * omega) / s, wb = std::sin(t * omega) / s;
    for (int i = 0; i < n; ++i) out[i] = float(length * (wa * a[i] / na + wb * b[i] / nb));
    return;
  }
  if (dot > 0.0) {  // same direction: the direction is fixed
    for (int i = 0; i < n; ++i) out[i] = float(length * ((1.0 - t) * a[i] / na + t * b[i] / nb));
    double m = norm(out, n);
    if (m > 1e-12) for (int i = 0; i < n; ++i) out[i] = float(out[i] * length / m);
    return;
  }
  // Opposite directions: turn from a through p, a unit vector orthogonal to a (Gram-Schmidt on
  // the axis where a is smallest), reaching b at t = 1 after half a turn.
  int axis = 0;
  for (int i = 1; i < n; ++i) if (std::fabs(a[i]) < std::fabs(a[axis])) axis = i;
  std::vector<double> p(n, 0.0);
  p[axis] = 1.0;
  const double proj = a[axis] / na;
  for (int i = 0; i < n; ++i) p[i] -= proj * a[i] / na;
  double np = 0.0;
  for (double x : p) np += x * x;
  np = std::sqrt(np);
  const double angle = t * 3.14159265358979323846;
  for (int i = 0; i < n; ++i) {
    out[i] = float(length * (std::cos(angle) * a[i] / na + std::sin(angle) * p[i] / np));
  }
}

LatentWalk::LatentWalk(int z_dim, uint64_t seed, int steps_per_point)
    : z_dim_(z_dim), rng_(seed), steps_per_point_(steps_per_point) {
  if (z_dim <= 0) throw std::invalid_argument("latent size must be positive");
  if (steps_per_point < 1) throw std::invalid_argument("steps per latent point must be >= 1");
  from_.resize(z_dim);
  to_.resize(z_dim);
  draw(from_);
  draw(to_);
}

void LatentWalk::draw(std::vector<float>& point) {
  for (auto& x : point) x = float(rng_.normal());
}

void LatentWalk::next(float* z_out) {
  slerp(from_.data(), to_.data(), float(position_), z_out, z_dim_);
  position_ += 1.0 / steps_per_point_;
  if (position_ >= 1.0 - 1e-9) {
    position_ = 0.0;
    from_.swap(to_);
    draw(to_);
  }
}

void LatentWalk::set_steps_per_point(int steps_per_point) {
  if (steps_per_point < 1) throw std::invalid_argument("steps per latent point must be >= 1");
  steps_per_point_ = steps_per_point;
}

}  // namespace emolive
