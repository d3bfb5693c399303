#include "floodgate/server/config_watcher.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <utility>
#include <vector>

namespace floodgate::server {

std::string files_signature(const std::string& path) {
  namespace fs = std::filesystem;
  std::string signature;
  std::error_code ec;
  const auto add = [&](const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      signature += p.string() + ":?;";
      return;
    }
    signature += p.string() + ":" + std::to_string(st.st_size) + ":" +
                 std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ";";
  };
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
      const fs::path ext = e.path().extension();
      if (ext == ".yaml" || ext == ".yml") files.push_back(e.path());
    }
    if (ec) return "?";  // Cannot be listed: not the signature of any listing.
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) add(f);
  } else {
    add(path);
  }
  return signature;
}

ConfigWatcher::ConfigWatcher(Service& service, ServiceMetrics& metrics,
                             ConfigWatcherOptions options, std::string signature)
    : service_(service),
      metrics_(metrics),
      options_(std::move(options)),
      signature_(std::move(signature)),
      thread_([this] { run(); }) {}

ConfigWatcher::~ConfigWatcher() { stop(); }

void ConfigWatcher::reload_now(std::string why) {
  const std::lock_guard lock(mu_);
  reload_now_ = why.empty() ? std::string("asked") : std::move(why);
  wake_.notify_all();
}

void ConfigWatcher::stop() {
  {
    const std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ConfigWatcher::say(LogLevel level, const std::string& line) const {
  if (options_.log) options_.log(level, line);
}

void ConfigWatcher::run() {
  std::unique_lock lock(mu_);
  const double seconds = std::chrono::duration<double>(options_.every).count();
  // A load that fails does not change the signature, so the next check tries again (a file that
  // was unreadable, or half written, may be fine now with the same size and time); its error is
  // said once, until it changes.
  std::string failed;  // The error of the last attempt, if it failed.
  for (;;) {
    wake_.wait_for(lock, options_.every, [&] { return stopping_ || !reload_now_.empty(); });
    if (stopping_) return;
    const std::string why = std::exchange(reload_now_, std::string());
    const bool asked = !why.empty();
    const std::string now = files_signature(options_.path);
    if (!asked && now == signature_ && failed.empty()) continue;
    lock.unlock();
    Result<Config> next = Config::load(options_.path, options_.merge_domains);
    if (next) {
      for (const std::string& warning : next->warnings()) say(LogLevel::Warn, warning);
    }
    std::shared_ptr<const Config> loaded =
        next ? std::make_shared<const Config>(std::move(*next)) : nullptr;
    const std::shared_ptr<const Config> before = service_.config();
    const Result<void> installed =
        loaded ? service_.set_config(loaded) : Result<void>(next.error());
    lock.lock();
    if (!installed) {
      if (asked || installed.error().message() != failed) {
        metrics_.config_load_failed();
        char every[32];
        std::snprintf(every, sizeof every, "%g", seconds);
        say(LogLevel::Error,
            "the configuration was not reloaded, the previous one stays (tried again every " +
                std::string(every) + " s until it loads): " + installed.error().message());
      }
      failed = installed.error().message();
      continue;
    }
    metrics_.config_loaded(*loaded);
    signature_ = now;
    failed.clear();
    say(LogLevel::Info,
        "configuration reloaded from " + options_.path + (asked ? " (" + why + ")" : "") + ": " +
            (before ? describe_change(*before, *loaded) : describe_loaded(*loaded)));
  }
}

}  // namespace floodgate::server
