// Registration functions of the emolive._core module, one per area.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>

#include "emolive/midi_out.hpp"

namespace emolive::bindings {

// A MIDI output opened before the engine that will own it (Python: `_core.Output`), so that
// Python can match the port among the names the output's own client lists (open_output's
// `choose`). Engine() takes the output out of it; a taken handle cannot be used again.
struct OutputHandle {
  std::unique_ptr<MidiOutput> output;
  std::unique_ptr<MidiOutput> take();
};

// Note the main thread (the one that finalizes the interpreter), at import; needs the GIL.
void remember_main_thread();

// Whether this is the main thread (the only one that sees Python's signals). Without the GIL too.
bool on_main_thread();

// Whether the interpreter is finalizing and this thread is not the main thread: a daemon
// thread the exit will end. Callable without the GIL.
bool left_to_exit();

// Wait until the process ends. For a thread (a daemon thread) that finds the interpreter
// finalizing: CPython ends a thread that takes the GIL back then with pthread_exit, whose
// unwinding through a C++ destructor (noexcept) aborts the process ("terminate called without
// an active exception", status 134) instead of letting it exit.
[[noreturn]] void wait_for_exit();

// Releases the GIL for its scope, as pybind11::gil_scoped_release does, but at the end of the
// scope a thread other than the main thread that finds the interpreter finalizing waits for
// the exit (wait_for_exit) rather than take the GIL back.
class ReleaseGil {
 public:
  ReleaseGil();
  ~ReleaseGil();
  ReleaseGil(const ReleaseGil&) = delete;
  ReleaseGil& operator=(const ReleaseGil&) = delete;

 private:
  PyThreadState* state_;
};

void register_errors(pybind11::module_& m);
void register_model(pybind11::module_& m);
void register_engine(pybind11::module_& m);
void register_ports(pybind11::module_& m);

}  // namespace emolive::bindings
