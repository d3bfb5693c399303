// The client of one standalone Redis server: a pool of pipelined connections, each call on the
// next connection in turn.
#include <algorithm>
#include <array>
#include <atomic>

#include "floodgate/core/internal/check.h"
#include "floodgate/redis/internal/client.h"
#include "floodgate/redis/internal/pipeline.h"

namespace floodgate::internal {
namespace {

class StandaloneClient final : public RedisClient {
 public:
  StandaloneClient(const RedisUrl& url, const ClientOptions& options) {
    PipelineOptions p;
    p.endpoint = url.endpoints.front();
    p.connect_timeout = options.connect_timeout;
    p.min_backoff = options.min_backoff;
    p.max_backoff = options.max_backoff;
    if (!url.password.empty()) {
      if (url.username.empty()) {
        p.on_connect.push_back({"AUTH", url.password});
      } else {
        p.on_connect.push_back({"AUTH", url.username, url.password});
      }
    }
    if (url.db != 0) p.on_connect.push_back({"SELECT", std::to_string(url.db)});
    const std::size_t n = std::max<std::size_t>(1, options.connections);
    for (std::size_t i = 0; i < n; ++i) pipelines_.push_back(std::make_unique<Pipeline>(p));
  }

  Result<Reply> run_script(const Script& script, std::string_view key,
                           std::span<const std::string_view> args, Deadline deadline) override {
    Pipeline& pipeline = next();
    std::string command;
    command.reserve(160);
    constexpr std::size_t kMaxArgs = 12;
    FLOODGATE_DCHECK(args.size() <= kMaxArgs, "run_script: too many script arguments");
    std::array<std::string_view, 4 + kMaxArgs> argv{"EVALSHA", script.sha1, "1", key};
    const std::size_t n = 4 + std::min(args.size(), kMaxArgs);
    std::copy_n(args.begin(), n - 4, argv.begin() + 4);
    append_command(command, std::span<const std::string_view>(argv.data(), n));
    Result<Reply> reply = pipeline.call(command, deadline);
    if (!reply || !is_noscript(*reply)) return reply;
    noscript_.fetch_add(1, std::memory_order_relaxed);
    argv[0] = "EVAL";
    argv[1] = script.text;
    command.clear();
    append_command(command, std::span<const std::string_view>(argv.data(), n));
    return pipeline.call(command, deadline);
  }

  ClientStats stats() const override {
    ClientStats s;
    for (const auto& p : pipelines_) {
      const PipelineStats ps = p->stats();
      s.round_trips += ps.batches;
      s.commands += ps.commands;
      s.connects += ps.connects;
    }
    s.noscript = noscript_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  Pipeline& next() {
    return *pipelines_[turn_.fetch_add(1, std::memory_order_relaxed) % pipelines_.size()];
  }

  std::vector<std::unique_ptr<Pipeline>> pipelines_;
  std::atomic<std::size_t> turn_{0};
  std::atomic<std::uint64_t> noscript_{0};
};

}  // namespace

std::unique_ptr<RedisClient> make_standalone_client(const RedisUrl& url,
                                                    const ClientOptions& options) {
  return std::make_unique<StandaloneClient>(url, options);
}

}  // namespace floodgate::internal
