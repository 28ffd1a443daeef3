#include "port_open_lock.hpp"

#include "jack_send_guard.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

#if !defined(_WIN32)
#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace emolive {

namespace {

// FNV-1a: the same file name for a server's name in every build (std::hash may differ).
uint64_t fnv1a(const std::string& text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace

#if defined(_WIN32)

std::string port_open_lock_path() { return ""; }
PortOpenLock::PortOpenLock() {}
PortOpenLock::~PortOpenLock() {}

#else

std::string port_open_lock_path() {
  // /tmp, not $XDG_RUNTIME_DIR: every process must find the same file, and a process started
  // without that variable (sudo, a service) or with it naming a missing folder went
  // unserialised (helper-72).
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a(jack_server_name())));
  return "/tmp/emolive-" + std::to_string(getuid()) + "-ports-" + hash + ".lock";
}

// The holder unlinks the file before it unlocks, so a process that opened the file and then
// locked it may hold an unlinked one: it holds the lock only if the path still names the file
// it locked; otherwise it tries again with the path's file.
PortOpenLock::PortOpenLock() : path_(port_open_lock_path()) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while (std::chrono::steady_clock::now() < give_up) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      struct stat locked {}, named {};
      if (::fstat(fd, &locked) == 0 && ::stat(path_.c_str(), &named) == 0 && locked.st_dev == named.st_dev &&
          locked.st_ino == named.st_ino) {
        fd_ = fd;
        return;
      }
      ::close(fd);  // the holder before removed it: try the path's file
      continue;
    }
    const bool taken = errno == EWOULDBLOCK;
    ::close(fd);
    if (!taken) return;  // no locks on this file system: unserialised
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

PortOpenLock::~PortOpenLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // before the unlock: a waiter that then locks this file tries again
  ::close(fd_);             // unlocks
}

#endif

}  // namespace emolive
