// Loading ONNX Runtime at run time. We compile against its 1.21 headers with ORT_API_MANUAL_INIT
// and dlopen() the shared library of the installed `onnxruntime` Python package (or the one
// named by the environment variable EMOLIVE_ONNXRUNTIME_LIB), so no link-time dependency on a
// particular ONNX Runtime build exists.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <string>

namespace emolive {

// Load the library once per process and initialise the C++ API. If the environment variable
// EMOLIVE_ONNXRUNTIME_LIB is set, only that path is tried; otherwise `fallback_path` (given by
// Python: the onnxruntime package's library), then the plain name
// (libonnxruntime.so / .dylib / onnxruntime.dll on the loader's search path). Later calls
// return at once. Throws ModelError listing every path tried when none loads.
void ensure_onnxruntime(const std::string& fallback_path = "");

// The path of the library that was loaded ("" before ensure_onnxruntime succeeds).
std::string onnxruntime_library_path();

// The process-wide ONNX Runtime environment (created on first use; needs ensure_onnxruntime).
Ort::Env& ort_env();

// Any thread: the run made with `options` now (and every later one, until UnsetTerminate) ends
// with an Ort::Exception at its next node or loop iteration. Where ONNX Runtime refuses, the run
// goes on, as it would have without this.
void end_runs(Ort::RunOptions& options) noexcept;

}  // namespace emolive
