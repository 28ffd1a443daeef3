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

// While alive, nothing; when it ends, the calling thread's signal mask is what it was when it
// began. Put around opening a long-lived libjack client: libjack 1.9.22 blocks SIGPIPE on the
// thread that opens its first client (and puts the mask it saved back only when its last
// client closes), so a host's thread kept SIGPIPE blocked after `Engine()`, and every program
// it started later inherited that (`yes | head -1` ended with "Broken pipe" and status 1, not
// 141; helper-63). libjack's own threads, started meanwhile, keep SIGPIPE blocked. So does
// this thread where SIGPIPE would kill the process (its default action: a C++ host that does
// not ignore it): libjack's socket writes to a server that died raise it, and the block is
// libjack's guard. Python ignores SIGPIPE, so there the mask is given back whole.
class SignalMaskKept {
 public:
  SignalMaskKept() noexcept {
#if !defined(_WIN32)
    pthread_sigmask(SIG_SETMASK, nullptr, &before_);
#endif
  }
  ~SignalMaskKept() {
#if !defined(_WIN32)
    sigset_t now;
    struct sigaction pipe_action {};
    if (pthread_sigmask(SIG_SETMASK, nullptr, &now) == 0 && sigismember(&now, SIGPIPE) == 1 &&
        sigaction(SIGPIPE, nullptr, &pipe_action) == 0 && pipe_action.sa_handler == SIG_DFL) {
      sigaddset(&before_, SIGPIPE);  // would kill the process: libjack's block stays
    }
    pthread_sigmask(SIG_SETMASK, &before_, nullptr);
#endif
  }
  SignalMaskKept(const SignalMaskKept&) = delete;
  SignalMaskKept& operator=(const SignalMaskKept&) = delete;

 private:
#if !defined(_WIN32)
  sigset_t before_{};
#endif
};

}  // namespace emolive
