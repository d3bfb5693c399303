// Scheduling work with reservations instead of blocking threads: a Boost.Asio event loop takes
// jobs, reserves a permit for each from a GcraLimiter, and runs each job on a steady_timer when
// its permit is ready. One thread serves them all, so the limiter is the single-thread type
// (`Threads::One`: no atomic instructions).
//
// - A job whose permit would take longer than its budget is refused at once (a server's 429),
//   and takes nothing from the limiter.
// - A client that goes away cancels its job: the timer stops and the permit goes back.
// - An operator doubles the rate halfway through, and a second wave of jobs arrives: jobs queued
//   before the change keep their instants, and the new ones queue behind them at the new rate.
//
// It checks, as it goes, that no job ran before its permit was ready, and at the end that
// every job was served, refused or cancelled; it exits 1 otherwise.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

#include "floodgate/floodgate.h"

namespace {

using namespace std::chrono_literals;

class Scheduler {
 public:
  using Limiter = floodgate::GcraLimiter<floodgate::SteadyClock, floodgate::Threads::One>;

  Scheduler(boost::asio::io_context& io, Limiter& limiter) : io_(io), limiter_(limiter) {}

  // Runs job `id` when a permit is ready, or refuses it if that is more than `budget` away.
  void submit(int id, floodgate::Nanos budget) {
    floodgate::Reservation permit = limiter_.reserve(1, budget);
    if (!permit.allowed()) {
      ++refused_;
      return;
    }
    auto job = std::make_shared<Job>(id, std::move(permit), io_);
    pending_[id] = job;
    arm(job);
  }

  // The client of job `id` went away: stop its timer and give its permit back.
  void cancel(int id) {
    const auto it = pending_.find(id);
    if (it == pending_.end()) return;
    it->second->timer.cancel();
    (void)it->second->permit.cancel_at(limiter_.clock().now());
    pending_.erase(it);
    ++cancelled_;
  }

  int served() const { return served_; }
  int refused() const { return refused_; }
  int cancelled() const { return cancelled_; }
  int early() const { return early_; }

 private:
  struct Job {
    Job(int job_id, floodgate::Reservation r, boost::asio::io_context& io)
        : id(job_id), permit(std::move(r)), timer(io) {}
    int id;
    floodgate::Reservation permit;
    boost::asio::steady_timer timer;
  };

  void arm(const std::shared_ptr<Job>& job) {
    job->timer.expires_at(job->permit.ready_at());  // An Instant is a steady_clock time point.
    job->timer.async_wait([this, job](const boost::system::error_code& ec) {
      if (ec) return;  // Cancelled.
      run(*job);
    });
  }

  void run(const Job& job) {
    if (limiter_.clock().now() < job.permit.ready_at()) ++early_;
    ++served_;
    pending_.erase(job.id);
  }

  boost::asio::io_context& io_;
  Limiter& limiter_;
  std::map<int, std::shared_ptr<Job>> pending_;
  int served_ = 0;
  int refused_ = 0;
  int cancelled_ = 0;
  int early_ = 0;
};

}  // namespace

int main() {
  boost::asio::io_context io;
  // 200 per second, 5 at once: after the first 5, one job every 5 ms.
  Scheduler::Limiter limiter{floodgate::Quota::per_second(200).with_burst(5)};
  Scheduler scheduler(io, limiter);

  // 40 requests arrive together, each willing to wait 100 ms: about 25 fit, the rest are
  // refused at once.
  constexpr int kJobs = 40;
  const auto start = std::chrono::steady_clock::now();
  for (int id = 0; id < kJobs; ++id) scheduler.submit(id, 100ms);
  scheduler.cancel(20);  // One client goes away.

  // 30 ms in, an operator doubles the rate and 20 more requests arrive, each willing to wait
  // 100 ms: they queue behind the first wave, 2.5 ms apart.
  constexpr int kSecondWave = 20;
  boost::asio::steady_timer operator_timer(io);
  operator_timer.expires_after(30ms);
  operator_timer.async_wait([&](const boost::system::error_code& ec) {
    if (ec) return;
    limiter.set_quota(floodgate::Quota::per_second(400).with_burst(5));
    for (int id = kJobs; id < kJobs + kSecondWave; ++id) scheduler.submit(id, 100ms);
  });

  io.run();
  const auto took = std::chrono::steady_clock::now() - start;
  std::printf("served %d, refused %d, cancelled %d of %d jobs in %lld ms on one thread\n",
              scheduler.served(), scheduler.refused(), scheduler.cancelled(), kJobs + kSecondWave,
              static_cast<long long>(took / 1ms));
  const bool accounted =
      scheduler.served() + scheduler.refused() + scheduler.cancelled() == kJobs + kSecondWave;
  if (!accounted || scheduler.early() != 0) {
    std::printf("FAILED: %d job(s) ran before their permit was ready\n", scheduler.early());
    return 1;
  }
  std::printf("every job accounted for; none ran before its permit was ready\n");
  return 0;
}
