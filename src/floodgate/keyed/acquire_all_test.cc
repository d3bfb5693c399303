#include "floodgate/keyed/acquire_all.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/limiters/gcra.h"
#include "floodgate/limiters/token_bucket.h"

namespace floodgate {
namespace {

const Instant kNow{Nanos{1'000'000'000'000}};

using PerClient = KeyedLimiter<std::string, GcraRule, ManualClock>;

TEST(AcquireAllTest, AClientOverItsOwnLimitDoesNotSpendTheGlobalOne) {
  GcraLimiter<ManualClock> global{Quota::per_second(5)};
  PerClient per_client{{.default_quota = Quota::per_second(2)}};
  EXPECT_TRUE(acquire_all_at(kNow, 1, global, for_key(per_client, "a")).allowed());
  EXPECT_TRUE(acquire_all_at(kNow, 1, global, for_key(per_client, "a")).allowed());
  const AllOrNone<2> third = acquire_all_at(kNow, 1, global, for_key(per_client, "a"));
  EXPECT_FALSE(third.allowed());
  EXPECT_EQ(third.refused, 1u);  // In the order given: the client's own limit.
  EXPECT_TRUE(third.refused_by(1));
  EXPECT_FALSE(third.refused_by(0));
  EXPECT_EQ(third.decision().verdict(), Verdict::Denied);
  EXPECT_GT(third.decision().retry_after(), Nanos::zero());
  // Every limit's answer, for the headers: the global one has its 3 left, the refused request's
  // permit given back.
  EXPECT_EQ(third.decisions[0].remaining(), 3u);
  EXPECT_TRUE(third.decisions[0].allowed());
  EXPECT_EQ(&third.decision(), &third.decisions[1]);
  EXPECT_EQ(global.peek_at(kNow, 0).remaining(), 3u) << "the refused request took nothing";
}

TEST(AcquireAllTest, AGlobalLimitThatIsSpentDoesNotChargeTheClient) {
  GcraLimiter<ManualClock> global{Quota::per_second(3)};
  PerClient per_client{{.default_quota = Quota::per_second(2)}};
  for (const char* name : {"a", "b", "c"}) {
    EXPECT_TRUE(acquire_all_at(kNow, 1, global, for_key(per_client, name)));
  }
  const AllOrNone<2> refused = acquire_all_at(kNow, 1, global, for_key(per_client, "d"));
  EXPECT_FALSE(refused.allowed());
  EXPECT_TRUE(refused.refused_by(0));
  EXPECT_EQ(refused.decision(), global.peek_at(kNow, 1));
  EXPECT_GT(refused.decision().retry_after(), Nanos::zero());
  EXPECT_EQ(per_client.peek_at("d", kNow, 0).remaining(), 2u)
      << "the client's limit is not charged once an earlier one refuses";
  EXPECT_EQ(refused.decisions[1].remaining(), 2u);
}

TEST(AcquireAllTest, EveryReservationBeforeARefusalIsGivenBack) {
  GcraLimiter<ManualClock> global{Quota::per_second(10)};
  TokenBucketLimiter<ManualClock> region{Quota::per_second(1)};
  PerClient per_client{{.default_quota = Quota::per_second(5)}};
  EXPECT_TRUE(acquire_all_at(kNow, 1, global, region, for_key(per_client, "a")).allowed());
  const AllOrNone<3> second = acquire_all_at(kNow, 1, global, region, for_key(per_client, "a"));
  EXPECT_TRUE(second.refused_by(1));  // The region.
  EXPECT_EQ(global.peek_at(kNow, 0).remaining(), 9u);
  EXPECT_EQ(per_client.peek_at("a", kNow, 0).remaining(), 4u);
  // A cost above a burst is refused as never possible, and takes nothing either.
  const AllOrNone<3> never = acquire_all_at(kNow, 11, global, region, for_key(per_client, "a"));
  EXPECT_TRUE(never.refused_by(0));
  EXPECT_EQ(never.decision().verdict(), Verdict::ExceedsBurst);
  EXPECT_EQ(global.peek_at(kNow, 0).remaining(), 9u);
}

TEST(AcquireAllTest, WhenAllAdmitTheDecisionIsTheLimitWithTheFewestLeft) {
  GcraLimiter<ManualClock> global{Quota::per_second(100)};
  GcraLimiter<ManualClock> region{Quota::per_second(4)};
  PerClient per_client{{.default_quota = Quota::per_second(10)}};
  const AllOrNone<3> r = acquire_all_at(kNow, 1, global, region, for_key(per_client, "a"));
  ASSERT_TRUE(r.allowed());
  EXPECT_EQ(r.refused, AllOrNone<3>::kNone);
  EXPECT_EQ(r.decisions[0].remaining(), 99u);
  EXPECT_EQ(r.decisions[1].remaining(), 3u);
  EXPECT_EQ(r.decisions[2].remaining(), 9u);
  EXPECT_EQ(&r.decision(), &r.decisions[1]);
  // One limit alone, reservable or not, is a limit too.
  EXPECT_TRUE(acquire_all_at(kNow, 1, global).allowed());
  EXPECT_TRUE(acquire_all_at(kNow, 1, for_key(per_client, "b")).allowed());
}

TEST(AcquireAllTest, ConcurrentRequestsNeverTakeMoreThanEitherLimit) {
  // 8 threads, 4 clients of burst 10, a global burst of 20, all at one instant: at most 20 in
  // all, at most 10 per client, and the global limit spent by no more than what was admitted
  // (a cancel that races with later reservations may give back less, never more).
  GcraLimiter<ManualClock> global{Quota::per_second(20)};
  PerClient per_client{{.default_quota = Quota::per_second(10)}};
  constexpr int kThreads = 8;
  constexpr int kEach = 50;
  std::array<std::atomic<int>, 4> admitted{};
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kEach; ++i) {
        const int c = (w + i) % 4;
        const std::string name = "client" + std::to_string(c);
        if (acquire_all_at(kNow, 1, global, for_key(per_client, name))) {
          admitted[static_cast<std::size_t>(c)].fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  int total = 0;
  for (const auto& a : admitted) {
    EXPECT_LE(a.load(), 10);
    total += a.load();
  }
  EXPECT_LE(total, 20);
  EXPECT_GE(total, 1);
  EXPECT_LE(global.peek_at(kNow, 0).remaining(), static_cast<std::uint64_t>(20 - total));
}

}  // namespace
}  // namespace floodgate
