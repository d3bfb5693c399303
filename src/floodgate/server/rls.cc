#include "floodgate/server/rls.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <optional>
#include <string>

#include "floodgate/core/internal/format.h"
#include "floodgate/http/rate_limit_headers.h"
#include "floodgate/server/internal/json.h"

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

// Returns the instant `options` decides at.
Instant now_of(const AnswerOptions& options) {
  return options.clock ? options.clock() : unix_now();
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
  if (proto.descriptors_size() == 0) return Error("descriptor list must not be empty");
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

namespace {

// Dynamic metadata is written as JSON and read into its `google.protobuf.Struct` by protobuf's
// own parser: the map code then runs in libprotobuf, never instantiated here (Debian's
// libprotobuf and code built with ThreadSanitizer disagree on its maps).

void append_json(std::string& out, const MetadataValue& v) {
  switch (v.kind) {
    case MetadataValue::Kind::Null:
      out += "null";
      return;
    case MetadataValue::Kind::Bool:
      out += v.boolean ? "true" : "false";
      return;
    case MetadataValue::Kind::Number: {
      char buffer[64];
      const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v.number);
      out.append(buffer, ec == std::errc() ? end : buffer);
      return;
    }
    case MetadataValue::Kind::String:
      internal::append_json_string(out, v.string);
      return;
    case MetadataValue::Kind::List:
      out += '[';
      for (std::size_t i = 0; i < v.items.size(); ++i) {
        if (i > 0) out += ',';
        append_json(out, v.items[i]);
      }
      out += ']';
      return;
    case MetadataValue::Kind::Map:
      out += '{';
      for (std::size_t i = 0; i < v.keys.size(); ++i) {
        if (i > 0) out += ',';
        internal::append_json_string(out, v.keys[i]);
        out += ':';
        append_json(out, v.items[i]);
      }
      out += '}';
      return;
  }
}

// Merges `from` (a map) into `into` (a map): a key already there keeps its value, unless both are
// maps, which are merged in turn.
void merge(MetadataValue& into, const MetadataValue& from) {
  for (std::size_t i = 0; i < from.keys.size(); ++i) {
    const auto there = std::find(into.keys.begin(), into.keys.end(), from.keys[i]);
    if (there == into.keys.end()) {
      into.keys.push_back(from.keys[i]);
      into.items.push_back(from.items[i]);
      continue;
    }
    MetadataValue& mine = into.items[static_cast<std::size_t>(there - into.keys.begin())];
    if (mine.kind == MetadataValue::Kind::Map && from.items[i].kind == MetadataValue::Kind::Map) {
      merge(mine, from.items[i]);
    }
  }
}

const std::string& unit_name(Unit unit) {
  return rls::RateLimitResponse::RateLimit::Unit_Name(to_proto(unit));
}

void add_dynamic_metadata(const Request& request, const Response& response,
                          rls::RateLimitResponse& proto) {
  std::string json = "{\"domain\":";
  internal::append_json_string(json, request.domain);
  json += ",\"descriptors\":[";
  for (std::size_t i = 0; i < request.descriptors.size(); ++i) {
    const RequestDescriptor& d = request.descriptors[i];
    json += i > 0 ? ",{\"entries\":[" : "{\"entries\":[";
    for (std::size_t j = 0; j < d.entries.size(); ++j) {
      if (j > 0) json += ',';
      internal::append_json_string(
          json, std::string(d.entries[j].key) + "=" + std::string(d.entries[j].value));
    }
    json += ']';
    if (d.limit) {
      json += ",\"limit\":";
      internal::append_json_string(
          json, "requests_per_unit:" + std::to_string(d.limit->requests_per_unit) +
                    " unit:" + unit_name(d.limit->unit));
    }
    if (d.hits_addend) json += ",\"hitsAddend\":" + std::to_string(*d.hits_addend);
    json += '}';
  }
  json += ']';
  if (request.hits_addend != 0) json += ",\"hitsAddend\":" + std::to_string(request.hits_addend);
  MetadataValue passed;
  passed.kind = MetadataValue::Kind::Map;
  for (const DescriptorStatus& s : response.statuses) {
    if (s.code == Code::Ok && s.rule != nullptr && !s.rule->rate_limit->unlimited &&
        s.rule->metadata.kind == MetadataValue::Kind::Map) {
      merge(passed, s.rule->metadata);
    }
  }
  if (!passed.keys.empty()) {
    json += ",\"metadata\":";
    append_json(json, passed);
  }
  json += '}';
  // Every string came from valid UTF-8 (protobuf's parse of the request, libyaml's of the file);
  // were one not, the answer goes without dynamic metadata rather than fail.
  if (!google::protobuf::util::JsonStringToMessage(json, proto.mutable_dynamic_metadata()).ok()) {
    proto.clear_dynamic_metadata();
  }
}

// Returns `d` in whole seconds, rounded up.
std::int64_t whole_seconds(Nanos d) {
  const std::int64_t ns = d.count();
  return ns / 1'000'000'000 + (ns % 1'000'000'000 > 0 ? 1 : 0);
}

// envoyproxy/ratelimit's three headers, of the descriptor `ResponseHeaders::Envoy` says.
void add_envoy_headers(const Response& response, rls::RateLimitResponse& proto,
                       const AnswerOptions& options) {
  const DescriptorStatus* chosen = nullptr;
  std::uint32_t count = 0;
  std::uint64_t least = UINT64_MAX;
  Applied a;
  for (const DescriptorStatus& s : response.statuses) {
    if (!applied(s, a) || a.limit->unlimited) continue;
    // Over the limit (not in quota mode) wins, the last such one; else the least remaining.
    if ((s.code == Code::OverLimit && !s.quota_mode) || s.limit_remaining < least) {
      least = s.code == Code::OverLimit && !s.quota_mode ? 0 : s.limit_remaining;
      chosen = &s;
      count = a.limit->requests_per_unit;
    }
  }
  if (chosen == nullptr) return;
  add_header(proto, options.limit_header, std::to_string(count));
  add_header(proto, options.remaining_header, std::to_string(chosen->limit_remaining));
  add_header(proto, options.reset_header,
             std::to_string(whole_seconds(chosen->duration_until_reset)));
}

// The IETF pair, of the descriptor closest to its limit.
void add_ietf_headers(const Response& response, rls::RateLimitResponse& proto) {
  const DescriptorStatus* closest = nullptr;
  Applied a;
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

}  // namespace

Result<void> check_header_name(std::string_view name) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  const bool token =
      !name.empty() && name.size() <= 256 && std::all_of(name.begin(), name.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
               kSymbols.find(c) != std::string_view::npos;
      });
  if (!token) {
    return Error(internal::quoted(name) +
                 " is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)");
  }
  return {};
}

void to_proto(const Request& request, const Response& response, rls::RateLimitResponse& proto,
              const AnswerOptions& options) {
  proto.set_overall_code(response.overall == Code::OverLimit ? rls::RateLimitResponse::OVER_LIMIT
                                                             : rls::RateLimitResponse::OK);
  Applied a;
  for (const DescriptorStatus& s : response.statuses) {
    rls::RateLimitResponse::DescriptorStatus* status = proto.add_statuses();
    status->set_code(s.code == Code::OverLimit ? rls::RateLimitResponse::OVER_LIMIT
                                               : rls::RateLimitResponse::OK);
    if (!applied(s, a)) continue;
    const RateLimit& limit = *a.limit;
    status->set_limit_remaining(s.limit_remaining);
    // An unlimited descriptor has no current limit (envoyproxy/ratelimit leaves it unset).
    if (limit.unlimited) continue;
    rls::RateLimitResponse::RateLimit* current = status->mutable_current_limit();
    current->set_name(std::string(a.rule_name));
    current->set_requests_per_unit(limit.requests_per_unit);
    current->set_unit(to_proto(limit.unit));
    const std::int64_t ns = s.duration_until_reset.count();
    auto* reset = status->mutable_duration_until_reset();
    reset->set_seconds(ns / 1'000'000'000);
    reset->set_nanos(static_cast<std::int32_t>(ns % 1'000'000'000));
  }
  switch (options.headers) {
    case ResponseHeaders::None:
      break;
    case ResponseHeaders::Envoy:
      add_envoy_headers(response, proto, options);
      break;
    case ResponseHeaders::Ietf:
      add_ietf_headers(response, proto);
      break;
  }
  if (options.dynamic_metadata) add_dynamic_metadata(request, response, proto);
}

namespace {

// Reads `proto` into `out`, or returns the status that refuses it: UNAVAILABLE while no
// configuration is loaded, INVALID_ARGUMENT naming what is malformed.
grpc::Status parse_request(const Service& service, const rls::RateLimitRequest& proto,
                           Request& out) {
  if (!service.configured()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "no rate limit configuration loaded: " + service.configuration_error());
  }
  Result<Request> parsed = server::from_proto(proto);
  if (!parsed) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, parsed.error().message());
  out = std::move(*parsed);
  return grpc::Status::OK;
}

// Writes the answer to `request`, `decided`, into `response`, or returns the status that fails
// it (`fail_on_backend_failure`).
grpc::Status answer_decided(const Request& request, const Response& decided,
                            rls::RateLimitResponse& response, const AnswerOptions& options) {
  if (options.fail_on_backend_failure && decided.backend_failures > 0) {
    return grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        std::to_string(decided.backend_failures) + " of " +
            std::to_string(decided.statuses.size()) +
            " descriptors could not be decided: the backend (Redis) did not answer");
  }
  to_proto(request, decided, response, options);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status answer(Service& service, const rls::RateLimitRequest& request,
                    rls::RateLimitResponse& response,
                    std::chrono::steady_clock::time_point deadline, const AnswerOptions& options) {
  Request parsed;
  if (grpc::Status refused = parse_request(service, request, parsed); !refused.ok()) {
    return refused;
  }
  parsed.deadline = deadline;
  return answer_decided(parsed, service.should_rate_limit(parsed, now_of(options)), response,
                        options);
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
    start_ = std::chrono::steady_clock::now();
    deadline_ = request_deadline(start_, context_.deadline(), rls_.options_.request_timeout);
    if (rls_.workers_ != nullptr) {
      rls_.queue_for_workers(this);
    } else {
      finish(answer(rls_.service_, request_, response_, deadline(), rls_.options_));
    }
  }

  // The request's deadline for a backend; now, once the server is stopping.
  std::chrono::steady_clock::time_point deadline() const {
    return rls_.hurry_.load(std::memory_order_acquire)
               ? std::min(deadline_, std::chrono::steady_clock::now())
               : deadline_;
  }

  const rls::RateLimitRequest& request() const { return request_; }
  rls::RateLimitResponse& response() { return response_; }

  // Sends `answered` (with `response()` if OK) and counts the request.
  void finish(const grpc::Status& answered) {
    if (rls_.metrics_ != nullptr) {
      rls_.metrics_->observe(Endpoint::Grpc, std::chrono::steady_clock::now() - start_,
                             !answered.ok());
    }
    responded_.store(true, std::memory_order_release);
    responder_.Finish(response_, answered, this);
  }

 private:
  AsyncRls& rls_;
  grpc::ServerCompletionQueue& queue_;
  grpc::ServerContext context_;
  rls::RateLimitRequest request_;
  rls::RateLimitResponse response_;
  grpc::ServerAsyncResponseWriter<rls::RateLimitResponse> responder_;
  bool answering_ = false;
  std::atomic<bool> responded_{false};
  std::chrono::steady_clock::time_point start_{};
  std::chrono::steady_clock::time_point deadline_{};
};

void AsyncRls::queue_for_workers(Call* call) {
  bool schedule = false;
  {
    const std::lock_guard lock(queued_mu_);
    queued_.push_back(call);
    schedule = !drain_scheduled_;
    drain_scheduled_ = true;
  }
  if (schedule) workers_->submit([this] { decide_queued(); });
}

void AsyncRls::decide_queued() {
  std::vector<Call*> calls;
  {
    const std::lock_guard lock(queued_mu_);
    calls.swap(queued_);
    drain_scheduled_ = false;
  }
  // Those that are malformed, or that come while no configuration is loaded, are answered now;
  // the others are decided together.
  std::vector<Request> requests;
  std::vector<Call*> deciding;
  requests.reserve(calls.size());
  deciding.reserve(calls.size());
  for (Call* call : calls) {
    Request parsed;
    if (grpc::Status refused = parse_request(service_, call->request(), parsed); !refused.ok()) {
      call->finish(refused);
      continue;
    }
    parsed.deadline = call->deadline();
    requests.push_back(std::move(parsed));
    deciding.push_back(call);
  }
  if (deciding.empty()) return;
  std::vector<const Request*> pointers;
  pointers.reserve(requests.size());
  for (const Request& r : requests) pointers.push_back(&r);
  const std::vector<Response> decided = service_.should_rate_limit_all(pointers, now_of(options_));
  for (std::size_t i = 0; i < deciding.size(); ++i) {
    deciding[i]->finish(answer_decided(requests[i], decided[i], deciding[i]->response(), options_));
  }
}

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
