// Holds the stop signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU: those
// `emolive` stops on, STOP_SIGNALS in python/emolive/cli_options.py) pending on the calling
// thread while libjack talks to the server, so that they do not interrupt it.
#pragma once

#if !defined(_WIN32)
#include <csignal>
#include <pthread.h>
#endif

namespace emolive {

// While alive, the stop signals aimed at this thread wait (pending) instead of
// interrupting its system calls; threads started meanwhile (libjack's) inherit the mask. When
// it ends, a signal that came meanwhile is delivered (to Python's handler, which stops the run).
// Why: libjack's client-server exchange is a socket read that does not resume after EINTR, and
// a Ctrl-C while `emolive --virtual` closed its port-listing client made the command take
// 4.4 s to stop (2 of 40 runs with SIGINT 0.39 s after the start, docs/reliability.md).
class StopSignalHold {
 public:
  StopSignalHold() noexcept {
#if !defined(_WIN32)
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    sigaddset(&stop, SIGQUIT);
    sigaddset(&stop, SIGUSR1);
    sigaddset(&stop, SIGUSR2);
    sigaddset(&stop, SIGALRM);
    sigaddset(&stop, SIGXCPU);
    pthread_sigmask(SIG_BLOCK, &stop, &before_);
#endif
  }
  ~StopSignalHold() {
#if !defined(_WIN32)
    pthread_sigmask(SIG_SETMASK, &before_, nullptr);
#endif
  }
  StopSignalHold(const StopSignalHold&) = delete;
  StopSignalHold& operator=(const StopSignalHold&) = delete;

 private:
#if !defined(_WIN32)
  sigset_t before_{};
#endif
};

}  // namespace emolive
