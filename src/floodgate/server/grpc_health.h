// `GrpcHealth`: gRPC's standard health service (`grpc.health.v1.Health`) for `floodgate serve`, the
// one Kubernetes' `grpc:` probes, grpc_health_probe and Envoy's gRPC health checks ask: SERVING,
// or NOT_SERVING while the backend (Redis) does not answer and once the service is stopping. It
// answers for the whole server (service "") and for
// "envoy.service.ratelimit.v3.RateLimitService"; any other name is NOT_FOUND. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"

namespace floodgate::server {

class GrpcHealth final : public grpc::health::v1::Health::Service {
 public:
  // The most `Watch` streams open at once; past it, RESOURCE_EXHAUSTED (each holds one of gRPC's
  // threads while it waits).
  static constexpr std::size_t kMaxWatchers = 16;

  // `why_not`, when set, returns why the service cannot serve (empty: it can); it is asked on
  // every `Check` and every second of a `Watch`.
  explicit GrpcHealth(std::function<std::string()> why_not = nullptr);

  // From now on NOT_SERVING; open `Watch` streams say so and end. Idempotent.
  void stop();

  grpc::Status Check(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  grpc::health::v1::HealthCheckResponse::ServingStatus status() const;

  const std::function<std::string()> why_not_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool stopped_ = false;      // Guarded by mu_.
  std::size_t watchers_ = 0;  // Guarded by mu_.
};

}  // namespace floodgate::server
