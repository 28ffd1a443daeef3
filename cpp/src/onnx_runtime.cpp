#include "emolive/onnx_runtime.hpp"

#include <cstdlib>
#include <mutex>
#include <vector>

#include "emolive/errors.hpp"

#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace emolive {
namespace {

using GetApiBaseFn = const OrtApiBase* (*)();

// Left to the process's end, never destroyed (as ort_env()): a daemon thread may still load a
// model while the process exits, after static destructors have run.
std::mutex& g_load_mutex = *new std::mutex;
std::string& g_loaded_path = *new std::string;

#ifdef _WIN32
const char* kPlainName = "onnxruntime.dll";
void* open_library(const std::string& path, std::string& why) {
  HMODULE handle = LoadLibraryA(path.c_str());
  if (!handle) why = "LoadLibrary failed with code " + std::to_string(GetLastError());
  return reinterpret_cast<void*>(handle);
}
void* find_symbol(void* handle, const char* name) {
  return reinterpret_cast<void*>(GetProcAddress(reinterpret_cast<HMODULE>(handle), name));
}
#else
#ifdef __APPLE__
const char* kPlainName = "libonnxruntime.dylib";
#else
const char* kPlainName = "libonnxruntime.so";
#endif
void* open_library(const std::string& path, std::string& why) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = dlerror();
    why = err ? err : "dlopen failed";
  }
  return handle;
}
void* find_symbol(void* handle, const char* name) { return dlsym(handle, name); }
#endif

// Try one candidate; on success initialise Ort's global API pointer and return true.
bool try_load(const std::string& path, std::string& report) {
  std::string why;
  void* handle = open_library(path, why);
  if (!handle) {
    if (why.rfind(path + ": ", 0) == 0) why.erase(0, path.size() + 2);  // dlerror names it too
    report += "; '" + path + "': " + why;
    return false;
  }
  auto get_api_base = reinterpret_cast<GetApiBaseFn>(find_symbol(handle, "OrtGetApiBase"));
  if (!get_api_base) {
    report += "; '" + path + "': no symbol OrtGetApiBase (not an ONNX Runtime library)";
    return false;
  }
  const OrtApi* api = get_api_base()->GetApi(ORT_API_VERSION);
  if (!api) {
    report += "; '" + path + "': does not provide ONNX Runtime API version " +
              std::to_string(ORT_API_VERSION) + " (" + get_api_base()->GetVersionString() +
              " is too old)";
    return false;
  }
  Ort::InitApi(api);
  g_loaded_path = path;
  return true;
}

}  // namespace

void ensure_onnxruntime(const std::string& fallback_path) {
  std::lock_guard<std::mutex> lock(g_load_mutex);
  if (!g_loaded_path.empty()) return;
  std::string report;
  if (const char* env = std::getenv("EMOLIVE_ONNXRUNTIME_LIB"); env && *env) {
    // An explicit choice is never silently replaced by another library.
    if (try_load(env, report)) return;
    throw ModelError("could not load the ONNX Runtime library named by EMOLIVE_ONNXRUNTIME_LIB (" +
                     report.substr(2) + "); point it at libonnxruntime (the onnxruntime Python "
                     "package has one in onnxruntime/capi/)" +
                     (fallback_path.empty() ? "" : ", or unset it to use that package's"));
  }
  std::vector<std::string> candidates;
  if (!fallback_path.empty()) candidates.push_back(fallback_path);
  candidates.emplace_back(kPlainName);
  for (const auto& path : candidates) {
    if (try_load(path, report)) return;
  }
  // One line (report's entries are "; "-separated). The Python package is named only where
  // the caller looked in it (the bindings do; a C++ program passes no fallback).
  const std::string tried = fallback_path.empty()
                                ? "the loader's search path"
                                : "the onnxruntime Python package, then the loader's search path";
  throw ModelError("could not load the ONNX Runtime library (tried " + tried + ": " +
                   report.substr(2) +
                   "); set EMOLIVE_ONNXRUNTIME_LIB to the path of libonnxruntime, or put its "
                   "folder on the loader's search path");
}

std::string onnxruntime_library_path() {
  std::lock_guard<std::mutex> lock(g_load_mutex);
  return g_loaded_path;
}

Ort::Env& ort_env() {
  // Created after ensure_onnxruntime(); lives until process exit.
  static Ort::Env* env = [] {
    // FATAL: a failed run's reason reaches the caller in its exception; at ERROR ONNX Runtime
    // also printed it, coloured, on stderr (a model asking for 4 TB: two copies, one raw).
    auto* made = new Ort::Env(ORT_LOGGING_LEVEL_FATAL, "emolive");
    // No telemetry events. (The device id ONNX Runtime writes under ~/.cache when the Env is
    // made is kept out only by ORT_DISABLE_TELEMETRY=1 before it: the emolive command sets it.)
    made->DisableTelemetryEvents();
    return made;
  }();
  return *env;
}

void end_runs(Ort::RunOptions& options) noexcept {
  try {
    options.SetTerminate();
  } catch (...) {
  }
}

}  // namespace emolive
