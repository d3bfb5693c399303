#include "floodgate/server/workers.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace floodgate::server {
namespace {

using namespace std::chrono_literals;

TEST(WorkersTest, RunsEveryTaskSubmittedBeforeItIsDestroyed) {
  std::atomic<int> ran{0};
  {
    Workers workers(3);
    for (int i = 0; i < 1000; ++i) workers.submit([&] { ran.fetch_add(1); });
  }
  EXPECT_EQ(ran.load(), 1000);
}

// `stop` runs what was queued and joins: after it nothing runs on the pool's threads, so what the
// tasks use may be destroyed; a task submitted later runs on the caller's thread.
TEST(WorkersTest, StopRunsWhatWasQueuedThenLaterTasksRunOnTheCaller) {
  std::atomic<int> ran{0};
  Workers workers(2);
  for (int i = 0; i < 100; ++i) workers.submit([&] { ran.fetch_add(1); });
  workers.stop();
  EXPECT_EQ(ran.load(), 100);
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on;
  workers.submit([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, caller);
  workers.stop();  // Idempotent.
}

TEST(WorkersTest, OneThreadRunsTasksInTheOrderSubmitted) {
  std::vector<int> order;
  {
    Workers workers(1);
    for (int i = 0; i < 100; ++i) workers.submit([&, i] { order.push_back(i); });
  }
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
}

// N threads run N tasks at once: N tasks that each wait for all N to have started all finish.
// A pool that ran fewer at once would leave them waiting, and the deadline reports it.
TEST(WorkersTest, NThreadsRunNTasksAtOnce) {
  constexpr int kThreads = 8;
  std::mutex mu;
  std::condition_variable all_started;
  int started = 0;
  std::atomic<int> met{0};
  {
    Workers workers(kThreads);
    for (int i = 0; i < kThreads; ++i) {
      workers.submit([&] {
        std::unique_lock lock(mu);
        ++started;
        all_started.notify_all();
        if (all_started.wait_for(lock, 10s, [&] { return started == kThreads; })) met.fetch_add(1);
      });
    }
  }
  EXPECT_EQ(met.load(), kThreads);
  EXPECT_EQ(started, kThreads);
}

}  // namespace
}  // namespace floodgate::server
