#include "offline_work.hpp"

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "../src/client_names.hpp"  // process_id()
#include "bindings.hpp"
#include "emolive/errors.hpp"

namespace emolive::bindings {
namespace {

// Work up to this size (stream-steps) called from a thread other than the main thread runs on
// the calling thread: nothing there could stop it sooner. 64 bars of one stream, about 0.13 s at
// the 2 ms a bar measured on the 2-core VM (docs/engine.md).
constexpr int64_t kUninterruptedStreamSteps = 64 * 16;

constexpr auto kCheckEvery = std::chrono::milliseconds(50);

using Task = std::packaged_task<void()>;

// The thread that runs the main thread's offline work, one task at a time (the main thread
// waits for each). Kept for the process's life: a one-bar generate() on a fresh thread took
// 2.67 ms against 1.21 ms on a thread that had decoded before (medians of 200, 2026-12-08), of
// which starting a thread is 22 us here: the cost is in a new thread's first decoder runs.
// Never destroyed: it waits for work when the process exits. A forked child, which has no such
// thread, makes its own.
class MainThreadWorker {
 public:
  static MainThreadWorker& instance() {
    static MainThreadWorker* worker = nullptr;
    static long worker_pid = 0;
    if (worker == nullptr || worker_pid != process_id()) {  // the parent's, in a forked child: left
      worker = new MainThreadWorker();
      worker_pid = process_id();
    }
    return *worker;
  }

  void start(std::shared_ptr<Task> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = std::move(task);
    }
    wake_.notify_one();
  }

 private:
  MainThreadWorker() { std::thread([this] { serve(); }).detach(); }

  void serve() {
    for (;;) {
      std::shared_ptr<Task> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return task_ != nullptr; });
        task = std::move(task_);
      }
      (*task)();  // its result (or exception) goes to the caller's future
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<Task> task_;  // the next task, until the worker takes it
};

}  // namespace

void run_interruptible(const Engine& engine, int64_t stream_steps,
                       const std::function<void(Cancellation*)>& work) {
  const bool main_thread = on_main_thread();
  if (!main_thread && stream_steps <= kUninterruptedStreamSteps) {
    ReleaseGil release;
    work(nullptr);
    return;
  }
  const bool open_at_start = !engine.is_closed();  // a closed engine still generates offline
  Cancellation cancel;
  auto task = std::make_shared<Task>([&] { work(&cancel); });
  std::future<void> result = task->get_future();
  std::thread own_thread;  // for a caller other than the main thread
  if (main_thread) {
    MainThreadWorker::instance().start(std::move(task));
  } else {
    own_thread = std::thread([task] { (*task)(); });
  }
  const auto finish = [&] {  // wait for the work to end (at once, once cancelled)
    result.wait();
    if (own_thread.joinable()) own_thread.join();
  };
  const auto stop_work = [&] {
    cancel.request();
    ReleaseGil release;
    finish();
  };
  for (;;) {
    bool done = false;
    bool closed = false;
    {
      ReleaseGil release;
      // Read before the wait: a result that comes during it is returned, not thrown away.
      closed = open_at_start && engine.is_closed();
      done = result.wait_for(kCheckEvery) == std::future_status::ready;
      if (!done && left_to_exit()) {  // a daemon thread at exit: stop the work, wait
        cancel.request();
        finish();
        wait_for_exit();
      }
    }
    if (done) break;
    if (closed) {
      stop_work();
      throw EngineError("the engine was closed while it generated");
    }
    if (PyErr_CheckSignals() != 0) {  // a handler raised: stop the work, raise that
      stop_work();
      throw pybind11::error_already_set();
    }
  }
  if (own_thread.joinable()) own_thread.join();
  result.get();  // the work's exception, if it threw
}

}  // namespace emolive::bindings
