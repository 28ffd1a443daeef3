// Offline generation called from Python, stoppable: Ctrl-C and a closed engine end it.
#pragma once

#include <cstdint>
#include <functional>

#include "emolive/cancellation.hpp"
#include "emolive/engine.hpp"

namespace emolive::bindings {

// Runs `work(cancel)` with the GIL released; its exception, if any, comes out of here. The work
// runs on a worker thread while the calling thread checks every 50 ms: a Python signal handler
// that raises (Ctrl-C: KeyboardInterrupt; only the main thread sees signals) or `engine` closed
// meanwhile (EngineError "the engine was closed while it generated") requests `cancel`, which
// ends the work at once, a decoder step in progress included (a model step that never returns
// cannot hold Ctrl-C up), and raises. Without this, Ctrl-C waited for all the decoding, and a
// generate_many on an asyncio executor's thread went on for 28 s after Ctrl-C had closed its
// engine (helper-80). A thread other than the main one runs work of at most 64 bars of
// decoding (`stream_steps`: streams x steps) itself, `cancel` null.
void run_interruptible(const Engine& engine, int64_t stream_steps,
                       const std::function<void(Cancellation* cancel)>& work);

}  // namespace emolive::bindings
