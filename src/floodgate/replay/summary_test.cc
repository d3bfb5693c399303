#include "floodgate/replay/summary.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "floodgate/core/internal/time_math.h"

namespace floodgate::replay {
namespace {

// Instants' differences may not fit in int64.
__extension__ using Wide = __int128;

TEST(TopDenialsTest, ExactWhileSmallAndBoundedAfter) {
  TopDenials small(8);
  for (int i = 0; i < 5; ++i) small.add("a");
  for (int i = 0; i < 3; ++i) small.add("b");
  small.add("c");
  EXPECT_EQ(small.top(2), (std::vector<std::pair<std::string, std::uint64_t>>{{"a", 5}, {"b", 3}}));
  EXPECT_EQ(small.error_bound(), 0u);

  // Many keys: each reported count is within the bound above the true one.
  TopDenials top(16);
  std::map<std::string, std::uint64_t> truth;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 200'000; ++i) {
    const std::string key = "k" + std::to_string(rng() % 8 == 0 ? rng() % 4 : rng() % 5000);
    top.add(key);
    ++truth[key];
  }
  EXPECT_GT(top.error_bound(), 0u);
  const auto reported = top.top(4);
  ASSERT_EQ(reported.size(), 4u);
  for (const auto& [key, count] : reported) {
    EXPECT_GE(count, truth[key]) << key;
    EXPECT_LE(count, truth[key] + top.error_bound()) << key;
    EXPECT_LE(key.size(), 2u) << "the four hot keys k0..k3 lead";
  }
}

TEST(TopDenialsTest, ACapacityOfZeroKeepsOne) {
  // Adversarial report 2026-12, D20: capacity 0 once indexed an empty vector on the second key.
  TopDenials denials(0);
  denials.add("a");
  denials.add("b");
  denials.add("b");
  const auto top = denials.top(5);
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0].first, "b");
}

TEST(PrintableKeyTest, KeepsValidUtf8AndEscapesEverythingElse) {
  EXPECT_EQ(printable_key("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(printable_key("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(printable_key("a\nb\x7f"), "a\\x0ab\\x7f");
  EXPECT_EQ(printable_key("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // A surrogate is not UTF-8.
  EXPECT_EQ(printable_key("\xc0\xaf"), "\\xc0\\xaf");           // Nor an overlong form.
  EXPECT_EQ(printable_key(std::string(70, 'k')), std::string(60, 'k') + "...");
}

// Exact while small (repeats counted once), then within a few standard errors (0.8%) of the
// truth at 300,000 and 3,000,000 distinct keys, in 16 KiB.
TEST(DistinctKeysTest, ExactWhileSmallThenCloseInBoundedMemory) {
  DistinctKeys keys;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 1000; ++i) keys.add("client" + std::to_string(i));
  }
  EXPECT_EQ(keys.count(), 1000u);
  EXPECT_TRUE(keys.exact());
  for (int i = 1000; i < static_cast<int>(DistinctKeys::kExactLimit); ++i) {
    keys.add("client" + std::to_string(i));
  }
  EXPECT_EQ(keys.count(), DistinctKeys::kExactLimit);
  EXPECT_TRUE(keys.exact());
  for (const int n : {300'000, 3'000'000}) {
    for (int i = static_cast<int>(DistinctKeys::kExactLimit); i < n; ++i) {
      keys.add("client" + std::to_string(i));
      if (i % 7 == 0) keys.add("client" + std::to_string(i / 2));  // A repeat.
    }
    EXPECT_FALSE(keys.exact());
    EXPECT_NEAR(static_cast<double>(keys.count()), n, n * 0.03) << n << " keys";
  }
}

TEST(TimeSeriesTest, BucketsWidenAndKeepEveryRequest) {
  TimeSeries series;
  const Instant t0{std::chrono::seconds(1000)};
  std::uint64_t admitted = 0;
  for (int i = 0; i < 100'000; ++i) {
    const bool ok = i % 3 != 0;
    admitted += ok ? 1 : 0;
    series.add(t0 + std::chrono::milliseconds(i * 37), ok);
  }
  series.add(t0 - std::chrono::seconds(5), true);  // Before the first: the series widens left.
  EXPECT_LE(series.origin(), t0 - std::chrono::seconds(5));
  std::uint64_t a = 0, d = 0;
  for (const auto& [x, y] : series.buckets()) {
    a += x;
    d += y;
  }
  EXPECT_EQ(a, admitted + 1);
  EXPECT_EQ(d, 100'000 - admitted);
  EXPECT_LE(series.buckets().size(), TimeSeries::kMaxBuckets);
  EXPECT_GT(series.buckets().size(), TimeSeries::kMaxBuckets / 5) << "widths grow 5x at most";
  EXPECT_EQ(series.origin().time_since_epoch().count() % series.width().count(), 0);
  EXPECT_GE(series.width().count() * static_cast<std::int64_t>(series.buckets().size()),
            std::int64_t{99'999} * 37'000'000);
}

// Every request is counted in the bar its instant falls in, bars being half-open and aligned to
// multiples of their (round) width since the epoch: on random traces of many spans, in random
// order, with many instants exactly on bar boundaries. (Buckets used to double from the first
// request's instant, so a bar's count took buckets that began in it and ran past its end: 94 of
// 121 per-minute bars of a 50,000-line replay were off by more than 2.)
TEST(PlotBarsTest, EveryRequestIsInTheBarItsInstantFallsIn) {
  constexpr std::int64_t kS = 1'000'000'000;
  const std::int64_t spans[] = {kS / 2, 7 * kS, 2 * 3600 * kS, 3 * 86'400 * kS, 400 * 86'400 * kS};
  const std::int64_t bases[] = {1'796'673'425LL * kS + 123'456'789, 0, -5 * kS - 7};
  std::mt19937_64 random(20261207);
  for (const std::int64_t span : spans) {
    for (const std::int64_t base : bases) {
      std::vector<std::pair<std::int64_t, bool>> requests;
      const auto n = static_cast<int>(random() % 20'000) + 1;
      for (int i = 0; i < n; ++i) {
        std::int64_t t =
            base + static_cast<std::int64_t>(random() % static_cast<std::uint64_t>(span));
        // A third exactly on a boundary of a round step (1 ms to a day), or just before one.
        if (i % 3 == 0) {
          const std::int64_t steps[] = {1'000'000, kS, 60 * kS, 3600 * kS, 86'400 * kS};
          const std::int64_t step = steps[random() % 5];
          t = t / step * step - (t % step < 0 ? step : 0) - (i % 2 == 0 ? 0 : 1);
        }
        requests.emplace_back(t, random() % 3 != 0);
      }
      TimeSeries series;
      for (const auto& [t, admitted] : requests) series.add(Instant{Nanos{t}}, admitted);
      const PlotBars bars = plot_bars(series);
      ASSERT_GT(bars.width, 0);
      EXPECT_EQ(bars.first % bars.width, 0) << "aligned to multiples of the width";
      EXPECT_LE(bars.counts.size(), 600u);
      std::vector<std::pair<std::uint64_t, std::uint64_t>> expected(bars.counts.size());
      for (const auto& [t, admitted] : requests) {
        const Wide offset = static_cast<Wide>(t) - bars.first;
        ASSERT_GE(offset, 0) << t;
        const auto bar = static_cast<std::size_t>(offset / bars.width);
        ASSERT_LT(bar, expected.size()) << t;
        (admitted ? expected[bar].first : expected[bar].second) += 1;
      }
      EXPECT_EQ(bars.counts, expected) << "span " << span << ", base " << base << ", width "
                                       << bars.width << ", " << n << " requests";
    }
  }
}

TEST(RenderSvgTest, EachBarSaysItsIntervalAndCountsInATooltip) {
  TimeSeries series;
  const Instant minute{std::chrono::seconds(1'796'673'420)};  // 2026-12-07T19:57:00Z.
  for (int i = 0; i < 7200; ++i) series.add(minute + std::chrono::seconds(i), i % 60 != 0);
  series.add(minute + std::chrono::minutes(5), false);  // A request at a bar's start is in it.
  const std::string svg =
      render_svg(series, {.title = "t", .quota = std::nullopt, .quota_label = ""});
  // Two hours: 30 s bars.
  EXPECT_NE(svg.find("<title>2026-12-07 20:02:00 to 2026-12-07 20:02:30 UTC: 31 requests, 29 "
                     "admitted, 2 denied</title>"),
            std::string::npos)
      << svg.substr(0, 3000);
  EXPECT_NE(svg.find("<title>2026-12-07 19:57:00 to 2026-12-07 19:57:30 UTC: 30 requests, 29 "
                     "admitted, 1 denied</title>"),
            std::string::npos);
}

// The y axis follows the bars: a quota far above them (1000/s against a few requests a second)
// is said at the top with its value instead of flattening the bars to 0.1 px.
TEST(RenderSvgTest, AQuotaAboveTheBarsIsAMarkerNotTheScale) {
  TimeSeries series;
  const Instant t0{std::chrono::seconds(1'796'673'420)};
  for (int i = 0; i < 240; ++i) series.add(t0 + std::chrono::seconds(i), true);
  const std::string svg = render_svg(
      series, {.title = "t", .quota = Quota::per_second(1000), .quota_label = "quota 1000/s"});
  EXPECT_NE(svg.find("quota above the scale: 1000 per bar"), std::string::npos) << svg;
  EXPECT_EQ(svg.find("<line x1=\"70\" x2=\"940\" y1=\"50.0\" y2=\"50.0\" stroke=\"#1f4e9c\""),
            std::string::npos);
  // One request a 1 s bar: the axis ends near 1, not near 1000.
  EXPECT_NE(svg.find("text-anchor=\"end\">1</text>"), std::string::npos) << svg.substr(0, 2000);
  EXPECT_EQ(svg.find(">1000</text>"), std::string::npos);

  // Within the bars' range, it is a dashed line across the plot.
  const std::string within =
      render_svg(series, {.title = "t", .quota = Quota::per_second(1), .quota_label = "quota 1/s"});
  EXPECT_EQ(within.find("quota above the scale"), std::string::npos);
  EXPECT_NE(within.find("stroke=\"#1f4e9c\" stroke-width=\"2\" stroke-dasharray"),
            std::string::npos);
}

TEST(RenderSvgTest, ALeadBarShowsTheCalmBeforeTheFirstRequest) {
  TimeSeries series;
  const Instant t0{std::chrono::seconds(1'796'673'420)};
  for (int i = 0; i < 240; ++i) series.add(t0 + std::chrono::seconds(i), true);
  const PlotBars bars = plot_bars(series);
  const std::string plain = render_svg(
      series, {.title = "t", .quota = std::nullopt, .quota_label = "", .lead_bar = false});
  const std::string lead = render_svg(
      series, {.title = "t", .quota = std::nullopt, .quota_label = "", .lead_bar = true});
  EXPECT_NE(plain.find("<rect x=\"70.00\""), std::string::npos) << "a request in the first bar";
  EXPECT_EQ(lead.find("<rect x=\"70.00\""), std::string::npos) << "the first bar is empty";
  EXPECT_EQ(bars.first, t0.time_since_epoch().count());
}

TEST(RenderSvgTest, InstantsAtBothEndsOfTheRangeDrawAFewHundredBars) {
  TimeSeries series;
  const Instant lowest{Nanos{-internal::kTimeLimit}};
  const Instant highest{Nanos{internal::kTimeLimit}};
  series.add(lowest, true);
  series.add(highest, false);
  series.add(Instant{}, false);
  const std::string svg =
      render_svg(series, {.title = "extremes", .quota = Quota::per_second(1), .quota_label = "q"});
  EXPECT_TRUE(svg.ends_with("</svg>\n"));
  std::size_t bars = 0;
  for (std::size_t at = svg.find("<rect x="); at != std::string::npos;
       at = svg.find("<rect x=", at + 1)) {
    ++bars;
  }
  EXPECT_EQ(bars, 3u + 2u) << "three requests' bars and the two legend boxes";
  EXPECT_NE(svg.find("one bar per"), std::string::npos);
}

TEST(RenderSvgTest, DrawsBarsTheQuotaAndEscapedLabels) {
  TimeSeries series;
  const Instant day{std::chrono::seconds(1'700'000'000)};
  for (int i = 0; i < 1000; ++i) series.add(day + std::chrono::seconds(i), i % 4 != 0);
  const std::string svg = render_svg(
      series,
      {.title = "keys <&> \"quoted\"", .quota = Quota::per_second(1), .quota_label = "quota 1/s"});
  EXPECT_TRUE(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_TRUE(svg.ends_with("</svg>\n"));
  EXPECT_NE(svg.find("keys &lt;&amp;&gt; &quot;quoted&quot;"), std::string::npos);
  EXPECT_NE(svg.find("fill=\"#2e8b57\""), std::string::npos) << "admitted bars";
  EXPECT_NE(svg.find("fill=\"#d9534f\""), std::string::npos) << "denied bars";
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos) << "the quota line";
  EXPECT_NE(svg.find("UTC, from 2023-11-14"), std::string::npos) << "a date axis";
  EXPECT_EQ(svg.find("<script"), std::string::npos);
}

TEST(RenderSvgTest, LabelsThatAreNotUtf8StayWellFormed) {
  // Adversarial report 2026-12, D11: bytes that are not UTF-8 became raw bytes in the XML.
  TimeSeries series;
  series.add(Instant{}, true);
  const std::string svg = render_svg(series, {.title = "key \xff\xfe caf\xc3\xa9 \x01 \xef\xbf\xbf",
                                              .quota = std::nullopt,
                                              .quota_label = ""});
  EXPECT_NE(svg.find("key \xef\xbf\xbd\xef\xbf\xbd caf\xc3\xa9 ? \xef\xbf\xbd"), std::string::npos);
  EXPECT_EQ(svg.find("\xff"), std::string::npos);
}

}  // namespace
}  // namespace floodgate::replay
