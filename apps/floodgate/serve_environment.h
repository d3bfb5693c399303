// envoyproxy/ratelimit's environment settings, read by `floodgate serve` so that a deployment of
// it (a Kubernetes manifest, a compose file) runs unchanged with only the image changed. Each
// setting that is set becomes the flag it stands for, unless that flag is given (flags win). A
// setting floodgate does not support is named at start: an error when ignoring it would change
// what is limited or where (TLS, Sentinel, another backend), a note otherwise (statsd, logs).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/result.h"

namespace floodgate::app {

// What the environment says.
struct EnvoyEnvironment {
  // Flags and their values, as if given on the command line (booleans: a value of "").
  std::vector<std::pair<std::string, std::string>> flags;
  // The Redis password (REDIS_AUTH without a user), kept out of `flags`.
  std::optional<std::string> redis_password;
  // One line for each setting that is set and not applied, saying why.
  std::vector<std::string> notes;
};

// Reads envoyproxy/ratelimit's settings through `getenv` (the process's environment by default),
// skipping those whose flag is in `given`. Returns an error naming the variable and its value
// when one is malformed or cannot be honoured.
Result<EnvoyEnvironment> read_envoy_environment(
    const std::set<std::string, std::less<>>& given,
    const std::function<std::optional<std::string>(std::string_view)>& getenv = nullptr);

}  // namespace floodgate::app
