// MIDI outputs. send() is called from the clock thread: implementations must not allocate,
// lock or block (RtMidi's JACK backend writes into a lock-free ring buffer).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace emolive {

class MidiOutput {
 public:
  virtual ~MidiOutput() = default;
  virtual void send(const uint8_t* bytes, size_t size) noexcept = 0;
  // True once the output reported a failure (port gone, backend error); see error_text().
  virtual bool failed() const noexcept { return false; }
  virtual std::string error_text() const { return ""; }
  virtual std::string describe() const = 0;
  // The name other programs see this output's own port by, to connect it as a MIDI input (a
  // clock to follow): "emolive:out", or "emolive-01:out" where JACK gave the client another
  // name; a virtual port's "NAME:NAME". Empty where it is not known (no port, not JACK).
  virtual std::string source_name() const { return ""; }
  // Called now and then from a non-real-time thread (never the clock thread's job): notices a
  // destination that has disappeared (program closed, device unplugged, server gone) and
  // marks the output failed; on a failed output, reconnects where it can (the same port name
  // is back) and clears the failure. Must be safe to call while another thread sends.
  virtual void check_connection() {}
  // How many times check_connection() has reconnected after a failure.
  virtual int reconnects() const noexcept { return 0; }
  // Whether check_connection() may still clear the current failure (a port of that name can
  // come back, or a stalled JACK server can run again); false for a failure that is final.
  virtual bool may_recover() const noexcept { return false; }
  // Blocks until a message sent now reaches the destination the output was opened on (a JACK
  // connection carries messages only from a process cycle after the server's next graph
  // switch; what is sent before is lost). Caller's thread only, never the clock thread.
  virtual void wait_until_connected() {}
};

// Discards every message (headless use, benchmarks).
class NullOutput final : public MidiOutput {
 public:
  void send(const uint8_t*, size_t) noexcept override {}
  std::string describe() const override { return "no output"; }
};

// One recorded message: steady-clock time of the send and up to 3 bytes.
struct RecordedMessage {
  int64_t time_ns;  // std::chrono::steady_clock, nanoseconds since its epoch
  uint8_t size;
  uint8_t bytes[3];
};

// Records every message into a buffer allocated up front, then forwards it to `inner` (if any).
// Messages beyond the capacity are forwarded but not recorded (counted in dropped()).
// Reading (count(), at()) is safe from another thread while the clock thread records.
class RecordingOutput final : public MidiOutput {
 public:
  explicit RecordingOutput(std::unique_ptr<MidiOutput> inner = nullptr, size_t capacity = 1 << 18);
  void send(const uint8_t* bytes, size_t size) noexcept override;
  bool failed() const noexcept override { return inner_ && inner_->failed(); }
  std::string error_text() const override { return inner_ ? inner_->error_text() : ""; }
  std::string describe() const override;
  std::string source_name() const override { return inner_ ? inner_->source_name() : ""; }
  void check_connection() override {
    if (inner_) inner_->check_connection();
  }
  void wait_until_connected() override {
    if (inner_) inner_->wait_until_connected();
  }
  int reconnects() const noexcept override { return inner_ ? inner_->reconnects() : 0; }
  bool may_recover() const noexcept override { return inner_ && inner_->may_recover(); }

  size_t count() const { return count_.load(std::memory_order_acquire); }
  const RecordedMessage& at(size_t i) const { return buffer_[i]; }
  size_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Forget what was recorded. Only while no thread sends.
  void clear() { count_.store(0); dropped_.store(0); }
  // Close the wrapped output (its port); the recording stays readable. Only while no thread sends.
  void close_inner() { inner_.reset(); }

 private:
  std::unique_ptr<MidiOutput> inner_;
  std::vector<RecordedMessage> buffer_;
  std::atomic<size_t> count_{0};
  std::atomic<size_t> dropped_{0};
};

// --- RtMidi (only when built with it; otherwise these throw PortError) ---

bool rtmidi_available();
// The MIDI API in use: env EMOLIVE_MIDI_API (alsa|jack|core|winmm), else the first compiled
// API that opens. Empty when none opens.
std::string midi_api_name();
// Output port names of that API (empty when no backend opens; PortError when EMOLIVE_MIDI_API
// names an API RtMidi was built without).
std::vector<std::string> list_output_ports();
// Picks the port to open from the output port names: an index into them, or -1 for none.
using PortChooser = std::function<int(const std::vector<std::string>& names)>;
// Open client `client_name`, list its output ports, and open the one `choose` picks; nullptr
// if it picks none. One client lists and opens, so the port chosen is the one opened and no
// second client is started for the listing. PortError for an index out of range or a port
// that cannot be opened.
std::unique_ptr<MidiOutput> open_port_output(const PortChooser& choose, const std::string& client_name);
// The longest virtual port name, in UTF-8 bytes: it also names the port's MIDI client, and
// JACK and ALSA hold a client name in 64 bytes with its terminating NUL.
constexpr std::size_t kMaxVirtualNameBytes = 63;
// Open a virtual output port named `name`; std::invalid_argument for a name over
// kMaxVirtualNameBytes (JACK said "server not running?"), PortError where unsupported (Windows).
std::unique_ptr<MidiOutput> open_virtual_output(const std::string& name);

// libjack's own error and information lines (printed on stderr by default: a dozen a second
// while a lost server is checked for) go nowhere from now on, process-wide. For a program that
// reports JACK's state itself, as the `emolive` command does; a no-op without JACK support.
void silence_libjack_messages();

// Free file descriptors below which a MIDI client may fail to open for want of them, where the
// JACK server's clients cannot be counted (below). libjack's first client keeps 6, each later
// one 3 (counted in /proc/self/fd with python-rtmidi).
constexpr int kDescriptorsForAClient = 16;
// Free file descriptors a JACK client needs to open, with `clients` clients on the server:
// libjack 1.9.22's first client in a process needs 7 and one per client of the server (it opens
// each one's semaphore as it registers; measured on a dummy server: 9 with its 2 clients, 15
// with 8). With exactly one too few, its shared-memory registry fails to open and
// jack_client_open dereferences a null pointer: the process dies (`ulimit -n 13` did). Other
// threads may take a descriptor meanwhile: 3 more are asked for.
constexpr int descriptors_for_a_jack_client(int clients) { return 7 + clients + 3; }
// Whether fewer descriptors are free under the soft limit on open files than a MIDI client
// needs to open (descriptors_for_a_jack_client where the JACK server's clients can be counted,
// else kDescriptorsForAClient). Every libjack client is opened only when this is false; a
// failure to open a MIDI client while it is true says nothing of its server. False where there
// is no such limit, or it is above 4,096. Not on the clock thread (it reads /dev/shm).
bool too_few_descriptors();
// What the latest too_few_descriptors() call in this process found: why the client opened just
// before failed, told the same way the check that refused it decided (a descriptor closed since
// would make a new check differ). False before any call.
bool descriptors_were_short();
// What every refusal for want of descriptors says, after its own "no ... could be opened: ".
inline constexpr const char* kTooFewDescriptors =
    "too few file descriptors are free for a MIDI client; allow more open files (ulimit -n 1024)";
// Why no JACK client may be opened under the server name JACK_DEFAULT_SERVER gives, or "" when
// it may: libjack 1.9.22 aborts the process ("stack smashing detected", no other word) in
// jack_client_open for a name of about 270 bytes (JACK's own limit is 255: JACK_SERVER_NAME_SIZE
// less its NUL). "" without JACK support.
std::string jack_server_name_refused();
// The file whose lock one emolive process at a time holds while it opens a virtual MIDI port on the
// JACK server JACK_DEFAULT_SERVER names (src/port_open_lock.hpp):
// /tmp/emolive-<uid>-ports-<hash of the server's name>.lock, there only while held; "" on Windows.
std::string port_open_lock_path();

// The same for another copy of libjack loaded in this process, the file `library` (python-rtmidi's
// wheel carries its own, which the call above does not reach). False when that file is not
// loaded, or lacks the functions; a no-op (false) without JACK support or dlopen.
bool silence_libjack_copy(const std::string& library);

// The connections of JACK ports, seen through a client of its own (opened at construction,
// kept). Why: a source that closes and opens again between two checks of its name (its
// program restarted) leaves the readers connected to it before unconnected, which its name
// alone does not show.
class JackConnections {
 public:
  JackConnections();  // without a JACK server (or JACK support) available() is false
  ~JackConnections();
  JackConnections(const JackConnections&) = delete;
  JackConnections& operator=(const JackConnections&) = delete;
  bool available() const { return client_ != nullptr; }
  // Whether the server this client was opened on has shut down (libjack's shutdown callback).
  // Its clients are then zombies: they go on listing the old server's ports, see nothing of a
  // server started since, and libjack crashes closing them once one runs (the destructor then
  // leaves this client to the process's end). Any thread.
  bool server_gone() const { return server_gone_->load(std::memory_order_acquire); }
  // Full names ("client:port") of the ports connected to `port_name`; empty when there is no
  // such port, or the server is gone. Not on the clock thread.
  std::vector<std::string> of(const std::string& port_name) const;

 private:
  static void on_shutdown(void* flag);
  void* client_ = nullptr;  // jack_client_t
  std::atomic<bool>* server_gone_ = new std::atomic<bool>(false);  // left with a left client
};

}  // namespace emolive
