#include "floodgate/redis/internal/node.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "floodgate/core/internal/check.h"

namespace floodgate::internal {
namespace {

// Sends `command` on `pipeline` until a reply other than LOADING (a server reading its data at
// start) comes back or `deadline` passes; returns the last reply or error.
Result<Reply> call_until(Pipeline& pipeline, std::string_view command, Deadline deadline) {
  for (;;) {
    Result<Reply> reply = pipeline.call(command, deadline);
    const bool again = !reply || reply->text.starts_with("LOADING");
    const auto now = std::chrono::steady_clock::now();
    if (!again || now >= deadline) return reply;
    // A failed connect is refused until its backoff has passed: look again shortly.
    std::this_thread::sleep_until(std::min(deadline, now + std::chrono::milliseconds(1)));
  }
}

}  // namespace

Node::Node(Endpoint endpoint, const ClientOptions& options,
           std::vector<std::vector<std::string>> on_connect)
    : endpoint_(std::move(endpoint)), breaker_(options.breaker_failures, options.breaker_open_for) {
  PipelineOptions p;
  p.endpoint = endpoint_;
  p.connect_timeout = options.connect_timeout;
  p.min_backoff = options.min_backoff;
  p.max_backoff = options.max_backoff;
  p.on_connect = std::move(on_connect);
  p.tls = options.tls;
  const std::size_t n = std::max<std::size_t>(1, options.connections);
  for (std::size_t i = 0; i < n; ++i) pipelines_.push_back(std::make_unique<Pipeline>(p));
}

Pipeline& Node::next() noexcept {
  return *pipelines_[turn_.fetch_add(1, std::memory_order_relaxed) % pipelines_.size()];
}

namespace {

// Appends `item`'s commands to `text`, each preceded by ASKING when `asking`; the script's as
// EVALSHA, or as EVAL when `eval`. Returns how many replies they get.
std::size_t append_item(std::string& text, const BatchItem& item, bool asking, bool eval) {
  if (item.script == nullptr) {
    for (const std::string& command : item.commands) {
      if (asking) append_command(text, {"ASKING"});
      text += command;
    }
    return item.commands.size() * (asking ? 2 : 1);
  }
  // The thread's own, kept between calls: no allocation once it has grown.
  thread_local std::vector<std::string_view> argv;
  std::array<char, 24> numkeys{};
  const char* numkeys_end =
      std::to_chars(numkeys.data(), numkeys.data() + numkeys.size(), 1 + item.other_keys.size())
          .ptr;
  argv.assign(
      {eval ? std::string_view("EVAL") : std::string_view("EVALSHA"),
       eval ? std::string_view(item.script->text) : std::string_view(item.script->sha1),
       std::string_view(numkeys.data(), static_cast<std::size_t>(numkeys_end - numkeys.data())),
       item.key});
  argv.insert(argv.end(), item.other_keys.begin(), item.other_keys.end());
  argv.insert(argv.end(), item.args.begin(), item.args.end());
  if (asking) append_command(text, {"ASKING"});
  append_command(text, std::span<const std::string_view>(argv));
  return asking ? 2 : 1;
}

}  // namespace

void Node::run_batch(std::span<BatchItem* const> items, Deadline deadline,
                     std::chrono::nanoseconds timeout, bool asking) {
  if (items.empty()) return;
  const CircuitBreaker::Admit admit = breaker_.admit(std::chrono::steady_clock::now());
  if (admit == CircuitBreaker::Admit::Refuse) {
    for (BatchItem* item : items) item->outcome = refused();
    return;
  }
  // The thread's own buffers, kept between calls: no allocation once they have grown.
  thread_local std::string text;
  thread_local std::vector<Reply> replies;
  thread_local std::vector<std::size_t> counts;
  thread_local std::vector<BatchItem*> again;
  Pipeline& pipeline = next();
  // Sends `batch` (as EVAL when `eval`) and hands each item its last reply; returns false if
  // the call failed (each item then has the error).
  const auto send = [&](std::span<BatchItem* const> batch, bool eval) {
    text.clear();
    replies.clear();
    counts.clear();
    std::size_t total = 0;
    for (const BatchItem* item : batch) {
      counts.push_back(append_item(text, *item, asking, eval));
      FLOODGATE_DCHECK(counts.back() > 0, "run_batch: an item without a command");
      total += counts.back();
    }
    Result<Reply> last = pipeline.call(text, deadline, total, timeout, &replies);
    if (!last) {
      for (BatchItem* item : batch) item->outcome = {last.error(), false};
      return false;
    }
    std::size_t at = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      at += counts[i];
      batch[i]->outcome = {std::move(replies[at - 1]), false};
    }
    return true;
  };
  bool ok = send(items, false);
  if (ok) {
    again.clear();
    for (BatchItem* item : items) {
      if (item->script != nullptr && is_noscript(*item->outcome.reply)) again.push_back(item);
    }
    if (!again.empty()) {
      noscript_.fetch_add(again.size(), std::memory_order_relaxed);
      ok = send(again, true);
    }
  }
  // One verdict for the breaker: the batch failed if no reply came, or one concerns the server.
  bool healthy = ok;
  for (const BatchItem* item : items) {
    const Result<Reply>& r = item->outcome.reply;
    if (r && r->is_error() && !is_key_error(*r) && !is_cluster_error(*r)) healthy = false;
  }
  breaker_.record(healthy, admit, std::chrono::steady_clock::now());
}

ScriptOutcome Node::refused() const {
  return {Error("redis " + endpoint_.to_string() +
                ": not called, its circuit breaker is open after repeated failures"),
          true};
}

Result<void> Node::prepare(std::span<const Script* const> scripts, Deadline deadline) {
  const std::string where = "redis " + endpoint_.to_string() + ": ";
  std::string ping;
  append_command(ping, {"PING"});
  for (const auto& pipeline : pipelines_) {
    Result<Reply> reply = call_until(*pipeline, ping, deadline);
    if (!reply) return reply.error();
    if (reply->is_error()) return Error(where + "PING: " + reply->text);
  }
  for (const Script* script : scripts) {
    std::string load;
    append_command(load, {"SCRIPT", "LOAD", script->text});
    Result<Reply> reply = call_until(*pipelines_.front(), load, deadline);
    if (!reply) return reply.error();
    if (reply->is_error() || reply->text != script->sha1) {
      return Error(where + "SCRIPT LOAD answered " + describe(*reply) +
                   ", not the script's SHA-1 " + script->sha1);
    }
  }
  return {};
}

Result<Reply> Node::command(std::initializer_list<std::string_view> args, Deadline deadline) {
  std::string out;
  append_command(out, args);
  return next().call(out, deadline, 1);
}

void Node::add_stats(ClientStats& stats) const {
  for (const auto& p : pipelines_) {
    const PipelineStats ps = p->stats();
    stats.round_trips += ps.batches;
    stats.commands += ps.commands;
    stats.connects += ps.connects;
  }
  stats.noscript += noscript_.load(std::memory_order_relaxed);
  stats.breaker_opens += breaker_.opens();
}

Node* NodeSet::at(const Endpoint& endpoint) {
  const std::lock_guard lock(mu_);
  for (const auto& node : nodes_) {
    if (node->endpoint() == endpoint) return node.get();
  }
  nodes_.push_back(std::make_unique<Node>(endpoint, options_, on_connect_));
  return nodes_.back().get();
}

std::vector<Node*> NodeSet::all() const {
  const std::lock_guard lock(mu_);
  std::vector<Node*> out;
  for (const auto& node : nodes_) out.push_back(node.get());
  return out;
}

void NodeSet::add_stats(ClientStats& stats) const {
  const std::lock_guard lock(mu_);
  for (const auto& node : nodes_) node->add_stats(stats);
}

bool is_key_error(const Reply& reply) noexcept {
  return reply.is_error() && (reply.text.starts_with("WRONGTYPE") ||
                              reply.text.find("floodgate:") != std::string::npos ||
                              reply.text.find("not an integer") != std::string::npos);
}

bool is_cluster_error(const Reply& reply) noexcept {
  return reply.is_error() &&
         (reply.text.starts_with("MOVED ") || reply.text.starts_with("ASK ") ||
          reply.text.starts_with("TRYAGAIN") || reply.text.starts_with("CLUSTERDOWN"));
}

}  // namespace floodgate::internal
