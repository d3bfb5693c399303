#include "floodgate/server/grpc_health.h"

#include <chrono>
#include <string_view>
#include <utility>

namespace floodgate::server {
namespace {

using grpc::health::v1::HealthCheckResponse;

// Reports whether `service` names what this server serves.
bool known(std::string_view service) {
  return service.empty() || service == "envoy.service.ratelimit.v3.RateLimitService";
}

grpc::Status unknown(const std::string& service) {
  return grpc::Status(grpc::StatusCode::NOT_FOUND,
                      "unknown service \"" + service.substr(0, 200) +
                          "\" (this server serves \"\" and "
                          "\"envoy.service.ratelimit.v3.RateLimitService\")");
}

}  // namespace

GrpcHealth::GrpcHealth(std::function<std::string()> why_not) : why_not_(std::move(why_not)) {}

void GrpcHealth::stop() {
  {
    const std::lock_guard lock(mu_);
    stopped_ = true;
  }
  changed_.notify_all();
}

HealthCheckResponse::ServingStatus GrpcHealth::status() const {
  {
    const std::lock_guard lock(mu_);
    if (stopped_) return HealthCheckResponse::NOT_SERVING;
  }
  if (why_not_ && !why_not_().empty()) return HealthCheckResponse::NOT_SERVING;
  return HealthCheckResponse::SERVING;
}

grpc::Status GrpcHealth::Check(grpc::ServerContext* /*context*/,
                               const grpc::health::v1::HealthCheckRequest* request,
                               HealthCheckResponse* response) {
  if (!known(request->service())) return unknown(request->service());
  response->set_status(status());
  return grpc::Status::OK;
}

grpc::Status GrpcHealth::Watch(grpc::ServerContext* context,
                               const grpc::health::v1::HealthCheckRequest* request,
                               grpc::ServerWriter<HealthCheckResponse>* writer) {
  {
    const std::lock_guard lock(mu_);
    if (watchers_ >= kMaxWatchers) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "at most " + std::to_string(kMaxWatchers) + " health watches at once");
    }
    ++watchers_;
  }
  HealthCheckResponse response;
  // As gRPC's own service: an unknown name is SERVICE_UNKNOWN on the stream, not an error.
  HealthCheckResponse::ServingStatus last = HealthCheckResponse::UNKNOWN;
  bool first = true;
  for (;;) {
    const HealthCheckResponse::ServingStatus now =
        known(request->service()) ? status() : HealthCheckResponse::SERVICE_UNKNOWN;
    if (first || now != last) {
      response.set_status(now);
      if (!writer->Write(response)) break;
      first = false;
      last = now;
    }
    std::unique_lock lock(mu_);
    if (stopped_ || context->IsCancelled()) break;
    changed_.wait_for(lock, std::chrono::seconds(1));
    if (stopped_) {
      lock.unlock();
      response.set_status(HealthCheckResponse::NOT_SERVING);
      if (last != HealthCheckResponse::NOT_SERVING) writer->Write(response);
      break;
    }
  }
  const std::lock_guard lock(mu_);
  --watchers_;
  return grpc::Status::OK;
}

}  // namespace floodgate::server
