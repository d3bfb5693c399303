// `ConfigWatcher`: keeps a `Service` on the configuration its files hold. It checks the files'
// names, sizes and modification times every `every`, or at once when asked (`reload_now`, which
// `floodgate serve` calls on SIGHUP), and installs a changed configuration without dropping
// requests. A configuration that does not load keeps the previous one in force, is said once,
// and is tried again at every check until it loads. Thread-safe; one thread of its own.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "floodgate/core/time.h"
#include "floodgate/server/config.h"
#include "floodgate/server/log.h"
#include "floodgate/server/metrics.h"
#include "floodgate/server/service.h"

namespace floodgate::server {

// Returns a signature of the files `Config::load(path)` reads: their names, sizes and
// modification times (an entry that cannot be read counts as such).
std::string files_signature(const std::string& path);

struct ConfigWatcherOptions {
  std::string path;  // What `Config::load` reads: a file, or a folder of *.yaml and *.yml.
  bool merge_domains = false;  // `Config::load`'s.
  Nanos every = std::chrono::seconds(1);
  // Receives one line per event: a reload and what it changed (info), a failed one (error), a
  // warning of the configuration read (warn).
  Log log = nullptr;
};

class ConfigWatcher {
 public:
  // Starts watching. `signature` is `files_signature` of the files when the configuration in
  // force was read.
  ConfigWatcher(Service& service, ServiceMetrics& metrics, ConfigWatcherOptions options,
                std::string signature);
  // Stops watching (see `stop`).
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  // Reads the configuration again now, changed or not; the line that says so ends with `(why)`.
  void reload_now(std::string why);

  // Stops the thread, after the load in progress if any. Idempotent.
  void stop();

 private:
  void run();
  void say(LogLevel level, const std::string& line) const;

  Service& service_;
  ServiceMetrics& metrics_;
  const ConfigWatcherOptions options_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;   // Guarded by mu_.
  std::string reload_now_;  // Why a reload was asked for; empty: none. Guarded by mu_.
  std::string signature_;   // The files when the configuration in force was read. Guarded by mu_.
  std::thread thread_;
};

}  // namespace floodgate::server
