// The client of a master that Redis Sentinel watches (redis+sentinel://): asks the Sentinels,
// in turn, which address the master has (SENTINEL get-master-addr-by-name), sends every call
// there, and asks again when a call gets no reply, or the server says it is a replica now
// (READONLY, a master demoted by a failover), at most every 100 ms; a call whose master moved is
// sent once more to the new one while its deadline allows.
#include <atomic>
#include <charconv>
#include <chrono>
#include <mutex>

#include "floodgate/redis/internal/client.h"
#include "floodgate/redis/internal/node.h"

namespace floodgate::internal {
namespace {

using namespace std::chrono_literals;

// The Sentinels are asked again at most this often, whatever asks.
constexpr auto kResolveEvery = 100ms;

class SentinelClient final : public RedisClient {
 public:
  SentinelClient(const RedisUrl& url, const ClientOptions& options)
      : masters_(options, connect_commands(url)), master_name_(url.master) {
    // The Sentinels' connections carry no credentials: those in the URL are the master's.
    for (const Endpoint& sentinel : url.endpoints) {
      sentinels_.push_back(std::make_unique<Node>(sentinel, options, on_connect_none()));
    }
  }

  void run_batch(std::span<BatchItem* const> items, Deadline deadline,
                 std::chrono::nanoseconds timeout) override {
    Node* node = master_.load(std::memory_order_acquire);
    if (node == nullptr) node = resolve(deadline, true);
    if (node == nullptr) {
      for (BatchItem* item : items) item->outcome = {no_master(), false};
      return;
    }
    node->run_batch(items, deadline, timeout, false);
    thread_local std::vector<BatchItem*> batch;
    batch.assign(items.begin(), items.end());
    // Items a failover explains go once more to the master the Sentinels name now, if another.
    std::erase_if(batch, [](const BatchItem* item) { return !moved_maybe(item->outcome); });
    if (batch.empty()) return;
    Node* now = resolve(deadline, false);
    if (now == nullptr || now == node || std::chrono::steady_clock::now() >= deadline) return;
    now->run_batch(batch, deadline, timeout, false);
  }

  Result<void> prepare(std::span<const Script* const> scripts, Deadline deadline) override {
    Node* master = resolve(deadline, true);
    if (master == nullptr) return no_master();
    return master->prepare(scripts, deadline);
  }

  ClientStats stats() const override {
    ClientStats s;
    masters_.add_stats(s);
    s.refreshes = resolves_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  static std::vector<std::vector<std::string>> on_connect_none() { return {}; }

  // Reports whether `out` is a failure that a failover explains: no reply, or a replica's.
  static bool moved_maybe(const ScriptOutcome& out) {
    return out.refused || !out.reply ||
           (out.reply->is_error() && out.reply->text.find("READONLY") != std::string::npos);
  }

  // Asks the Sentinels, in turn, for the master's address, unless they were asked in the last
  // `kResolveEvery` (`first`: wait for an answer if none was ever had); returns the master's
  // node (null while none is known).
  Node* resolve(Deadline deadline, bool first) {
    const std::lock_guard lock(resolve_mu_);
    const auto now = std::chrono::steady_clock::now();
    Node* known = master_.load(std::memory_order_acquire);
    if (now < next_resolve_ && (known != nullptr || !first)) return known;
    next_resolve_ = now + kResolveEvery;
    resolves_.fetch_add(1, std::memory_order_relaxed);
    std::string why;
    for (std::size_t i = 0; i < sentinels_.size(); ++i) {
      Node& sentinel = *sentinels_[(turn_ + i) % sentinels_.size()];
      Result<Reply> reply =
          sentinel.command({"SENTINEL", "get-master-addr-by-name", master_name_}, deadline);
      if (!reply) {
        why = reply.error().message();
        continue;
      }
      if (reply->type != Reply::Type::Array || reply->elements.size() != 2) {
        why = "Sentinel " + sentinel.endpoint().to_string() + " answered " + describe(*reply) +
              " for master \"" + master_name_ + "\"";
        continue;
      }
      Endpoint e;
      e.host = reply->elements[0].text;
      const std::string& port = reply->elements[1].text;
      const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), e.port);
      if (ec != std::errc() || end != port.data() + port.size() || e.host.empty()) {
        why = "Sentinel " + sentinel.endpoint().to_string() + " answered the address " +
              describe(*reply);
        continue;
      }
      turn_ = (turn_ + i) % sentinels_.size();  // Ask the one that answered first next time.
      Node* master = masters_.at(e);
      master_.store(master, std::memory_order_release);
      return master;
    }
    const std::lock_guard error_lock(error_mu_);
    error_ = why;
    return known;
  }

  Error no_master() const {
    const std::lock_guard lock(error_mu_);
    return Error("redis sentinel: no Sentinel named the master \"" + master_name_ + "\"" +
                 (error_.empty() ? "" : " (" + error_ + ")"));
  }

  NodeSet masters_;  // Every master the Sentinels have named.
  const std::string master_name_;
  std::vector<std::unique_ptr<Node>> sentinels_;
  std::atomic<Node*> master_{nullptr};  // Null: not known yet.

  std::mutex resolve_mu_;
  Deadline next_resolve_{};  // Guarded by resolve_mu_.
  std::size_t turn_ = 0;     // Guarded by resolve_mu_: the Sentinel asked first.
  std::atomic<std::uint64_t> resolves_{0};
  mutable std::mutex error_mu_;
  std::string error_;  // Guarded by error_mu_: why the Sentinels last named no master.
};

}  // namespace

std::unique_ptr<RedisClient> make_sentinel_client(const RedisUrl& url,
                                                  const ClientOptions& options) {
  return std::make_unique<SentinelClient>(url, options);
}

}  // namespace floodgate::internal
