// Writes the sample access log that `make run` replays (data/access.log.gz, gzip of this
// program's output): one day of synthetic traffic in Combined Log Format, 2026-11-27 UTC, from
// documentation-only addresses (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).
//
//   - 3,000 visits by about 1,800 ordinary visitors, busier in the afternoon than at night; each
//   visit is a few
//     page views, each page view a burst of the page and its assets within a second;
//   - a crawler, 198.51.100.247, asking for 2 pages a second for an hour in the morning;
//   - a scraper, 203.0.113.250, bursting at about 40 requests a second for two minutes, three
//     times;
//   - a client stuck in a retry loop, 2001:db8:bad::1, 25 requests a second for five minutes;
//   - an internal monitor, 2001:db8:ffff::10, one request every 30 s all day.
//
// Deterministic: the same program writes the same bytes (a test checks the committed file).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace {

struct Line {
  std::int64_t ms;  // Milliseconds since the day began.
  std::string client;
  std::string request;
  int status;
  int bytes;
  std::string agent;
};

constexpr std::int64_t kDayMs = 24 * 3600 * 1000;
constexpr std::time_t kDay = 1795737600;  // 2026-11-27T00:00:00Z.

const char* const kBrowsers[] = {
    "Mozilla/5.0 (Windows NT 10.0) Chrome/130.0", "Mozilla/5.0 (Macintosh) Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0", "Mozilla/5.0 (iPhone) Mobile/15E148"};

std::string client_address(int i) {
  char buf[48];
  if (i < 700) {
    static const char* const kNets[] = {"192.0.2.", "198.51.100.", "203.0.113."};
    // .1 to .234: the heavy clients below have addresses of their own, above .240.
    std::snprintf(buf, sizeof buf, "%s%d", kNets[i % 3], 1 + i / 3);
  } else {
    std::snprintf(buf, sizeof buf, "2001:db8:%x:%x::%x", 0x100 + i % 97, i / 97, 1 + i % 13);
  }
  return buf;
}

}  // namespace

int main() {
  std::mt19937_64 rng(20261127);
  std::vector<Line> lines;
  const auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  // Ordinary visitors: visit starts follow a daily curve (thinning a uniform stream).
  const int kVisitors = 1800;
  for (int visit = 0; visit < 3000;) {
    const double t = uniform(0, 1);
    const double hour = t * 24;
    const double load = 0.15 + 0.85 * std::pow(std::sin((hour - 4) / 24 * 3.14159265), 2);
    if (uniform(0, 1) > load) continue;
    ++visit;
    // A few visitors come back often (a Zipf-like pick).
    const int who = static_cast<int>(std::pow(uniform(0, 1), 3.0) * kVisitors);
    const std::string client = client_address(who);
    const std::string agent = kBrowsers[static_cast<std::size_t>(who) % 4];
    std::int64_t ms = static_cast<std::int64_t>(t * kDayMs);
    const int pages = 1 + static_cast<int>(rng() % 6);
    for (int p = 0; p < pages && ms < kDayMs; ++p) {
      const int product = static_cast<int>(rng() % 500);
      const std::string page = p == 0 ? "/"
                                      : (rng() % 3 == 0 ? "/search?q=item" + std::to_string(product)
                                                        : "/products/" + std::to_string(product));
      lines.push_back({ms, client, "GET " + page + " HTTP/2.0", 200,
                       static_cast<int>(8000 + rng() % 40000), agent});
      const int assets = 2 + static_cast<int>(rng() % 5);
      for (int a = 0; a < assets; ++a) {
        const std::int64_t at = ms + 20 + static_cast<std::int64_t>(rng() % 600);
        const bool cached = rng() % 3 == 0;
        lines.push_back({at, client,
                         "GET /static/" + std::string(a % 2 == 0 ? "img/" : "app.") +
                             std::to_string(a) + (a % 2 == 0 ? ".webp" : ".js") + " HTTP/2.0",
                         cached ? 304 : 200, cached ? 0 : static_cast<int>(2000 + rng() % 90000),
                         agent});
      }
      ms += 4000 + static_cast<std::int64_t>(rng() % 60000);  // Reading the page.
    }
  }
  // The crawler: 2 pages a second, 06:00 to 07:00.
  for (std::int64_t ms = 6 * 3600 * 1000; ms < 7 * 3600 * 1000; ms += 500) {
    lines.push_back({ms + static_cast<std::int64_t>(rng() % 100), "198.51.100.247",
                     "GET /products/" + std::to_string(rng() % 5000) + " HTTP/1.1", 200,
                     static_cast<int>(9000 + rng() % 30000),
                     "ExampleBot/2.1 (+https://bot.example/)"});
  }
  // The scraper: three two-minute bursts at about 40 a second in the afternoon.
  for (int burst = 0; burst < 3; ++burst) {
    const std::int64_t start = (13 * 3600 + burst * 1700) * std::int64_t{1000};
    for (std::int64_t ms = start; ms < start + 120'000;) {
      lines.push_back({ms, "203.0.113.250",
                       "GET /api/v1/prices?page=" + std::to_string(rng() % 900) + " HTTP/1.1", 200,
                       static_cast<int>(500 + rng() % 3000), "python-requests/2.32.3"});
      ms += 5 + static_cast<std::int64_t>(rng() % 45);
    }
  }
  // The retry loop: 25 a second for five minutes at 19:30, all failing.
  for (std::int64_t ms = 70'200'000; ms < 70'500'000; ms += 40) {
    lines.push_back(
        {ms, "2001:db8:bad::1", "POST /api/v1/orders HTTP/1.1", 503, 0, "okhttp/4.12.0"});
  }
  // The monitor.
  for (std::int64_t ms = 0; ms < kDayMs; ms += 30'000) {
    lines.push_back({ms, "2001:db8:ffff::10", "GET /healthz HTTP/1.1", 200, 2, "monitor/1.0"});
  }
  std::stable_sort(lines.begin(), lines.end(),
                   [](const Line& a, const Line& b) { return a.ms < b.ms; });
  for (const Line& l : lines) {
    if (l.ms >= kDayMs) continue;
    const std::time_t secs = kDay + static_cast<std::time_t>(l.ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char when[40];
    std::strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    std::printf("%s - - [%s] \"%s\" %d %d \"-\" \"%s\"\n", l.client.c_str(), when,
                l.request.c_str(), l.status, l.bytes, l.agent.c_str());
  }
  return 0;
}
