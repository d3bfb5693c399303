#include "floodgate/limiters/leaky_bucket_pacer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "floodgate/testkit/gtest.h"
#include "floodgate/testkit/runner.h"

namespace floodgate {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Instant t0{seconds(1000)};

// uber-go/ratelimit's atomic limiter, transcribed for one thread with time as an input: the
// state is the time of the next permit; a first call, or one after more than the slack plus an
// interval of idle, resets it; otherwise the permit follows the last by one interval. Returns
// when the caller may go.
class ReferencePacer {
 public:
  ReferencePacer(std::int64_t per_request, std::int64_t max_slack)
      : per_request_(per_request), max_slack_(max_slack) {}

  std::int64_t take(std::int64_t now) {
    std::int64_t issue = 0;
    if (!started_ || (max_slack_ == 0 && now - state_ > per_request_)) {
      issue = now;
    } else if (max_slack_ > 0 && now - state_ > max_slack_ + per_request_) {
      issue = now - max_slack_;
    } else {
      issue = state_ + per_request_;
    }
    started_ = true;
    state_ = issue;
    return std::max(issue, now);
  }

 private:
  std::int64_t per_request_;
  std::int64_t max_slack_;
  std::int64_t state_ = 0;
  bool started_ = false;
};

TEST(LeakyBucketPacerTest, GivesUberRatelimitsTurns) {
  // uber-go/ratelimit's slack of n intervals is a burst of n + 1 here.
  std::mt19937_64 rng(3);
  for (const std::uint64_t slack : {0u, 1u, 10u}) {
    SCOPED_TRACE(slack);
    const Quota quota = Quota::per_second(100).with_burst(slack + 1);  // 10 ms apart.
    LeakyBucketPacer<ManualClock> pacer{quota};
    ReferencePacer uber(10'000'000, static_cast<std::int64_t>(slack) * 10'000'000);
    std::int64_t now = t0.time_since_epoch().count();
    for (int i = 0; i < 20'000; ++i) {
      now += static_cast<std::int64_t>(rng() % 25'000'000);
      ASSERT_EQ(pacer.take_at(Instant{Nanos{now}}).time_since_epoch().count(), uber.take(now))
          << "call " << i;
    }
  }
}

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
