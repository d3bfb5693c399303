// The client of one standalone Redis server: one `Node`.
#include "floodgate/redis/internal/client.h"
#include "floodgate/redis/internal/node.h"

namespace floodgate::internal {
namespace {

class StandaloneClient final : public RedisClient {
 public:
  StandaloneClient(const RedisUrl& url, const ClientOptions& options)
      : node_(url.endpoints.front(), options, connect_commands(url)) {}

  void run_batch(std::span<BatchItem* const> items, Deadline deadline,
                 std::chrono::nanoseconds timeout) override {
    node_.run_batch(items, deadline, timeout, false);
  }

  Result<void> prepare(std::span<const Script* const> scripts, Deadline deadline) override {
    return node_.prepare(scripts, deadline);
  }

  ClientStats stats() const override {
    ClientStats s;
    node_.add_stats(s);
    return s;
  }

 private:
  Node node_;
};

}  // namespace

std::vector<std::vector<std::string>> connect_commands(const RedisUrl& url) {
  std::vector<std::vector<std::string>> commands;
  if (!url.password.empty()) {
    if (url.username.empty()) {
      commands.push_back({"AUTH", url.password});
    } else {
      commands.push_back({"AUTH", url.username, url.password});
    }
  }
  if (url.db != 0) commands.push_back({"SELECT", std::to_string(url.db)});
  return commands;
}

std::unique_ptr<RedisClient> make_standalone_client(const RedisUrl& url,
                                                    const ClientOptions& options) {
  return std::make_unique<StandaloneClient>(url, options);
}

}  // namespace floodgate::internal
