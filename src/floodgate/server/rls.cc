#include "floodgate/server/rls.h"

#include <grpcpp/server_builder.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <string>

#include "floodgate/http/rate_limit_headers.h"

namespace floodgate::server {
namespace {

namespace rls = envoy::service::ratelimit::v3;

rls::RateLimitResponse::RateLimit::Unit to_proto(Unit unit) {
  switch (unit) {
    case Unit::Second:
      return rls::RateLimitResponse::RateLimit::SECOND;
    case Unit::Minute:
      return rls::RateLimitResponse::RateLimit::MINUTE;
    case Unit::Hour:
      return rls::RateLimitResponse::RateLimit::HOUR;
    case Unit::Day:
      return rls::RateLimitResponse::RateLimit::DAY;
    case Unit::Week:
      return rls::RateLimitResponse::RateLimit::WEEK;
    case Unit::Month:
      return rls::RateLimitResponse::RateLimit::MONTH;
    case Unit::Year:
      return rls::RateLimitResponse::RateLimit::YEAR;
  }
  return rls::RateLimitResponse::RateLimit::UNKNOWN;
}

std::optional<Unit> from_proto(envoy::type::v3::RateLimitUnit unit) {
  switch (unit) {
    case envoy::type::v3::SECOND:
      return Unit::Second;
    case envoy::type::v3::MINUTE:
      return Unit::Minute;
    case envoy::type::v3::HOUR:
      return Unit::Hour;
    case envoy::type::v3::DAY:
      return Unit::Day;
    case envoy::type::v3::WEEK:
      return Unit::Week;
    case envoy::type::v3::MONTH:
      return Unit::Month;
    case envoy::type::v3::YEAR:
      return Unit::Year;
    default:
      return std::nullopt;
  }
}

Instant unix_now() {
  return Instant{
      std::chrono::duration_cast<Nanos>(std::chrono::system_clock::now().time_since_epoch())};
}

// Returns the instant to wait for a backend until: `start` plus the request timeout, or the
// caller's own deadline less a tenth of the time left to it (1 ms at least), if sooner.
std::chrono::steady_clock::time_point request_deadline(
    std::chrono::steady_clock::time_point start, std::chrono::system_clock::time_point callers,
    std::chrono::nanoseconds request_timeout) {
  auto deadline = start + request_timeout;
  if (callers != std::chrono::system_clock::time_point::max()) {
    const auto until = callers - std::chrono::system_clock::now();
    const auto left = until - std::max<std::chrono::system_clock::duration>(
                                  until / 10, std::chrono::milliseconds(1));
    // Compared before adding: a deadline years away must not overflow the clock.
    if (left < request_timeout) {
      deadline = start + std::chrono::duration_cast<std::chrono::nanoseconds>(left);
    }
  }
  return deadline;
}

}  // namespace

Result<Request> from_proto(const rls::RateLimitRequest& proto) {
  if (proto.domain().empty()) return Error("domain must not be empty");
  if (static_cast<std::size_t>(proto.descriptors_size()) > kMaxDescriptors) {
    return Error("at most " + std::to_string(kMaxDescriptors) + " descriptors per request (got " +
                 std::to_string(proto.descriptors_size()) + ")");
  }
  Request request;
  request.domain = proto.domain();
  request.hits_addend = proto.hits_addend();
  request.descriptors.reserve(static_cast<std::size_t>(proto.descriptors_size()));
  for (int i = 0; i < proto.descriptors_size(); ++i) {
    const auto& d = proto.descriptors(i);
    if (d.entries_size() == 0) {
      return Error("descriptors[" + std::to_string(i) + "] has no entries");
    }
    if (static_cast<std::size_t>(d.entries_size()) > kMaxEntries) {
      return Error("descriptors[" + std::to_string(i) + "] has " +
                   std::to_string(d.entries_size()) + " entries (at most " +
                   std::to_string(kMaxEntries) + ")");
    }
    RequestDescriptor out;
    for (int j = 0; j < d.entries_size(); ++j) {
      const auto& e = d.entries(j);
      if (e.key().empty()) {
        return Error("descriptors[" + std::to_string(i) + "].entries[" + std::to_string(j) +
                     "] has an empty key");
      }
      out.entries.push_back(Entry{e.key(), e.value()});
    }
    if (d.has_hits_addend()) out.hits_addend = d.hits_addend().value();
    if (d.has_limit()) {
      const std::optional<Unit> unit = from_proto(d.limit().unit());
      if (!unit) {
        return Error("descriptors[" + std::to_string(i) +
                     "].limit.unit must be SECOND, MINUTE, "
                     "HOUR, DAY, WEEK, MONTH or YEAR (got " +
                     std::to_string(static_cast<int>(d.limit().unit())) + ")");
      }
      out.limit = LimitOverride{d.limit().requests_per_unit(), *unit};
      // The same validation as a rate limit read from a file.
      if (Result<RateLimit> valid = rate_limit_of(*out.limit); !valid) {
        return Error("descriptors[" + std::to_string(i) + "].limit: " + valid.error().message());
      }
    }
    request.descriptors.push_back(std::move(out));
  }
  return request;
}

void add_header(rls::RateLimitResponse& proto, std::string key, std::string value) {
  auto* header = proto.add_response_headers_to_add();
  header->set_key(std::move(key));
  header->set_value(std::move(value));
}

namespace {

// The limit a status was decided under: its rule's, or the descriptor's own.
struct Applied {
  std::string_view name;  // For the headers: the rule's name, else its id; "limit" for its own.
  std::string_view rule_name;  // `current_limit.name`: the rule's `name`, if any.
  const RateLimit* limit = nullptr;
  RateLimit own;
};

bool applied(const DescriptorStatus& s, Applied& out) {
  if (s.own_limit) {
    out.own.unit = s.own_limit->unit;
    out.own.requests_per_unit = s.own_limit->requests_per_unit;
    out.limit = &out.own;
    out.name = "limit";
    out.rule_name = {};
    return true;
  }
  if (s.rule == nullptr) return false;
  out.limit = &*s.rule->rate_limit;
  out.rule_name = out.limit->name;
  out.name = out.limit->name.empty() ? std::string_view(s.rule->id) : out.limit->name;
  return true;
}

}  // namespace

void to_proto(const Response& response, rls::RateLimitResponse& proto, bool headers) {
  proto.set_overall_code(response.overall == Code::OverLimit ? rls::RateLimitResponse::OVER_LIMIT
                                                             : rls::RateLimitResponse::OK);
  Applied a;
  for (const DescriptorStatus& s : response.statuses) {
    rls::RateLimitResponse::DescriptorStatus* status = proto.add_statuses();
    status->set_code(s.code == Code::OverLimit ? rls::RateLimitResponse::OVER_LIMIT
                                               : rls::RateLimitResponse::OK);
    if (!applied(s, a)) continue;
    const RateLimit& limit = *a.limit;
    rls::RateLimitResponse::RateLimit* current = status->mutable_current_limit();
    current->set_name(std::string(a.rule_name));
    if (!limit.unlimited) {
      current->set_requests_per_unit(limit.requests_per_unit);
      current->set_unit(to_proto(limit.unit));
    }
    status->set_limit_remaining(s.limit_remaining);
    if (!limit.unlimited) {
      const std::int64_t ns = s.duration_until_reset.count();
      auto* reset = status->mutable_duration_until_reset();
      reset->set_seconds(ns / 1'000'000'000);
      reset->set_nanos(static_cast<std::int32_t>(ns % 1'000'000'000));
    }
  }
  if (!headers) return;
  // The descriptor closest to its limit: the smallest share of it remaining.
  const DescriptorStatus* closest = nullptr;
  Applied closest_applied;
  double least = 2.0;
  for (const DescriptorStatus& s : response.statuses) {
    // A descriptor's own limit that cannot be enforced is refused by `from_proto`; one handed to
    // the service directly has no quota to show.
    if (!applied(s, a) || !validate(*a.limit) || !a.limit->quota()) continue;
    const double share =
        static_cast<double>(s.limit_remaining) / static_cast<double>(a.limit->requests_per_unit);
    if (share < least) {
      least = share;
      closest = &s;
    }
  }
  if (closest == nullptr) return;
  applied(*closest, closest_applied);
  const RateLimit& limit = *closest_applied.limit;
  const std::string name(closest_applied.name);
  const Decision d(closest->code == Code::OverLimit ? Verdict::Denied : Verdict::Allowed,
                   limit.requests_per_unit, closest->limit_remaining, 1,
                   closest->duration_until_reset, closest->duration_until_reset);
  add_header(proto, "RateLimit-Policy", http::policy_item(name, *limit.quota()));
  add_header(proto, "RateLimit", http::limit_item(name, d));
  if (std::optional<std::string> after = http::retry_after(d)) {
    add_header(proto, "Retry-After", *after);
  }
}

Result<void> answer(Service& service, const rls::RateLimitRequest& request,
                    rls::RateLimitResponse& response,
                    std::chrono::steady_clock::time_point deadline, bool headers) {
  Result<Request> parsed = from_proto(request);
  if (!parsed) return parsed.error();
  parsed->deadline = deadline;
  to_proto(service.should_rate_limit(*parsed, unix_now()), response, headers);
  return {};
}

// One call: asked for on a queue, then answered; each step ends with a completion on that queue.
class AsyncRls::Call {
 public:
  Call(AsyncRls& rls, grpc::ServerCompletionQueue& queue)
      : rls_(rls), queue_(queue), responder_(&context_) {
    rls_.async_.RequestShouldRateLimit(&context_, &request_, &responder_, &queue_, &queue_, this);
  }

  // Takes the completion of this call's latest step: a request came (`ok`), or the queue is
  // shutting down (not `ok`), or the answer was sent.
  void proceed(bool ok) {
    if (answering_ || !ok) {
      // Pairs with the store in `respond`, which may have run on a worker: the completion came
      // through gRPC, whose ordering ThreadSanitizer cannot see (it is not built with it).
      (void)responded_.load(std::memory_order_acquire);
      delete this;
      return;
    }
    answering_ = true;
    new Call(rls_, queue_);  // Asked for at once: the next request of this queue.
    const auto start = std::chrono::steady_clock::now();
    const auto deadline =
        request_deadline(start, context_.deadline(), rls_.options_.request_timeout);
    if (rls_.workers_ != nullptr) {
      rls_.workers_->submit([this, start, deadline] { respond(start, deadline); });
    } else {
      respond(start, deadline);
    }
  }

 private:
  void respond(std::chrono::steady_clock::time_point start,
               std::chrono::steady_clock::time_point deadline) {
    // Stopping: no new wait for a backend.
    if (rls_.hurry_.load(std::memory_order_acquire)) {
      deadline = std::min(deadline, std::chrono::steady_clock::now());
    }
    const Result<void> answered =
        answer(rls_.service_, request_, response_, deadline, rls_.options_.headers);
    if (rls_.metrics_ != nullptr) {
      rls_.metrics_->observe(Endpoint::Grpc, std::chrono::steady_clock::now() - start, !answered);
    }
    responded_.store(true, std::memory_order_release);
    responder_.Finish(
        response_,
        answered ? grpc::Status::OK
                 : grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, answered.error().message()),
        this);
  }

  AsyncRls& rls_;
  grpc::ServerCompletionQueue& queue_;
  grpc::ServerContext context_;
  rls::RateLimitRequest request_;
  rls::RateLimitResponse response_;
  grpc::ServerAsyncResponseWriter<rls::RateLimitResponse> responder_;
  bool answering_ = false;
  std::atomic<bool> responded_{false};
};

AsyncRls::AsyncRls(server::Service& service, ServiceMetrics* metrics, AnswerOptions options,
                   Workers* workers, std::size_t threads)
    : service_(service),
      metrics_(metrics),
      options_(options),
      workers_(workers),
      threads_(std::max<std::size_t>(threads, 1)) {}

AsyncRls::~AsyncRls() { stop(); }

void AsyncRls::add_to(grpc::ServerBuilder& builder) {
  builder.RegisterService(&async_);
  for (std::size_t i = 0; i < threads_; ++i) queues_.push_back(builder.AddCompletionQueue());
}

void AsyncRls::start() {
  for (auto& queue : queues_) {
    // Calls asked for ahead, so that a burst of requests finds one ready.
    for (int i = 0; i < 64; ++i) new Call(*this, *queue);
    running_.emplace_back([this, q = queue.get()] { run(*q); });
  }
}

void AsyncRls::hurry() { hurry_.store(true, std::memory_order_release); }

void AsyncRls::stop() {
  for (auto& queue : queues_) queue->Shutdown();
  for (std::thread& t : running_) t.join();
  if (running_.empty()) {
    // Never started: drain the queues here (a queue is destroyed shut down and empty).
    for (auto& queue : queues_) run(*queue);
  }
  running_.clear();
  queues_.clear();
}

void AsyncRls::run(grpc::ServerCompletionQueue& queue) {
  void* tag = nullptr;
  bool ok = false;
  while (queue.Next(&tag, &ok)) static_cast<Call*>(tag)->proceed(ok);
}

}  // namespace floodgate::server
