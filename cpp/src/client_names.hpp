// Names of the MIDI clients emolive opens for its own use: to probe and list (short-lived), and
// to watch an input's connections (`emolive-watch`, as long as the input is open). Never a
// port's own client, whose name the user sees and connects to.
#pragma once

#include <string>

#if defined(_WIN32)
#include <process.h>
#else
#include <unistd.h>
#endif

namespace emolive {

inline long process_id() {
#if defined(_WIN32)
  return long(_getpid());
#else
  return long(getpid());
#endif
}

// `base` and this process's id ("emolive-check-4242"). JACK2 names a client's socket in
// /dev/shm from the client's name and the user's id only, not the server's, so two processes
// each probing its own server under one fixed name took each other's socket: the probe failed
// and a running server was reported as absent (helper-51, 2026-12-07).
inline std::string probe_client_name(const char* base) {
  return std::string(base) + "-" + std::to_string(process_id());
}

// Whether `name` is JACK's name for a port `port` of a client asked to be called `client`:
// "client:port", or "client-NN:port" where JACK gave it another name (one was taken).
inline bool named_as_client_port(const std::string& name, const std::string& client, const std::string& port) {
  const std::string tail = ":" + port;
  if (name == client + tail) return true;
  if (name.size() <= client.size() + tail.size() + 1 || name.rfind(client + "-", 0) != 0) return false;
  if (name.compare(name.size() - tail.size(), std::string::npos, tail) != 0) return false;
  const std::string number = name.substr(client.size() + 1, name.size() - tail.size() - client.size() - 1);
  return number.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace emolive
