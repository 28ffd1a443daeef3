#include "jack_cycles.hpp"

#ifdef EMOLIVE_HAVE_JACK
#include <jack/jack.h>
#endif

namespace emolive {

#ifdef EMOLIVE_HAVE_JACK

std::unique_ptr<JackCycles> JackCycles::open(const std::string& client_name) {
  jack_status_t status;
  jack_client_t* client = jack_client_open(client_name.c_str(), JackNoStartServer, &status);
  if (!client) return nullptr;
  std::unique_ptr<JackCycles> cycles(new JackCycles());
  cycles->client_ = client;
  if (jack_set_process_callback(client, &JackCycles::on_process, cycles.get()) != 0 ||
      jack_activate(client) != 0) {
    return nullptr;  // the destructor closes the client
  }
  return cycles;
}

JackCycles::~JackCycles() {
  if (client_ && !leak_) jack_client_close(static_cast<jack_client_t*>(client_));
}

// JACK's real-time thread: one atomic increment.
int JackCycles::on_process(uint32_t, void* self) {
  static_cast<JackCycles*>(self)->cycles_.fetch_add(1, std::memory_order_release);
  return 0;
}

#else  // built without JACK: nothing to count; senders go unwatched

std::unique_ptr<JackCycles> JackCycles::open(const std::string&) { return nullptr; }
JackCycles::~JackCycles() = default;
int JackCycles::on_process(uint32_t, void*) { return 0; }

#endif

}  // namespace emolive
