// Releasing the GIL in a way that lets a daemon thread be ended by the program's exit.
#include <chrono>
#include <thread>

#ifdef __GLIBCXX__
#include <cxxabi.h>
#endif

#include "bindings.hpp"

namespace emolive::bindings {

namespace {

unsigned long main_thread_ident = 0;  // set by remember_main_thread() at import

// Whether the interpreter is shutting down (the program exits). Callable without the GIL.
bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;  // exported by 3.8-3.12 (public as Py_IsFinalizing in 3.13)
#endif
}

}  // namespace

void remember_main_thread() {
  main_thread_ident = pybind11::module_::import("threading")
                          .attr("main_thread")()
                          .attr("ident")
                          .cast<unsigned long>();
}

void wait_for_exit() {
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

bool on_main_thread() { return PyThread_get_thread_ident() == main_thread_ident; }

bool left_to_exit() {
  // The main thread finalizes the interpreter itself (destructors run then): it goes on.
  return !on_main_thread() && interpreter_finalizing();
}

ReleaseGil::ReleaseGil() : state_(PyEval_SaveThread()) {}

ReleaseGil::~ReleaseGil() {
  if (left_to_exit()) wait_for_exit();
#ifdef __GLIBCXX__
  // Finalization may begin between the check and taking the GIL: CPython then ends the thread
  // inside PyEval_RestoreThread with pthread_exit, whose forced unwinding would leave this
  // noexcept destructor. Caught here, it never finishes (the handler waits for the exit), so
  // the unwinding neither escapes nor is swallowed (which glibc would also abort on).
  try {
    PyEval_RestoreThread(state_);
  } catch (abi::__forced_unwind&) {
    wait_for_exit();
  }
#else
  PyEval_RestoreThread(state_);
#endif
}

}  // namespace emolive::bindings
