// A gRPC service limited per client address: a refused call gets RESOURCE_EXHAUSTED with
// retry-after in its trailing metadata. (gRPC's health service stands in for yours.)
#include "floodgate/integrations/grpc_limit.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>

#include "floodgate/floodgate.h"
#include "grpc/health/v1/health.grpc.pb.h"

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class LimitedHealth final : public Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext* context, const HealthCheckRequest*,
                     HealthCheckResponse* response) override {
    const std::string client = floodgate::grpc_limit::peer_address(*context);
    grpc::Status limited =
        floodgate::grpc_limit::limit_call(floodgate::per_key(per_client_), *context, client);
    if (!limited.ok()) return limited;
    response->set_status(HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }

 private:
  floodgate::KeyedLimiter<> per_client_{{.default_quota = floodgate::Quota::per_minute(1)}};
};

int main() {
  LimitedHealth service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  const std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  const auto stub = Health::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  int codes[2] = {};
  for (int& code : codes) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    HealthCheckResponse response;
    code = stub->Check(&context, {}, &response).error_code();
  }
  std::printf("%d %d\n", codes[0], codes[1]);  // 0 (OK), then 8 (RESOURCE_EXHAUSTED).
  server->Shutdown();
  return codes[0] == grpc::StatusCode::OK && codes[1] == grpc::StatusCode::RESOURCE_EXHAUSTED ? 0
                                                                                              : 1;
}
