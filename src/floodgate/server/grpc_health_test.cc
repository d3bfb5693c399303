#include "floodgate/server/grpc_health.h"

#include <gtest/gtest.h>

#include <string>

namespace floodgate::server {
namespace {

using grpc::health::v1::HealthCheckResponse;

HealthCheckResponse::ServingStatus check(GrpcHealth& health, const std::string& service,
                                         grpc::Status* status = nullptr) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  const grpc::Status s = health.Check(nullptr, &request, &response);
  if (status != nullptr) *status = s;
  return s.ok() ? response.status() : HealthCheckResponse::UNKNOWN;
}

TEST(GrpcHealthTest, ServingUntilTheBackendFailsOrTheServiceStops) {
  std::string why;
  GrpcHealth health([&why] { return why; });
  EXPECT_EQ(check(health, ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(check(health, "envoy.service.ratelimit.v3.RateLimitService"),
            HealthCheckResponse::SERVING);
  why = "Redis does not answer";
  EXPECT_EQ(check(health, ""), HealthCheckResponse::NOT_SERVING);
  why.clear();
  EXPECT_EQ(check(health, ""), HealthCheckResponse::SERVING);
  health.stop();
  EXPECT_EQ(check(health, ""), HealthCheckResponse::NOT_SERVING) << "stopping";
  health.stop();
  EXPECT_EQ(check(health, ""), HealthCheckResponse::NOT_SERVING);
}

TEST(GrpcHealthTest, AnUnknownServiceIsNotFound) {
  GrpcHealth health;
  grpc::Status status;
  EXPECT_EQ(check(health, "other.Service", &status), HealthCheckResponse::UNKNOWN);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(),
            "unknown service \"other.Service\" (this server serves \"\" and "
            "\"envoy.service.ratelimit.v3.RateLimitService\")");
}

}  // namespace
}  // namespace floodgate::server
