// The client of a Redis Cluster: a `Node` per master, and the slot map that routes each key to
// one. The map is read with CLUSTER SLOTS from any node that answers; a MOVED reply updates its
// slot at once and asks for a fresh map, an ASK reply sends the call once more to the importing
// node after ASKING, and TRYAGAIN and CLUSTERDOWN are retried after a pause while the call's
// deadline allows.
#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "floodgate/redis/internal/client.h"
#include "floodgate/redis/internal/cluster_slots.h"
#include "floodgate/redis/internal/node.h"

namespace floodgate::internal {
namespace {

using namespace std::chrono_literals;

// Redirections followed by one call: a slot moves at most twice in a reshard (MOVED to the new
// owner, or ASK to it while migrating), so more means the nodes disagree.
constexpr int kMaxRedirects = 5;
// The slot map is read again at most this often, whatever asks for it.
constexpr auto kRefreshEvery = 100ms;
// The first pause before retrying TRYAGAIN or CLUSTERDOWN; it doubles.
constexpr auto kFirstPause = 250us;

class ClusterClient final : public RedisClient {
 public:
  ClusterClient(const RedisUrl& url, const ClientOptions& options)
      : nodes_(options, connect_commands(url)) {
    for (const Endpoint& seed : url.endpoints) nodes_.at(seed);
  }

  void run_batch(std::span<BatchItem* const> items, Deadline deadline,
                 std::chrono::nanoseconds timeout) override;

  Result<void> prepare(std::span<const Script* const> scripts, Deadline deadline) override;

  ClientStats stats() const override {
    ClientStats s;
    nodes_.add_stats(s);
    s.redirects = redirects_.load(std::memory_order_relaxed);
    s.refreshes = refreshes_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  // Runs `call(node, asking)` on the node that owns `key`'s slot (or first on `start`, with
  // `asking`, after a redirection already followed), following redirections and retrying
  // TRYAGAIN and CLUSTERDOWN while `deadline` allows.
  template <class Call>
  ScriptOutcome route(std::string_view key, Deadline deadline, Call call, Node* start = nullptr,
                      bool asking = false);

  // Returns the master of `slot`, reading the slot map first if it has none.
  Node* owner(std::uint16_t slot, Deadline deadline) {
    if (Node* node = slots_[slot].load(std::memory_order_acquire)) return node;
    refresh(deadline, true);
    return slots_[slot].load(std::memory_order_acquire);
  }

  // Reads the slot map from the first node that answers, unless one was read in the last
  // `kRefreshEvery`. `wait`: wait (until `deadline`) for a refresh in progress elsewhere rather
  // than leave it to that one.
  void refresh(Deadline deadline, bool wait);

  Error no_owner(std::uint16_t slot) const {
    const std::lock_guard lock(error_mu_);
    return Error("redis cluster: no master known for slot " + std::to_string(slot) +
                 (refresh_error_.empty() ? "" : " (" + refresh_error_ + ")"));
  }

  NodeSet nodes_;  // One per address ever seen: the pointers in `slots_` stay valid.

  std::array<std::atomic<Node*>, kClusterSlots> slots_{};  // Null: not known.

  std::mutex refresh_mu_;
  std::condition_variable refresh_cv_;  // Signalled when a refresh ends.
  bool refreshing_ = false;             // Guarded by refresh_mu_.
  Deadline next_refresh_{};             // Guarded by refresh_mu_.
  std::size_t refresh_turn_ = 0;        // Owned by the refreshing thread: the node asked first.
  mutable std::mutex error_mu_;
  std::string refresh_error_;  // Guarded by error_mu_: why the last refresh failed.

  std::atomic<std::uint64_t> redirects_{0};
  std::atomic<std::uint64_t> refreshes_{0};
};

void ClusterClient::refresh(Deadline deadline, bool wait) {
  {
    std::unique_lock lock(refresh_mu_);
    if (refreshing_) {
      if (wait) refresh_cv_.wait_until(lock, deadline, [&] { return !refreshing_; });
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now < next_refresh_) return;
    next_refresh_ = now + kRefreshEvery;
    refreshing_ = true;
  }

  // Ask the nodes in turn, those whose breaker is open last.
  std::vector<Node*> candidates = nodes_.all();
  std::string errors;
  if (candidates.empty()) {
    errors = "no node to ask";
  } else {
    const auto first = static_cast<std::ptrdiff_t>(refresh_turn_++ % candidates.size());
    std::rotate(candidates.begin(), candidates.begin() + first, candidates.end());
    std::stable_partition(candidates.begin(), candidates.end(),
                          [](const Node* node) { return !node->breaker_open(); });
  }
  for (Node* node : candidates) {
    if (std::chrono::steady_clock::now() >= deadline) {
      errors += (errors.empty() ? "" : "; ") + std::string("out of time");
      break;
    }
    Result<Reply> reply = node->command({"CLUSTER", "SLOTS"}, deadline);
    Result<std::vector<SlotRange>> ranges =
        !reply ? Result<std::vector<SlotRange>>(reply.error())
        : reply->is_error()
            ? Result<std::vector<SlotRange>>(Error("redis " + node->endpoint().to_string() +
                                                   ": CLUSTER SLOTS: " + reply->text))
            : parse_cluster_slots(*reply, node->endpoint().host);
    if (ranges && ranges->empty()) {
      ranges = Error("redis " + node->endpoint().to_string() + ": CLUSTER SLOTS: no slots served");
    }
    if (!ranges) {
      errors += (errors.empty() ? "" : "; ") + ranges.error().message();
      continue;
    }
    std::vector<Node*> owners(kClusterSlots, nullptr);
    for (const SlotRange& range : *ranges) {
      Node* master = nodes_.at(range.master);
      for (std::uint32_t s = range.first; s <= range.last; ++s) owners[s] = master;
    }
    for (std::size_t s = 0; s < kClusterSlots; ++s) {
      slots_[s].store(owners[s], std::memory_order_release);
    }
    refreshes_.fetch_add(1, std::memory_order_relaxed);
    errors.clear();
    break;
  }
  {
    const std::lock_guard lock(error_mu_);
    refresh_error_ = std::move(errors);
  }
  {
    const std::lock_guard lock(refresh_mu_);
    refreshing_ = false;
  }
  refresh_cv_.notify_all();
}

Result<void> ClusterClient::prepare(std::span<const Script* const> scripts, Deadline deadline) {
  // The masters the map names; read it again until it names one (a refresh that failed is not
  // tried again for `kRefreshEvery`).
  std::vector<Node*> masters;
  for (;;) {
    refresh(deadline, true);
    for (const auto& slot : slots_) {
      Node* node = slot.load(std::memory_order_acquire);
      if (node != nullptr && std::find(masters.begin(), masters.end(), node) == masters.end()) {
        masters.push_back(node);
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (!masters.empty()) break;
    if (now >= deadline) {
      const std::lock_guard lock(error_mu_);
      return Error("redis cluster: no slot map" +
                   (refresh_error_.empty() ? "" : " (" + refresh_error_ + ")"));
    }
    std::this_thread::sleep_until(std::min(deadline, now + kRefreshEvery / 10));
  }
  for (Node* master : masters) {
    if (Result<void> ready = master->prepare(scripts, deadline); !ready) return ready;
  }
  return {};
}

void ClusterClient::run_batch(std::span<BatchItem* const> items, Deadline deadline,
                              std::chrono::nanoseconds timeout) {
  // The items of each master, in the order first met: one write to each.
  struct Group {
    Node* node;
    std::vector<BatchItem*> items;
  };
  std::vector<Group> groups;
  for (BatchItem* item : items) {
    const std::uint16_t slot = key_slot(item->key);
    Node* node = owner(slot, deadline);
    if (node == nullptr) {
      item->outcome = {no_owner(slot), false};
      continue;
    }
    auto group =
        std::find_if(groups.begin(), groups.end(), [&](const Group& g) { return g.node == node; });
    if (group == groups.end()) group = groups.insert(groups.end(), Group{node, {}});
    group->items.push_back(item);
  }
  bool failed = false;
  for (Group& group : groups) {
    group.node->run_batch(group.items, deadline, timeout, false);
    for (BatchItem* item : group.items) {
      const Result<Reply>& reply = item->outcome.reply;
      failed = failed || !reply;
      if (!reply || !is_cluster_error(*reply)) continue;
      // Redirected, or the cluster is busy: this item alone goes on the way `route` finds
      // (during a reshard; no call is sent twice after no reply).
      Node* to = nullptr;
      bool asking = false;
      if (std::optional<Redirect> redirect =
              parse_redirect(reply->text, group.node->endpoint().host)) {
        redirects_.fetch_add(1, std::memory_order_relaxed);
        to = nodes_.at(redirect->to);
        asking = !redirect->moved;
        if (redirect->moved) {
          slots_[redirect->slot].store(to, std::memory_order_release);
          refresh(deadline, false);  // A slot rarely moves alone.
        }
      }
      item->outcome = route(
          item->key, deadline,
          [&](Node& node, bool ask) {
            BatchItem* one = item;
            node.run_batch(std::span(&one, 1), deadline, timeout, ask);
            return item->outcome;
          },
          to, asking);
    }
  }
  // A master that fails may be being replaced: the next map can name its successor.
  if (failed) refresh(deadline, false);
}

template <class Call>
ScriptOutcome ClusterClient::route(std::string_view key, Deadline deadline, Call call, Node* start,
                                   bool asking) {
  const std::uint16_t slot = key_slot(key);
  Node* node = start != nullptr ? start : owner(slot, deadline);
  if (node == nullptr) return {no_owner(slot), false};
  std::chrono::nanoseconds pause = kFirstPause;
  // The TRYAGAIN or CLUSTERDOWN being retried: a retry that times out names it, since it is the
  // reason the call failed.
  std::string retrying;
  for (int redirects = 0;;) {
    ScriptOutcome out = call(*node, asking);
    asking = false;
    if (!out.reply) {
      // A master that fails may be being replaced: the next map can name its successor.
      refresh(deadline, false);
      if (!retrying.empty()) {
        out.reply = Error(out.reply.error().message() + ", retrying after \"" + retrying + "\"");
      }
      return out;
    }
    const Reply& reply = *out.reply;
    if (!reply.is_error()) return out;
    if (std::optional<Redirect> redirect = parse_redirect(reply.text, node->endpoint().host)) {
      redirects_.fetch_add(1, std::memory_order_relaxed);
      if (++redirects > kMaxRedirects) {
        return {
            Error("redis cluster: slot " + std::to_string(slot) + ": more than " +
                  std::to_string(kMaxRedirects) + " redirections, the last \"" + reply.text + "\""),
            false};
      }
      Node* to = nodes_.at(redirect->to);
      if (redirect->moved) {
        slots_[redirect->slot].store(to, std::memory_order_release);
        refresh(deadline, false);  // A slot rarely moves alone.
      } else {
        asking = true;
      }
      node = to;
      continue;
    }
    const bool down = reply.text.starts_with("CLUSTERDOWN");
    if (!down && !reply.text.starts_with("TRYAGAIN")) return out;
    if (std::chrono::steady_clock::now() + pause >= deadline) return out;
    retrying = reply.text;
    std::this_thread::sleep_for(pause);
    pause *= 2;
    if (down) {
      // The slot may have a new master; while the map names none, ask the same node again.
      refresh(deadline, false);
      if (Node* now = slots_[slot].load(std::memory_order_acquire)) node = now;
    }
  }
}

}  // namespace

std::unique_ptr<RedisClient> make_cluster_client(const RedisUrl& url,
                                                 const ClientOptions& options) {
  return std::make_unique<ClusterClient>(url, options);
}

}  // namespace floodgate::internal
