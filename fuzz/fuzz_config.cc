// Fuzz target: `Config::parse` on any text, as an operator's file. No crash, and within the
// fuzzer's time and memory limits whatever the aliases and nesting; an error names the file
// and, when it is about a place in it, the line; a configuration read becomes a service, and a
// request for each top-level rule is decided.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "floodgate/server/config.h"
#include "floodgate/server/service.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using floodgate::fuzz::fail;
  namespace server = floodgate::server;
  floodgate::fuzz::FuzzInput in(data, size);
  const std::string_view text = in.rest();
  floodgate::Result<server::Config> config = server::Config::parse(text, "fuzz.yaml");
  if (!config) {
    const std::string& message = config.error().message();
    if (!message.starts_with("fuzz.yaml:")) {
      fail("an error that does not name the file", message);
    }
    return 0;
  }
  auto shared = std::make_shared<const server::Config>(std::move(*config));
  floodgate::Result<std::unique_ptr<server::Service>> service =
      server::Service::create(shared, {.max_keys_per_rule = 64});
  if (!service) fail("a configuration read that makes no service", service.error().message());
  for (const std::string& name : shared->domain_names()) {
    for (const server::Descriptor& d : shared->domain(name)->descriptors) {
      server::Request request;
      request.domain = name;
      const std::string value = d.value ? *d.value : std::string("v");
      request.descriptors.push_back({{{d.key, value}}, std::nullopt, std::nullopt});
      const server::Response r = (*service)->should_rate_limit(request, floodgate::Instant{});
      if (r.statuses.size() != 1) fail("not one status per descriptor", d.id);
    }
  }
  return 0;
}
