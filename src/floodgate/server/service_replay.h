// `ServiceReplay`: decides the lines of a trace as `floodgate serve` would decide them, each line
// turned into an Envoy rate limit request of one domain and decided by a `Service` over a whole
// envoyproxy/ratelimit configuration (nested descriptors, wildcards, shadow mode, unlimited,
// replaces, the algorithm extensions) at the line's instant. What `floodgate replay --config`
// runs: a configuration change tried on yesterday's traffic before it is deployed.
//
// A request's descriptors come from templates, one per descriptor: entries `key=value`, each value
// literal text with the line's fields in it (`remote_address=$client`, `path=${path}`,
// `generic_key=global`). A descriptor that names a field the line does not have, or whose value
// there is "-" (what nginx and Envoy write for a value they do not have), is not sent, as Envoy
// sends none when a header its action reads is missing.
//
// Not thread-safe: one replay per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/result.h"
#include "floodgate/core/time.h"
#include "floodgate/replay/summary.h"
#include "floodgate/server/config.h"
#include "floodgate/server/service.h"

namespace floodgate::server {

// One descriptor of the requests a replay sends: `key=value` entries, the values templates.
class DescriptorTemplate {
 public:
  // Returns the template that `text` says, "k=v[,k2=v2...]" (a value's `$name` is the line's
  // field, a name of letters, digits and '_'; `${name}` any other name, `${req.client}`,
  // `${REQ(X-USER)}`; `$$` is a dollar sign), or an error quoting it.
  static Result<DescriptorTemplate> parse(std::string_view text);

  const std::string& text() const noexcept { return text_; }

 private:
  friend class ServiceReplay;
  // A piece of a value: literal text, or the field with index `field` in `ServiceReplay::fields`.
  struct Piece {
    std::string literal;
    std::string field_name;
    std::size_t field = 0;
  };
  struct TemplateEntry {
    std::string key;
    std::vector<Piece> value;
  };
  std::string text_;
  std::vector<TemplateEntry> entries_;
};

// What one rule of the configuration did over a replay.
struct RuleReplay {
  const Descriptor* rule = nullptr;
  std::uint64_t hits = 0;      // Request descriptors it applied to.
  std::uint64_t over = 0;      // Of them, over its limit and not shadowed (refused).
  std::uint64_t shadowed = 0;  // Over its limit in shadow mode: answered OK.
  replay::TopDenials limited;  // Its most limited values (over or shadowed), "k=v,k2=v2".
  replay::TimeSeries series;   // Hits within and over the limit over time, when plotted.
};

class ServiceReplay {
 public:
  struct Options {
    std::shared_ptr<const Config> config;
    std::string domain;
    std::vector<DescriptorTemplate> descriptors;
    std::size_t max_keys_per_rule = 1'000'000;
    // Keep a time series per rule (`RuleReplay::series`), bars of this width (0: none).
    bool series = false;
    Nanos bar{0};
  };

  // Returns a replay, or an error naming a domain the configuration does not have (and those it
  // has) or a descriptor whose first key no rule of the domain has.
  static Result<ServiceReplay> create(Options options);

  // Returns the names of the fields the templates read, in the order `decide` takes their values.
  const std::vector<std::string>& fields() const noexcept { return fields_; }

  // Decides the request that a line with `values` (one per `fields()`; absent ones as
  // `replay::present` says) makes, at `time`, with `hits` hits. Returns the service's response
  // (valid until the next call) and counts it per rule.
  const Response& decide(Instant time, std::uint64_t hits,
                         std::span<const std::string_view> values);

  // Returns each template's status in the last `decide`, joined by ';': "ok", "over" (over the
  // limit), "shadow" (over, in shadow mode: answered OK), or "-" (not sent: a field was absent).
  // Made when asked, for a caller that writes them.
  std::string statuses() const;

  // Returns each rule that a request met so far, in the configuration's order.
  std::vector<const RuleReplay*> rules() const;

  // Returns requests that sent no descriptor (every template named a field the line lacked).
  std::uint64_t empty_requests() const noexcept { return empty_requests_; }

  const std::string& domain() const noexcept { return options_.domain; }

 private:
  explicit ServiceReplay(Options options);

  Options options_;
  std::vector<std::string> fields_;
  std::unique_ptr<Service> service_;
  // Per request, reused: the values built and the request that points into them.
  std::vector<std::vector<std::string>> values_;
  Request request_;
  Response response_;
  std::vector<std::unique_ptr<RuleReplay>> rules_;  // In the order first met.
  std::uint64_t empty_requests_ = 0;
  std::string scratch_;
  std::vector<bool> sent_;  // Per template, in the last `decide`: whether it was sent.
};

}  // namespace floodgate::server
