// floodgate-rls-load: a load generator for Envoy's Rate Limit Service (floodgate serve, or any
// other), on the gRPC client library's callback API. Each row keeps N calls in flight on one
// channel for a while and reports requests per second and latency percentiles. Closed loop by
// default (each of the N sends its next request when the last is answered: the maximum); with
// --rate, open loop at that many requests per second, each latency measured from when the
// request was due, so a stalled server is not hidden.
#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "build_info.h"
#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "flags.h"

namespace {

namespace rls = envoy::service::ratelimit::v3;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kHelp = R"(usage: floodgate-rls-load --grpc ADDR [flags]

Sends ShouldRateLimit requests to ADDR and prints, per row of concurrent streams, requests per
second and p50/p99/p99.9 latency. Each request has --descriptors descriptors, the i-th with one
entry (key "k<i>", a value drawn from --values values), in domain --domain.

Flags:
  --grpc ADDR         the service, host:port (required)
  --streams LIST      concurrent streams per row (default 1,16,128)
  --seconds S         per row (default 2)
  --descriptors N     descriptors per request (default 1)
  --values N          distinct values per key (default 10000)
  --domain NAME       (default bench)
  --rate R            open loop: R requests per second, sent on schedule whatever is in
                      flight (--streams then only labels the row); latency counts from when
                      each request was due (default: closed loop)
)";

struct Row {
  int streams = 0;
  double per_second = 0;
  double p50_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  std::uint64_t failed = 0;
  std::uint64_t over_limit = 0;
};

// One call in flight: gRPC needs its context, request and response until the callback.
struct Call {
  grpc::ClientContext context;
  rls::RateLimitRequest request;
  rls::RateLimitResponse response;
  Clock::time_point due;
};

// Runs one row on gRPC's callback API: `streams` calls kept in flight (closed loop), or calls
// issued on schedule at `rate` (open loop) by one sender thread; no thread per stream, so the
// generator takes as little of the machine as it can.
Row run(rls::RateLimitService::Stub& stub, int streams, double seconds, int descriptors,
        std::uint64_t values, const std::string& domain, double rate) {
  std::mutex mu;
  std::condition_variable done_cv;
  std::vector<std::int64_t> latencies;
  latencies.reserve(1 << 20);
  std::uint64_t failed = 0;
  std::uint64_t over = 0;
  int in_flight = 0;
  std::mt19937_64 rng(1);
  const auto start = Clock::now() + std::chrono::milliseconds(20);
  const auto stop =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));

  // Sends one call due at `due`, whose place in `in_flight` the caller has taken (under `mu`):
  // a closed loop's next call takes its place before the previous one gives its own back, so
  // `in_flight` reaches 0 only when the last call is answered.
  std::function<void(Clock::time_point)> issue;
  issue = [&](Clock::time_point due) {
    auto call = std::make_shared<Call>();
    call->due = due;
    call->request.set_domain(domain);
    {
      const std::lock_guard lock(mu);
      for (int d = 0; d < descriptors; ++d) {
        auto* e = call->request.add_descriptors()->add_entries();
        e->set_key("k" + std::to_string(d));
        e->set_value(std::to_string(rng() % values));
      }
    }
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    stub.async()->ShouldRateLimit(
        &call->context, &call->request, &call->response, [&, call](grpc::Status status) {
          const auto now = Clock::now();
          bool again = false;
          {
            const std::lock_guard lock(mu);
            latencies.push_back((now - call->due).count());
            if (!status.ok()) ++failed;
            if (call->response.overall_code() == rls::RateLimitResponse::OVER_LIMIT) ++over;
            again = rate <= 0 && now < stop;
            if (!again) {
              --in_flight;
              // Under the lock: the waiter, once woken, may return and destroy `done_cv`.
              done_cv.notify_all();
            }
          }
          if (again) issue(Clock::now());  // This call's place in `in_flight` passes to it.
        });
  };
  const auto take_place = [&] {
    const std::lock_guard lock(mu);
    ++in_flight;
  };

  std::this_thread::sleep_until(start);
  if (rate > 0) {
    // Two senders, each on its own schedule, interleaved; a sender behind schedule sends at once
    // (its requests' latencies still count from when they were due) and sleeps only when ahead.
    constexpr int kSenders = 2;
    const auto gap =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(kSenders / rate));
    std::vector<std::thread> senders;
    for (int k = 0; k < kSenders; ++k) {
      senders.emplace_back([&, k] {
        for (auto due = start + gap * k / kSenders; due < stop; due += gap) {
          if (due > Clock::now() + std::chrono::microseconds(200))
            std::this_thread::sleep_until(due);
          take_place();
          issue(due);
        }
      });
    }
    for (auto& t : senders) t.join();
  } else {
    for (int i = 0; i < streams; ++i) {
      take_place();
      issue(Clock::now());
    }
  }
  {
    // Every call has a 5 s deadline: all are answered by then. Returning earlier would leave
    // callbacks running on this frame's variables: past the wait, the program stops instead.
    std::unique_lock lock(mu);
    if (!done_cv.wait_until(lock, Clock::now() + std::chrono::seconds(30),
                            [&] { return in_flight == 0; })) {
      std::fprintf(stderr, "floodgate-rls-load: %d calls still unanswered 30 s after the run\n",
                   in_flight);
      std::_Exit(1);
    }
  }
  const double elapsed = std::chrono::duration<double>(stop - start).count();
  Row row;
  row.streams = streams;
  row.failed = failed;
  row.over_limit = over;
  row.per_second = static_cast<double>(latencies.size()) / elapsed;
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    const auto at = [&](double q) {
      const auto k = static_cast<std::size_t>(q * static_cast<double>(latencies.size() - 1));
      return static_cast<double>(latencies[k]) / 1e3;
    };
    row.p50_us = at(0.5);
    row.p99_us = at(0.99);
    row.p999_us = at(0.999);
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  using floodgate::app::Flags;
  using floodgate::app::usage_error;
  // As in floodgate-serve: Debian's Abseil checks lock order on every Mutex lock in gRPC.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (floodgate::app::print_help_if_asked(args, kHelp)) return 0;
  if (std::find(args.begin(), args.end(), "--version") != args.end()) {
    std::printf("floodgate-rls-load %s (commit %s)\n", floodgate::app::kVersion,
                floodgate::app::kCommit);
    return 0;
  }
  floodgate::Result<Flags> parsed =
      Flags::parse("rls-load", args,
                   {"grpc", "streams", "seconds", "descriptors", "values", "domain", "rate"}, {});
  if (!parsed) return usage_error("rls-load", parsed.error().message());
  const Flags& flags = *parsed;
  const std::optional<std::string> address = flags.get("grpc");
  if (!address) return usage_error("rls-load", "flag --grpc: needed (host:port)");
  floodgate::Result<double> seconds = flags.get_seconds("seconds", 2.0, 0.1);
  floodgate::Result<std::uint64_t> descriptors = flags.get_uint("descriptors", 1, 1, 1000);
  floodgate::Result<std::uint64_t> values = flags.get_uint("values", 10'000, 1, 1'000'000'000);
  for (const floodgate::Error* e :
       {seconds ? nullptr : &seconds.error(), descriptors ? nullptr : &descriptors.error(),
        values ? nullptr : &values.error()}) {
    if (e != nullptr) return usage_error("rls-load", e->message());
  }
  double rate = 0;
  if (const std::optional<std::string> r = flags.get("rate")) {
    rate = std::strtod(r->c_str(), nullptr);
    if (!(rate > 0))
      return usage_error("rls-load", "flag --rate: \"" + *r + "\" is not a rate > 0");
  }
  std::vector<int> streams;
  const std::string list = flags.get_or("streams", "1,16,128");
  for (std::size_t from = 0; from <= list.size();) {
    const std::size_t comma = std::min(list.find(',', from), list.size());
    const int n = std::atoi(list.substr(from, comma - from).c_str());
    if (n < 1 || n > 4096) {
      return usage_error("rls-load", "flag --streams: \"" + list + "\" is not a list of 1 to 4096");
    }
    streams.push_back(n);
    from = comma + 1;
  }
  grpc::ChannelArguments channel_args;
  auto channel =
      grpc::CreateCustomChannel(*address, grpc::InsecureChannelCredentials(), channel_args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    std::fprintf(stderr, "floodgate-rls-load: cannot connect to %s\n", address->c_str());
    return 1;
  }
  auto stub = rls::RateLimitService::NewStub(channel);
  std::printf("floodgate-rls-load %s: %llu descriptor(s) per request, %.1f s per row, %s\n",
              address->c_str(), static_cast<unsigned long long>(*descriptors), *seconds,
              rate > 0
                  ? ("open loop at " + std::to_string(static_cast<long long>(rate)) + "/s").c_str()
                  : "closed loop");
  std::printf("%-8s %12s %10s %10s %10s %10s %8s\n", "streams", "requests/s", "p50 us", "p99 us",
              "p99.9 us", "over", "failed");
  for (const int n : streams) {
    const Row r = run(*stub, n, *seconds, static_cast<int>(*descriptors), *values,
                      flags.get_or("domain", "bench"), rate);
    std::printf("%-8d %12.0f %10.0f %10.0f %10.0f %10llu %8llu\n", r.streams, r.per_second,
                r.p50_us, r.p99_us, r.p999_us, static_cast<unsigned long long>(r.over_limit),
                static_cast<unsigned long long>(r.failed));
    std::fflush(stdout);
  }
  return 0;
}
