#include "floodgate/core/clock.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace floodgate {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ManualClockTest, StartsWhereToldAndMovesOnlyWhenTold) {
  ManualClock clock(Instant{seconds(5)});
  EXPECT_EQ(clock.now(), Instant{seconds(5)});
  EXPECT_EQ(clock.now(), Instant{seconds(5)});
  EXPECT_EQ(clock.advance(milliseconds(250)), Instant{milliseconds(5250)});
  clock.set(Instant{seconds(1)});  // Backwards is allowed.
  EXPECT_EQ(clock.now(), Instant{seconds(1)});
}

TEST(ManualClockTest, CopiesShareOneTime) {
  ManualClock clock;
  ManualClock copy = clock;
  clock.advance(seconds(3));
  EXPECT_EQ(copy.now(), Instant{seconds(3)});
}

TEST(ManualClockTest, AdvanceSaturatesInsteadOfWrapping) {
  ManualClock clock(Instant::max() - Nanos{1});
  EXPECT_EQ(clock.advance(seconds(1)), Instant::max());
  clock.set(Instant::min() + Nanos{1});
  EXPECT_EQ(clock.advance(-seconds(1)), Instant::min());
}

TEST(ManualClockTest, ConcurrentAdvancesAreNotLost) {
  ManualClock clock;
  constexpr int kThreads = 4;
  constexpr int kAdvances = 10'000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([clock]() mutable {
      for (int k = 0; k < kAdvances; ++k) clock.advance(Nanos{1});
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(clock.now(), Instant{Nanos{kThreads * kAdvances}});
}

TEST(SteadyClockTest, NeverGoesBackwards) {
  SteadyClock clock;
  Instant previous = clock.now();
  for (int i = 0; i < 1000; ++i) {
    const Instant next = clock.now();
    ASSERT_GE(next, previous);
    previous = next;
  }
}

TEST(CoarseClockTest, SharesTheSteadyClocksEpoch) {
  // Not a duration assertion: both read the same time line, so they agree to within the coarse
  // clock's tick (a few ms); ten seconds only rules out a different epoch.
  const Instant steady = SteadyClock{}.now();
  const Instant coarse = CoarseClock{}.now();
  EXPECT_LT(std::chrono::abs(steady - coarse), seconds(10));
}

}  // namespace
}  // namespace floodgate
