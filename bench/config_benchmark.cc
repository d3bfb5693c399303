// Loading `floodgate serve`'s configuration: a million rules in one domain (an 84 MB file, as a
// generated per-customer configuration would be), read and made into a service, beside the least
// any reader must do with the same text: libyaml's event pass alone (the baseline). Items are
// rules; the console table gives the time per load.
#include <benchmark/benchmark.h>
#include <yaml.h>

#include <memory>
#include <string>

#include "floodgate/server/config.h"
#include "floodgate/server/service.h"

namespace floodgate::bench {
namespace {

constexpr int kRules = 1'000'000;

const std::string& million_rules() {
  static const std::string text = [] {
    std::string t = "domain: big\ndescriptors:\n";
    t.reserve(90u << 20);
    for (int i = 0; i < kRules; ++i) {
      t += "  - key: k\n    value: v" + std::to_string(i) +
           "\n    rate_limit: {unit: second, requests_per_unit: 10}\n";
    }
    return t;
  }();
  return text;
}

void l1_floodgate(benchmark::State& state) {
  const std::string& text = million_rules();
  for (auto _ : state) {
    Result<server::Config> config = server::Config::parse(text, "big.yaml");
    if (!config) state.SkipWithError(config.error().message().c_str());
    Result<std::unique_ptr<server::Service>> service =
        server::Service::create(std::make_shared<const server::Config>(std::move(*config)), {});
    benchmark::DoNotOptimize(service);
  }
  state.SetItemsProcessed(state.iterations() * kRules);
}

void l1_baseline(benchmark::State& state) {
  const std::string& text = million_rules();
  for (auto _ : state) {
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
    std::size_t events = 0;
    for (bool done = false; !done;) {
      yaml_event_t event;
      if (yaml_parser_parse(&parser, &event) == 0) break;
      done = event.type == YAML_STREAM_END_EVENT;
      yaml_event_delete(&event);
      ++events;
    }
    yaml_parser_delete(&parser);
    benchmark::DoNotOptimize(events);
  }
  state.SetItemsProcessed(state.iterations() * kRules);
}

BENCHMARK(l1_floodgate)->Name("L1/floodgate")->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(l1_baseline)->Name("L1/baseline")->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace floodgate::bench
