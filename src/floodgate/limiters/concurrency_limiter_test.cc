#include "floodgate/limiters/concurrency_limiter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "floodgate/testkit/gtest.h"
#include "floodgate/testkit/runner.h"

namespace floodgate {
namespace {

using std::chrono::seconds;
using std::chrono::steady_clock;

TEST(ConcurrencyLimiterTest, AdmitsUpToTheLimitAndAgainAfterARelease) {
  ConcurrencyLimiter limiter{2};
  auto a = limiter.try_acquire();
  auto b = limiter.try_acquire();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(limiter.try_acquire());
  EXPECT_EQ(limiter.in_flight(), 2u);
  a->release();
  a->release();  // Twice is once.
  EXPECT_EQ(limiter.in_flight(), 1u);
  {
    auto c = limiter.try_acquire();
    EXPECT_TRUE(c);
    EXPECT_FALSE(limiter.try_acquire());
  }
  EXPECT_EQ(limiter.in_flight(), 1u);
  ConcurrencyLimiter::Permit moved = std::move(*b);
  b.reset();
  EXPECT_EQ(limiter.in_flight(), 1u);  // The moved-from permit released nothing.
}

TEST(ConcurrencyLimiterTest, AcquireUntilAPastDeadlineOrAStopReturnsAtOnce) {
  ConcurrencyLimiter limiter{1};
  auto held = limiter.try_acquire();
  EXPECT_FALSE(limiter.acquire_until(steady_clock::now() - seconds(1)));
  std::stop_source stop;
  stop.request_stop();
  EXPECT_FALSE(
      limiter.acquire_until(steady_clock::now() + std::chrono::hours(1), stop.get_token()));
  held.reset();
  EXPECT_TRUE(limiter.acquire_until(steady_clock::now() - seconds(1)));  // Free: no wait needed.
}

TEST(ConcurrencyLimiterTest, AReleaseWakesAWaiter) {
  ConcurrencyLimiter limiter{1};
  std::atomic<bool> acquired{false};
  const auto report =
      testkit::run<int>({.workers = 2, .name = "wake"}, [&](testkit::Worker<int>& w) {
        if (w.index() == 0) {
          auto permit = limiter.try_acquire();
          if (!w.expect(permit.has_value(), "worker 0 could not take the only permit")) return;
          // Release once worker 1 waits (with a deadline on this wait too).
          const auto deadline = steady_clock::now() + seconds(10);
          while (limiter.waiting() == 0) {
            if (steady_clock::now() > deadline) return w.fail("worker 1 never waited");
            std::this_thread::yield();
          }
          w.expect(!acquired.load(), "worker 1 acquired while the permit was held");
          permit.reset();
          return;
        }
        // Wait (with a deadline) until worker 0 holds the only permit, then wait for it.
        const auto deadline = steady_clock::now() + seconds(10);
        while (limiter.in_flight() == 0) {
          if (steady_clock::now() > deadline) return w.fail("worker 0 never took the permit");
          std::this_thread::yield();
        }
        const auto permit = w.step("acquire_until(+60s)", [&] {
          return limiter.acquire_until(steady_clock::now() + seconds(60), w.stop_token())
                         .has_value()
                     ? 1
                     : 0;
        });
        acquired = permit == 1;
        w.expect_eq(permit, 1, "acquire_until after the release");
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  EXPECT_TRUE(acquired.load());
  EXPECT_EQ(limiter.in_flight(), 0u);
}

TEST(ConcurrencyLimiterTest, NeverMoreThanTheLimitInFlight) {
  ConcurrencyLimiter limiter{3};
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  const auto report =
      testkit::run<int>({.workers = 8, .name = "in flight"}, [&](testkit::Worker<int>& w) {
        for (int i = 0; i < 2000 && w.keep_going(); ++i) {
          auto permit = limiter.acquire_until(steady_clock::now() + seconds(30), w.stop_token());
          if (!permit) continue;
          const int now = inside.fetch_add(1) + 1;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          inside.fetch_sub(1);
        }
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 1);
  EXPECT_EQ(limiter.in_flight(), 0u);
  EXPECT_EQ(limiter.waiting(), 0u);
}

TEST(ConcurrencyLimiterTest, RaisingTheLimitWakesAWaiterAndLoweringItRevokesNothing) {
  ConcurrencyLimiter limiter{1};
  auto held = limiter.try_acquire();
  ASSERT_TRUE(held);
  const auto report =
      testkit::run<int>({.workers = 2, .name = "set_limit"}, [&](testkit::Worker<int>& w) {
        if (w.index() == 0) {
          const int got = w.step("acquire_until(+60s)", [&] {
            return limiter.acquire_until(steady_clock::now() + seconds(60), w.stop_token())
                           .has_value()
                       ? 1
                       : 0;
          });
          w.expect_eq(got, 1, "acquired once the limit was raised");
          return;
        }
        const auto deadline = steady_clock::now() + seconds(10);
        while (limiter.waiting() == 0) {
          if (steady_clock::now() > deadline) return w.fail("worker 0 never waited");
          std::this_thread::yield();
        }
        limiter.set_limit(2);  // The held permit stays; the waiter gets the new slot.
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  EXPECT_EQ(limiter.limit(), 2u);
  auto second = limiter.try_acquire();
  auto third = limiter.try_acquire();
  EXPECT_TRUE(second);
  EXPECT_FALSE(third);
  limiter.set_limit(1);  // Two in flight, limit 1: both keep running, nothing new comes in.
  EXPECT_EQ(limiter.in_flight(), 2u);
  EXPECT_FALSE(limiter.try_acquire());
  second->release();
  EXPECT_FALSE(limiter.try_acquire()) << "one still in flight at limit 1";
  held->release();
  EXPECT_TRUE(limiter.try_acquire());
}

TEST(ConcurrencyLimiterDeathTest, ALimitOfZeroIsRefused) {
  EXPECT_DEATH(ConcurrencyLimiter{1}.set_limit(0), "set_limit: the limit must be at least 1");
  EXPECT_DEATH(ConcurrencyLimiter limiter{0}, "limit must be at least 1");
}

}  // namespace
}  // namespace floodgate
