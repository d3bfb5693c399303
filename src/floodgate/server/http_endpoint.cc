#include "floodgate/server/http_endpoint.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <tuple>
#include <utility>

namespace floodgate::server {

void add_http_endpoint(HttpServer& http, Service& service, ServiceMetrics& metrics,
                       const MetricsRegistry& registry, AnswerOptions options,
                       std::function<std::string()> health) {
  http.route(
      "POST", "/json", HttpLane::Slow, [&service, &metrics, options](const HttpRequest& req) {
        const auto start = std::chrono::steady_clock::now();
        envoy::service::ratelimit::v3::RateLimitRequest request;
        envoy::service::ratelimit::v3::RateLimitResponse response;
        // Any content type: envoyproxy/ratelimit reads the body as JSON whatever the client says.
        const auto read = google::protobuf::util::JsonStringToMessage(req.body, &request);
        const grpc::Status answered =
            read.ok() ? answer(service, request, response, start + options.request_timeout, options)
                      : grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     "the body is not a JSON RateLimitRequest: " +
                                         std::string(read.message()));
        metrics.observe(Endpoint::Http, std::chrono::steady_clock::now() - start, !answered.ok());
        if (!answered.ok()) {
          // 400 for a malformed request; 500 when it cannot be decided, as envoyproxy/ratelimit.
          return HttpResponse{
              answered.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? 400 : 500, "text/plain",
              answered.error_message() + "\n"};
        }
        std::string json;
        (void)google::protobuf::util::MessageToJsonString(response, &json);
        return HttpResponse{
            response.overall_code() == envoy::service::ratelimit::v3::RateLimitResponse::OVER_LIMIT
                ? 429
                : 200,
            "application/json", std::move(json)};
      });
  http.route("GET", "/healthcheck", HttpLane::Fast,
             [health = std::move(health)](const HttpRequest&) {
               if (health) {
                 if (const std::string why = health(); !why.empty()) {
                   // 500, as envoyproxy/ratelimit answers while unhealthy.
                   return HttpResponse{500, "text/plain", "degraded: " + why + "\n"};
                 }
               }
               return HttpResponse{200, "text/plain", "OK\n"};
             });
  // The rules in force, as envoyproxy/ratelimit's debug endpoint of the same name lists them.
  http.route("GET", "/rlconfig", HttpLane::Fast, [&service](const HttpRequest&) {
    const std::shared_ptr<const Config> config = service.config();
    if (!service.configured() || config == nullptr) {
      return HttpResponse{
          503, "text/plain",
          "no rate limit configuration loaded: " + service.configuration_error() + "\n"};
    }
    return HttpResponse{200, "text/plain", config->dump()};
  });
  http.route("GET", "/metrics", HttpLane::Fast, [&registry](const HttpRequest&) {
    return HttpResponse{200, "text/plain; version=0.0.4", registry.write()};
  });
}

MetricsRegistry::Collector http_server_metrics(const HttpServer& http) {
  return [&http](std::string& out) {
    const HttpServerStats h = http.stats();
    for (const auto& [name, help, value] :
         {std::tuple{"floodgate_http_connections_refused_total",
                     "HTTP connections closed at once: every place was taken by a request being "
                     "answered.",
                     h.connections_refused},
          std::tuple{"floodgate_http_connections_evicted_total",
                     "HTTP connections closed to make room for a new one (the one that had waited "
                     "longest for a whole request).",
                     h.connections_evicted},
          std::tuple{"floodgate_http_timeouts_total",
                     "HTTP requests whose head or body did not arrive in time, and idle "
                     "connections closed.",
                     h.timeouts},
          std::tuple{"floodgate_http_refused_requests_total",
                     "HTTP requests refused before any handler (malformed, too large, too slow).",
                     h.refused_requests}}) {
      append_family(out, name, help, "counter");
      append_sample(out, name, "", value);
    }
  };
}

}  // namespace floodgate::server
