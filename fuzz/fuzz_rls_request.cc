// Fuzz target: a RateLimitRequest as gRPC would hand it over (proto bytes from any client),
// through the service with a fixed configuration and state in this process, three times at one
// instant. No crash; a malformed request is refused with a message; otherwise one status per
// descriptor, codes OK or OVER_LIMIT, OVER_LIMIT overall when any status is (quota-mode ones: when
// all of them are), and no limit
// admits more hits at one instant than its burst, over the three answers.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "floodgate/server/config.h"
#include "floodgate/server/rls.h"
#include "floodgate/server/service.h"
#include "fuzz_input.h"

namespace {

namespace server = floodgate::server;
namespace rls = envoy::service::ratelimit::v3;

constexpr std::string_view kConfig = R"(domain: d
descriptors:
  - key: fw
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: gcra
    rate_limit: {unit: second, requests_per_unit: 4, algorithm: gcra, burst: 2}
  - key: tb
    rate_limit: {unit: hour, requests_per_unit: 5, algorithm: token-bucket}
  - key: sw
    rate_limit: {unit: minute, requests_per_unit: 2, algorithm: sliding-counter}
  - key: zero
    rate_limit: {unit: second, requests_per_unit: 0}
  - key: open
    rate_limit: {unlimited: true}
  - key: soft
    quota_mode: true
    metadata: {tier: {name: soft, n: 1}, list: [1, "two"]}
    rate_limit: {unit: second, requests_per_unit: 1}
  - key: shared
    value: "s*"
    share_threshold: true
    detailed_metric: true
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: metric
    value_to_metric: true
    metadata: {tier: {plan: free}}
    rate_limit: {unit: second, requests_per_unit: 2}
  - key: fw
    value: "a*"
    rate_limit: {unit: second, requests_per_unit: 1, name: a}
    descriptors:
      - key: sub
        rate_limit: {unit: second, requests_per_unit: 2, replaces: [{name: a}]}
)";

const std::shared_ptr<const server::Config>& config() {
  static const std::shared_ptr<const server::Config> c = [] {
    floodgate::Result<server::Config> parsed = server::Config::parse(kConfig, "fuzz.yaml");
    if (!parsed) floodgate::fuzz::fail("the fixed configuration", parsed.error().message());
    return std::make_shared<const server::Config>(std::move(*parsed));
  }();
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using floodgate::fuzz::fail;
  rls::RateLimitRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;  // gRPC refuses it.
  floodgate::Result<std::unique_ptr<server::Service>> service =
      server::Service::create(config(), {.max_keys_per_rule = 64});
  if (!service) fail("the service", service.error().message());
  const floodgate::Instant now{std::chrono::seconds(1'764'633'600)};
  // Hits admitted per limit and descriptor, and the most a limit admits at one instant.
  std::map<std::string, std::uint64_t> admitted;
  std::map<std::string, std::uint64_t> most;
  for (int round = 0; round < 3; ++round) {
    floodgate::Result<server::Request> parsed = server::from_proto(request);
    if (!parsed) {
      if (parsed.error().message().empty()) fail("a refusal without a message");
      return 0;
    }
    const server::Response response = (*service)->should_rate_limit(*parsed, now);
    rls::RateLimitResponse proto;
    server::AnswerOptions options;
    options.headers = round == 0   ? server::ResponseHeaders::None
                      : round == 1 ? server::ResponseHeaders::Envoy
                                   : server::ResponseHeaders::Ietf;
    options.dynamic_metadata = round == 2;
    server::to_proto(*parsed, response, proto, options);
    if (proto.statuses_size() != request.descriptors_size()) {
      fail("not one status per descriptor");
    }
    bool any_over = false;  // Any over the limit and not in quota mode.
    int quota = 0;
    int quota_over = 0;
    for (int i = 0; i < proto.statuses_size(); ++i) {
      const auto& status = proto.statuses(i);
      if (status.code() != rls::RateLimitResponse::OK &&
          status.code() != rls::RateLimitResponse::OVER_LIMIT) {
        fail("a status code neither OK nor OVER_LIMIT");
      }
      const server::DescriptorStatus& s = response.statuses[static_cast<std::size_t>(i)];
      const bool over = status.code() == rls::RateLimitResponse::OVER_LIMIT;
      if (s.quota_mode) {
        ++quota;
        quota_over += over ? 1 : 0;
      } else {
        any_over = any_over || over;
      }
      const server::RequestDescriptor& d = parsed->descriptors[static_cast<std::size_t>(i)];
      const std::uint64_t hits =
          d.hits_addend ? *d.hits_addend : (parsed->hits_addend == 0 ? 1 : parsed->hits_addend);
      if (s.code != server::Code::Ok || s.shadowed || hits == 0) continue;
      std::string limit;
      std::uint64_t burst = 0;
      if (s.own_limit) {
        // Own limits of one unit share a count; each count admits at most itself of it.
        limit = "own:" + std::to_string(s.own_limit->requests_per_unit) + ":" +
                server::override_key(parsed->domain, s.own_limit->unit, d.entries);
        burst = s.own_limit->requests_per_unit;
      } else if (s.rule != nullptr && !s.rule->rate_limit->unlimited) {
        limit = s.rule->identity + ":" + server::Config::state_key(*s.rule, d.entries);
        burst = s.rule->rate_limit->burst.value_or(s.rule->rate_limit->requests_per_unit);
      } else {
        continue;
      }
      admitted[limit] += hits;
      most[limit] = burst;
    }
    if ((any_over || (quota > 0 && quota == quota_over)) !=
        (proto.overall_code() == rls::RateLimitResponse::OVER_LIMIT)) {
      fail("the overall code disagrees with the statuses");
    }
  }
  for (const auto& [limit, hits] : admitted) {
    if (hits > most[limit]) fail("a limit admitted more than its burst at one instant", limit);
  }
  return 0;
}
