// The gRPC helper in a real gRPC server on loopback (gRPC's health service, its Check method
// limited per client by the x-client metadata), called by 8 client threads: exact admitted
// counts, RESOURCE_EXHAUSTED with retry-after and the ratelimit items in trailing metadata, and
// the peer's address as a key. Time stands still (ManualClock).
#include "floodgate/integrations/grpc_limit.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/floodgate.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace floodgate::grpc_limit {
namespace {

namespace health = ::grpc::health::v1;

// Check, limited by `limit`, keyed by the x-client metadata or else the peer's address.
template <class Limit>
class LimitedHealth final : public health::Health::Service {
 public:
  LimitedHealth(Limit limit, Options options)
      : limit_(std::move(limit)), options_(std::move(options)) {}

  grpc::Status Check(grpc::ServerContext* context, const health::HealthCheckRequest*,
                     health::HealthCheckResponse* response) override {
    const std::string key = metadata_value(*context, "x-client").value_or(peer_address(*context));
    if (grpc::Status s = limit_call(limit_, *context, key, options_); !s.ok()) return s;
    response->set_status(health::HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }

 private:
  Limit limit_;
  Options options_;
};

// A server of `service` on a free loopback port, shut down at the end of the test.
class Server {
 public:
  explicit Server(grpc::Service& service) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service);
    server_ = builder.BuildAndStart();
  }
  ~Server() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  int port() const { return port_; }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// What one call saw.
struct Seen {
  std::string client;
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message, retry_after, rate_limit, policy;
};

std::string trailing(const grpc::ClientContext& context, const std::string& key) {
  const auto& metadata = context.GetServerTrailingMetadata();
  const auto found = metadata.find(key);
  return found == metadata.end() ? "" : std::string(found->second.data(), found->second.size());
}

// Calls Check `per_thread` times from each of `threads` threads, thread t as client
// "c<t % clients>" (none: no metadata, keyed by the peer). Workers only record; every call has a
// 5 s deadline.
std::vector<Seen> hammer(int port, int threads, int per_thread, int clients) {
  const auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  std::vector<std::vector<Seen>> seen(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const auto stub = health::Health::NewStub(channel);
      const std::string name = clients > 0 ? "c" + std::to_string(t % clients) : "";
      for (int i = 0; i < per_thread; ++i) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        if (!name.empty()) context.AddMetadata("x-client", name);
        health::HealthCheckResponse response;
        const grpc::Status status = stub->Check(&context, {}, &response);
        seen[static_cast<std::size_t>(t)].push_back(
            {name, status.error_code(), status.error_message(), trailing(context, "retry-after"),
             trailing(context, "ratelimit"), trailing(context, "ratelimit-policy")});
      }
    });
  }
  for (std::thread& w : workers) w.join();
  std::vector<Seen> all;
  for (auto& v : seen) all.insert(all.end(), v.begin(), v.end());
  return all;
}

using PerClient = KeyedLimiter<std::string, GcraRule, ManualClock>;

TEST(GrpcLimitTest, ConcurrentClientsGetExactlyTheirBurstAndThenResourceExhausted) {
  PerClient per_client{{.default_quota = Quota::per_second(2).with_burst(5)}};
  Options options;
  options.name = "client";
  LimitedHealth service(per_key(per_client), options);
  Server server(service);
  ASSERT_GT(server.port(), 0);
  const std::vector<Seen> seen = hammer(server.port(), 8, 25, 4);  // 50 calls a client.
  std::map<std::string, int> admitted;
  for (const Seen& s : seen) {
    ASSERT_NE(s.code, grpc::StatusCode::DEADLINE_EXCEEDED) << "a call got no answer";
    EXPECT_EQ(s.policy, R"("client";q=2;w=1)");
    if (s.code == grpc::StatusCode::OK) {
      ++admitted[s.client];
      EXPECT_TRUE(s.retry_after.empty());
    } else {
      EXPECT_EQ(s.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << s.message;
      EXPECT_EQ(s.message, "rate limited: retry after 1 s");
      EXPECT_EQ(s.retry_after, "1");
      EXPECT_EQ(s.rate_limit, R"("client";r=0;t=3)");
    }
  }
  ASSERT_EQ(admitted.size(), 4u);
  for (const auto& [client, n] : admitted) EXPECT_EQ(n, 5) << client;
}

TEST(GrpcLimitTest, KeyedByThePeersAddressACostAboveTheBurstIsNeverAdmitted) {
  PerClient per_client{{.default_quota = Quota::per_second(10)}};
  Options options;
  options.name = "peer";
  LimitedHealth service(per_key(per_client), options);
  Server server(service);
  // Every call comes from 127.0.0.1: one key, 10 admitted of 16.
  const std::vector<Seen> seen = hammer(server.port(), 4, 4, 0);
  int admitted = 0;
  for (const Seen& s : seen) admitted += s.code == grpc::StatusCode::OK ? 1 : 0;
  EXPECT_EQ(admitted, 10);
  EXPECT_EQ(per_client.peek_at("127.0.0.1", Instant{}, 0).remaining(), 0u)
      << "keyed by the peer's address without scheme or port";
  // A cost above the burst: refused, with no retry-after (no wait admits it).
  GcraLimiter<ManualClock> global{Quota::per_second(1)};
  Options costly;
  costly.cost = 2;
  LimitedHealth never(one_limit(global), costly);
  Server never_server(never);
  const std::vector<Seen> refused = hammer(never_server.port(), 1, 1, 1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].code, grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(refused[0].retry_after.empty());
  EXPECT_EQ(refused[0].message,
            "rate limited: the cost is above what the limit ever admits at once");
}

}  // namespace
}  // namespace floodgate::grpc_limit
