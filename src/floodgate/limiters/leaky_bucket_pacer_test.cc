#include "floodgate/limiters/leaky_bucket_pacer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "floodgate/testkit/gtest.h"
#include "floodgate/testkit/runner.h"

namespace floodgate {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Instant t0{seconds(1000)};

TEST(LeakyBucketPacerTest, SpacesTurnsOneIntervalApartWithoutSlack) {
  LeakyBucketPacer<ManualClock> pacer{Quota::per_second(10).with_burst(1)};
  EXPECT_EQ(pacer.take_at(t0), t0);
  EXPECT_EQ(pacer.take_at(t0), t0 + milliseconds(100));
  EXPECT_EQ(pacer.take_at(t0), t0 + milliseconds(200));
  // A caller arriving after its turn goes at once; the next turn follows it.
  EXPECT_EQ(pacer.take_at(t0 + milliseconds(450)), t0 + milliseconds(450));
  EXPECT_EQ(pacer.take_at(t0 + milliseconds(450)), t0 + milliseconds(550));
}

TEST(LeakyBucketPacerTest, BanksUpToTheSlackAfterIdle) {
  LeakyBucketPacer<ManualClock> pacer{Quota::per_second(10).with_burst(3)};
  (void)pacer.take_at(t0);
  const Instant later = t0 + seconds(10);
  EXPECT_EQ(pacer.take_at(later), later);
  EXPECT_EQ(pacer.take_at(later), later);
  EXPECT_EQ(pacer.take_at(later), later);
  EXPECT_EQ(pacer.take_at(later), later + milliseconds(100));
}

TEST(LeakyBucketPacerTest, StaleTimeNeverEarnsAnEarlierTurn) {
  LeakyBucketPacer<ManualClock> pacer{Quota::per_second(10).with_burst(1)};
  for (int i = 0; i < 5; ++i) (void)pacer.take_at(t0);
  EXPECT_EQ(pacer.take_at(t0 - seconds(5)), t0 + milliseconds(500));
}

TEST(LeakyBucketPacerTest, ConcurrentTurnsAreDistinctAndSpaced) {
  LeakyBucketPacer<ManualClock> pacer{Quota::per_second(1000).with_burst(1)};
  const auto report =
      testkit::run<Instant>({.workers = 8, .name = "pacer"}, [&](testkit::Worker<Instant>& w) {
        for (int i = 0; i < 500 && w.keep_going(); ++i) {
          w.step("take_at(t0)", [&] { return pacer.take_at(t0); });
        }
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  std::vector<Instant> turns;
  for (const auto& op : report.history) turns.push_back(*op.result);
  std::sort(turns.begin(), turns.end());
  for (std::size_t i = 0; i < turns.size(); ++i) {
    ASSERT_EQ(turns[i], t0 + milliseconds(1) * static_cast<int>(i)) << "turn " << i;
  }
}

TEST(LeakyBucketPacerTest, TakeSleepsUntilTheTurnOnTheClock) {
  ManualClock clock(t0);
  LeakyBucketPacer pacer{Quota::per_second(10).with_burst(1), clock};
  EXPECT_EQ(pacer.take(), t0);  // No wait.
  std::atomic<bool> returned{false};
  const auto report = testkit::run<Instant>(
      {.workers = 2, .stall_timeout = std::chrono::milliseconds(5000), .name = "take"},
      [&](testkit::Worker<Instant>& w) {
        if (w.index() == 0) {
          w.step("take()", [&] { return pacer.take(); });
          returned = true;
          return;
        }
        // Wait (with a deadline) until worker 0 has reserved its turn, t0 + 100 ms; it must then
        // sleep until the clock gets there.
        const auto deadline = std::chrono::steady_clock::now() + seconds(10);
        while (pacer.next_turn() != t0 + milliseconds(200)) {
          if (std::chrono::steady_clock::now() > deadline) {
            w.fail("worker 0 never reserved its turn");
            return;
          }
          std::this_thread::yield();
        }
        w.expect(!returned.load(), "take() returned before its turn");
        clock.advance(milliseconds(100));
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  EXPECT_TRUE(returned.load());
}

TEST(LeakyBucketPacerTest, TurnsSaturateInsteadOfOverflowing) {
  LeakyBucketPacer<ManualClock> pacer{Quota::per(std::chrono::hours(24 * 365 * 70), 1)};
  for (int i = 0; i < 10; ++i)
    EXPECT_GE(pacer.take_at(Instant::max()), Instant{Nanos{internal::kTimeLimit}});
  EXPECT_GE(pacer.take_at(Instant::min()), Instant::min());
}

}  // namespace
}  // namespace floodgate
