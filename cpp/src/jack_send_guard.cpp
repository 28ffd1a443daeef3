#include "jack_send_guard.hpp"

#include "client_names.hpp"
#include "stop_signal_hold.hpp"
#include "emolive/midi_out.hpp"

#include <cstdlib>

#ifdef EMOLIVE_HAVE_JACK
#include <jack/jack.h>

#if !defined(_WIN32)
#include <dirent.h>
#include <dlfcn.h>
#include <unistd.h>
#endif
#endif

namespace emolive {

std::string jack_server_name() {
  const char* name = std::getenv("JACK_DEFAULT_SERVER");
  return name ? name : "default";
}

#ifdef EMOLIVE_HAVE_JACK

namespace {
void ignore_message(const char*) {}
}  // namespace

std::string jack_server_name_refused() {
  constexpr std::size_t kLongestServerName = 255;  // JACK_SERVER_NAME_SIZE less its NUL
  const std::size_t length = jack_server_name().size();
  if (length <= kLongestServerName) return "";
  return "JACK_DEFAULT_SERVER is " + std::to_string(length) + " bytes long; a JACK server's name is at most " +
         std::to_string(kLongestServerName) + " (libjack aborts on a longer one)";
}

// Whether a libjack client may be tried now: the server's name is one libjack survives, and
// enough descriptors are free (too_few_descriptors).
bool jack_client_may_open() { return jack_server_name_refused().empty() && !too_few_descriptors(); }

bool jack_server_running() {
  if (!jack_client_may_open()) return false;  // libjack may crash trying; the caller tells why
  const SignalMaskKept mask;  // libjack blocks SIGPIPE on this thread
  jack_status_t status;
  jack_client_t* client =
      jack_client_open(probe_client_name("emolive-check").c_str(), JackNoStartServer, &status);
  if (!client) return false;
  jack_client_close(client);  // a running server: closing is safe
  return true;
}

int jack_server_clients() {
#if defined(_WIN32)
  return 0;
#else
  const std::string prefix = "jack_sem." + std::to_string(getuid()) + "_" + jack_server_name() + "_";
  DIR* folder = opendir("/dev/shm");
  if (!folder) return 0;
  int clients = 0;
  while (const dirent* entry = readdir(folder)) {
    if (std::string(entry->d_name).rfind(prefix, 0) == 0) ++clients;
  }
  closedir(folder);
  return clients;
#endif
}

void silence_libjack_messages() {
  jack_set_error_function(&ignore_message);
  jack_set_info_function(&ignore_message);
}

bool silence_libjack_copy(const std::string& library) {
#if defined(_WIN32)
  (void)library;
  return false;
#else
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_NOLOAD);  // only one already loaded
  if (!handle) return false;
  using SetFunction = void (*)(void (*)(const char*));
  auto set_error = reinterpret_cast<SetFunction>(dlsym(handle, "jack_set_error_function"));
  auto set_info = reinterpret_cast<SetFunction>(dlsym(handle, "jack_set_info_function"));
  if (set_error) set_error(&ignore_message);
  if (set_info) set_info(&ignore_message);
  dlclose(handle);  // the reference RTLD_NOLOAD took; its owner keeps the library loaded
  return set_error && set_info;
#endif
}

JackConnections::JackConnections() {
  if (!jack_client_may_open()) return;  // unavailable, as without a server
  // Opened without StopSignalHold, although often on the main thread: a long-lived client opened
  // under the hold left the stop signals blocked on that thread (docs/reliability.md, "Signals").
  const SignalMaskKept mask;  // libjack blocks SIGPIPE on this thread
  jack_status_t status;
  auto* client = jack_client_open(probe_client_name("emolive-watch").c_str(), JackNoStartServer, &status);
  // The flag the callback sets outlives this object when its client is left (below).
  if (client) jack_on_shutdown(client, &JackConnections::on_shutdown, server_gone_);  // unactivated too
  client_ = client;
}

void JackConnections::on_shutdown(void* flag) {
  static_cast<std::atomic<bool>*>(flag)->store(true, std::memory_order_release);
}

JackConnections::~JackConnections() {
  if (!client_) {
    delete server_gone_;
    return;
  }
  // libjack crashes closing a client of a server that has gone, also in a later call into
  // another client once a new server runs (jack_port_unregister, as the engine closed its
  // reconnected port: a segmentation fault, helper-55): such a client is left, and so is its
  // flag, which libjack's shutdown callback may still set.
  if (!server_gone() && (too_few_descriptors() || jack_server_running())) {  // not a zombie
    const StopSignalHold hold;
    jack_client_close(static_cast<jack_client_t*>(client_));
    delete server_gone_;
  }
}

std::vector<std::string> JackConnections::of(const std::string& port_name) const {
  std::vector<std::string> names;
  if (!client_ || server_gone()) return names;
  auto* client = static_cast<jack_client_t*>(client_);
  jack_port_t* port = jack_port_by_name(client, port_name.c_str());
  if (!port) return names;
  const char** connected = jack_port_get_all_connections(client, port);
  if (!connected) return names;
  for (const char** name = connected; *name; ++name) names.emplace_back(*name);
  jack_free(connected);
  return names;
}

std::unique_ptr<JackCycles> JackCycles::open(const std::string& client_name) {
  if (!jack_client_may_open()) return nullptr;
  const SignalMaskKept mask;  // libjack blocks SIGPIPE on this thread
  jack_status_t status;
  jack_client_t* client = jack_client_open(client_name.c_str(), JackNoStartServer, &status);
  if (!client) return nullptr;
  std::unique_ptr<JackCycles> cycles(new JackCycles());
  cycles->client_ = client;
  jack_on_shutdown(client, &JackCycles::on_shutdown, cycles.get());
  if (jack_set_process_callback(client, &JackCycles::on_process, cycles.get()) != 0 ||
      jack_activate(client) != 0) {
    return nullptr;  // the destructor closes the client
  }
  return cycles;
}

JackCycles::~JackCycles() {
  if (client_ && !leak_) jack_client_close(static_cast<jack_client_t*>(client_));
}

std::string JackCycles::source_connected_to(const std::string& client_name, const std::string& port_name,
                                            const std::string& destination) const {
  auto* client = static_cast<jack_client_t*>(client_);
  const char** ports = jack_get_ports(client, nullptr, JACK_DEFAULT_MIDI_TYPE, JackPortIsOutput);
  if (!ports) return "";
  std::string found;
  int matches = 0;
  for (const char** name = ports; *name; ++name) {
    if (!named_as_client_port(*name, client_name, port_name)) continue;
    jack_port_t* port = jack_port_by_name(client, *name);
    if (!port || !jack_port_connected_to(port, destination.c_str())) continue;
    found = *name;
    ++matches;
  }
  jack_free(ports);
  return matches == 1 ? found : "";
}

void JackCycles::on_shutdown(void* self) {
  static_cast<JackCycles*>(self)->server_gone_.store(true, std::memory_order_release);
}

// JACK's real-time thread: one atomic increment.
int JackCycles::on_process(uint32_t, void* self) {
  static_cast<JackCycles*>(self)->cycles_.fetch_add(1, std::memory_order_release);
  return 0;
}

#else  // built without JACK: nothing to count; sends go unwatched

int jack_server_clients() { return 0; }
std::string jack_server_name_refused() { return ""; }
void silence_libjack_messages() {}
bool silence_libjack_copy(const std::string&) { return false; }

JackConnections::JackConnections() = default;
JackConnections::~JackConnections() { delete server_gone_; }
std::vector<std::string> JackConnections::of(const std::string&) const { return {}; }

std::unique_ptr<JackCycles> JackCycles::open(const std::string&) { return nullptr; }
JackCycles::~JackCycles() = default;
int JackCycles::on_process(uint32_t, void*) { return 0; }
std::string JackCycles::source_connected_to(const std::string&, const std::string&, const std::string&) const {
  return "";
}

#endif

bool JackSendGuard::admit(size_t size) noexcept {
  const JackCycles* counter = counter_.load(std::memory_order_acquire);
  if (!counter) return true;
  const uint64_t now = counter->count();
  if (now != seen_cycle_) {  // that cycle emptied what was queued before it
    seen_cycle_ = now;
    queued_bytes_ = 0;
  }
  const size_t cost = sizeof(int) + size;  // RtMidi 5.0 queues an int length first
  if (queued_bytes_ + cost > kBudgetBytes) {
    stall_cycle_.store(seen_cycle_);
    stalled_.store(true, std::memory_order_release);
    return false;
  }
  queued_bytes_ += cost;
  return true;
}

void JackSendGuard::open_once() {
  if (tried_) return;
  tried_ = true;
  owner_ = JackCycles::open(counter_name_);
  counter_.store(owner_.get(), std::memory_order_release);
}

bool JackSendGuard::cycles_ran_again() {
  const bool counted = owner_ && owner_->count() != stall_cycle_.load();
  if (!counted) {
    if (owner_ && ++stalled_checks_ < kChecksBeforeNewCounter) return false;
    // No counter, or one that has not counted for ~2 s on a live server: a new one, whose
    // count starts again from 0 (a stall under it shows at its own budget).
    counter_.store(nullptr, std::memory_order_release);
    if (owner_ && owner_->server_gone()) {  // its server shut down: libjack crashes closing it
      owner_->leak_client();
      (void)owner_.release();
    }
    owner_.reset();  // the server is alive: its client closes normally
    tried_ = false;
    open_once();
    if (!owner_) return false;
  }
  stalled_checks_ = 0;
  stalled_.store(false, std::memory_order_release);
  return true;
}

void JackSendGuard::forget_server() {
  counter_.store(nullptr, std::memory_order_release);
  if (owner_) {
    owner_->leak_client();
    (void)owner_.release();  // its client may still hold a pointer to it
  }
  tried_ = false;
  stalled_checks_ = 0;
  stalled_.store(false, std::memory_order_release);
}

}  // namespace emolive
