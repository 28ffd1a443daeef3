// StopSignalHold (a private header of the core): a stop signal raised on the thread while held
// waits, and is delivered once the hold ends; the thread's mask is as before.
#if !defined(_WIN32)
#include <catch2/catch.hpp>

#include <csignal>
#include <pthread.h>

#include "../src/stop_signal_hold.hpp"

namespace {
volatile std::sig_atomic_t g_received = 0;
void note_signal(int number) { g_received = number; }
}  // namespace

TEST_CASE("a stop signal waits while held and arrives when the hold ends") {
  for (int number : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU}) {
    struct sigaction action {}, before{};
    action.sa_handler = note_signal;
    sigemptyset(&action.sa_mask);
    REQUIRE(sigaction(number, &action, &before) == 0);
    g_received = 0;
    {
      const emolive::StopSignalHold hold;
      REQUIRE(pthread_kill(pthread_self(), number) == 0);
      CHECK(g_received == 0);
      sigset_t pending;
      sigpending(&pending);
      CHECK(sigismember(&pending, number) == 1);
    }
    CHECK(g_received == number);  // delivered as the mask is restored
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, nullptr, &now);
    CHECK(sigismember(&now, number) == 0);
    sigaction(number, &before, nullptr);
  }
}
#endif
