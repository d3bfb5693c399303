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

// Threads start as tasks need them: tasks that block each get a thread of their own; a task
// submitted while a thread is idle runs on it.
TEST(WorkersTest, StartsAThreadOnlyForATaskThatFindsNoneIdle) {
  Workers workers(64);
  EXPECT_EQ(workers.threads(), 0u);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  int finished = 0;
  for (int i = 1; i <= 5; ++i) {
    workers.submit([&] {
      std::unique_lock lock(mu);
      cv.wait_for(lock, 10s, [&] { return release; });
      ++finished;
      cv.notify_all();
    });
    EXPECT_EQ(workers.threads(), static_cast<std::size_t>(i)) << "every thread is busy";
  }
  {
    std::unique_lock lock(mu);
    release = true;
    cv.notify_all();
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return finished == 5; }));
  }
  // Once the five are idle again, tasks one at a time start no thread.
  std::atomic<bool> done{true};
  const auto settled = [&] {
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (!(done.load() && workers.idle() == workers.threads()) &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::yield();
    }
    return done.load() && workers.idle() == workers.threads();
  };
  ASSERT_TRUE(settled());
  for (int i = 0; i < 20; ++i) {
    done = false;
    workers.submit([&] { done = true; });
    ASSERT_TRUE(settled()) << "task " << i;
  }
  EXPECT_EQ(workers.threads(), 5u);
  workers.stop();
}

TEST(WorkersTest, NeverStartsMoreThanTheMaximum) {
  constexpr int kMax = 4;
  constexpr int kTasks = 40;
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::atomic<int> ran{0};
  {
    Workers workers(kMax);
    for (int i = 0; i < kTasks; ++i) {
      workers.submit([&] {
        const int now = running.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::yield();
        running.fetch_sub(1);
        ran.fetch_add(1);
      });
    }
    EXPECT_LE(workers.threads(), static_cast<std::size_t>(kMax));
  }
  EXPECT_EQ(ran.load(), kTasks);
  EXPECT_LE(most.load(), kMax);
}

}  // namespace
}  // namespace floodgate::server
