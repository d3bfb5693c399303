// The HTTP endpoint of `floodgate serve`, beside the gRPC one (rls.h): envoyproxy/ratelimit's
// `POST /json` (a proto3-JSON `RateLimitRequest`, answered 200 when OK and 429 when over the
// limit, 400 naming what is malformed), `GET /healthcheck` (200, or 500 saying why the backend
// is degraded, as envoyproxy/ratelimit), `GET /rlconfig` (the rules in force, as
// envoyproxy/ratelimit's debug endpoint lists them: `Config::dump`) and `GET /metrics`
// (Prometheus text: the rules', the service's and the HTTP server's counters). Thread-safe, as the
// `HttpServer` that serves it.
#pragma once

#include <functional>
#include <string>

#include "floodgate/server/http_server.h"
#include "floodgate/server/metrics.h"
#include "floodgate/server/rls.h"
#include "floodgate/server/service.h"

namespace floodgate::server {

// Adds the four routes to `http`: `/json` answered by `service` and counted in `metrics`,
// `/metrics` written by `registry`; all three must outlive it. `health`, when set, returns why
// the backend is degraded, or nothing when it is not.
void add_http_endpoint(HttpServer& http, Service& service, ServiceMetrics& metrics,
                       const MetricsRegistry& registry, AnswerOptions options,
                       std::function<std::string()> health = nullptr);

// Returns a collector of `http`'s counters (connections refused and evicted, timeouts, refused
// requests), for a `MetricsRegistry`; `http` must outlive it.
MetricsRegistry::Collector http_server_metrics(const HttpServer& http);

}  // namespace floodgate::server
