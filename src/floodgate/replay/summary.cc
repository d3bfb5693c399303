#include "floodgate/replay/summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace floodgate::replay {

void TopDenials::add(std::string_view key) {
  auto it = counts_.find(key);
  if (it != counts_.end()) {
    ++it->second;
    return;
  }
  if (counts_.size() >= 2 * capacity_) {
    // Keep the `capacity_` most denied; what is forgotten bounds every later count's error.
    std::vector<std::uint64_t> all;
    all.reserve(counts_.size());
    for (const auto& [k, count] : counts_) all.push_back(count);
    std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(capacity_), all.end(),
                     std::greater<>());
    const std::uint64_t keep_above = all[capacity_];
    std::erase_if(counts_, [&](const auto& item) {
      if (item.second > keep_above) return false;
      error_bound_ = std::max(error_bound_, item.second);
      return true;
    });
  }
  // What this key may have had before it was forgotten is at most the highest count forgotten.
  counts_.emplace(std::string(key), error_bound_ + 1);
}

std::vector<std::pair<std::string, std::uint64_t>> TopDenials::top(std::size_t n) const {
  std::vector<std::pair<std::string, std::uint64_t>> all(counts_.begin(), counts_.end());
  const auto order = [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  const std::size_t k = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(), order);
  all.resize(k);
  return all;
}

void TimeSeries::add(Instant t, bool admitted) {
  if (buckets_.empty()) {
    origin_ = t;
    buckets_.emplace_back(0, 0);
  }
  const std::int64_t offset = std::max<std::int64_t>(0, (t - origin_).count());
  std::uint64_t index = static_cast<std::uint64_t>(offset / width_);
  while (index >= kMaxBuckets) {
    // Twice as wide: merge pairs.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> merged((buckets_.size() + 1) / 2);
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      merged[i / 2].first += buckets_[i].first;
      merged[i / 2].second += buckets_[i].second;
    }
    buckets_ = std::move(merged);
    width_ = width_ > INT64_MAX / 2 ? INT64_MAX : width_ * 2;
    index = static_cast<std::uint64_t>(offset / width_);
  }
  if (index >= buckets_.size()) buckets_.resize(index + 1);
  (admitted ? buckets_[index].first : buckets_[index].second) += 1;
}

namespace {

std::string escape_xml(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
    }
  }
  return out;
}

// printf into a string. Every caller passes a literal format of at most four doubles.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
std::string format(const char* fmt, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c, d);
  return buf;
}
#pragma GCC diagnostic pop

// A step of 1, 2 or 5 times a power of ten, giving about `ticks` ticks over `range`.
double nice_step(double range, int ticks) {
  const double raw = range / ticks;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * power) return m * power;
  }
  return 10 * power;
}

// Round durations for bars and ticks, from 1 ms to a week.
constexpr std::int64_t kMs = 1'000'000, kS = 1000 * kMs, kMin = 60 * kS, kHour = 60 * kMin;
constexpr std::int64_t kRound[] = {
    kMs,       2 * kMs,   5 * kMs,   10 * kMs,  20 * kMs,   50 * kMs,   100 * kMs,
    200 * kMs, 500 * kMs, kS,        2 * kS,    5 * kS,     10 * kS,    15 * kS,
    30 * kS,   kMin,      2 * kMin,  5 * kMin,  10 * kMin,  15 * kMin,  30 * kMin,
    kHour,     2 * kHour, 3 * kHour, 6 * kHour, 12 * kHour, 24 * kHour, 7 * 24 * kHour};

// Returns the smallest round duration of at least `ns`: one of kRound, or whole weeks.
std::int64_t round_up(std::int64_t ns) {
  for (const std::int64_t r : kRound) {
    if (r >= ns) return r;
  }
  constexpr std::int64_t kWeek = kRound[std::size(kRound) - 1];
  return (ns / kWeek + (ns % kWeek != 0 ? 1 : 0)) * kWeek;
}

std::int64_t floor_to(std::int64_t t, std::int64_t step) {
  return t / step * step - (t % step < 0 ? step : 0);
}

std::string duration_text(std::int64_t ns) {
  if (ns % kHour == 0) return std::to_string(ns / kHour) + " h";
  if (ns % kMin == 0) return std::to_string(ns / kMin) + " min";
  if (ns % kS == 0) return std::to_string(ns / kS) + " s";
  return std::to_string(ns / kMs) + " ms";
}

}  // namespace

std::string render_svg(const TimeSeries& series, const PlotLabels& labels) {
  constexpr double kWidth = 960, kHeight = 440;
  constexpr double kLeft = 70, kRight = 20, kTop = 50, kBottom = 60;
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  // Regroup the series into round bars, aligned to multiples of their width since the epoch.
  const auto& fine = series.buckets();
  const std::int64_t fine_width = series.width().count();
  const std::int64_t origin = series.origin().time_since_epoch().count();
  // Instants span at most 2^63 ns, but sums of them may not fit in int64: count in 128 bits.
  __extension__ using Wide = __int128;
  const Wide span = Wide{fine_width} * static_cast<Wide>(std::max<std::size_t>(fine.size(), 1));
  const std::int64_t width =
      round_up(static_cast<std::int64_t>(std::max<Wide>(fine_width, span / 240)));
  const std::int64_t first = floor_to(origin, width);
  const Wide end = origin + span;
  const auto n = static_cast<std::size_t>((end - first + width - 1) / width);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> bars(std::max<std::size_t>(n, 1));
  for (std::size_t i = 0; i < fine.size(); ++i) {
    const Wide start = origin + Wide{fine_width} * static_cast<Wide>(i);
    const auto bar = std::min(bars.size() - 1, static_cast<std::size_t>((start - first) / width));
    bars[bar].first += fine[i].first;
    bars[bar].second += fine[i].second;
  }
  std::uint64_t peak = 0;
  for (const auto& [a, d] : bars) peak = std::max(peak, a + d);
  double quota_per_bar = -1;
  if (labels.quota) {
    quota_per_bar = static_cast<double>(labels.quota->count()) * static_cast<double>(width) /
                    static_cast<double>(labels.quota->period().count());
  }
  const double y_max = std::max({1.0, static_cast<double>(peak), quota_per_bar}) * 1.08;
  const double t_span = static_cast<double>(width) * static_cast<double>(bars.size());
  const double bar_w = plot_w / static_cast<double>(bars.size());
  const auto y_of = [&](double v) { return kTop + plot_h - v / y_max * plot_h; };
  const auto x_of = [&](Wide t) {
    return kLeft + static_cast<double>(t - first) / t_span * plot_w;
  };

  std::string svg;
  svg += format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      kWidth, kHeight, kWidth, kHeight);
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + format("%g", kLeft) + "\" y=\"22\" font-size=\"15\" font-weight=\"bold\">" +
         escape_xml(labels.title) + "</text>\n";
  // Horizontal grid and y labels.
  const double y_step = nice_step(y_max, 5);
  for (double v = 0; v <= y_max; v += y_step) {
    svg += format("<line x1=\"%g\" x2=\"%g\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", kLeft,
                  kLeft + plot_w, y_of(v), y_of(v));
    svg += format("<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", kLeft - 6,
                  y_of(v) + 4, v);
  }
  // Bars: admitted below, denied stacked on top.
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const auto [admitted, denied] = bars[i];
    const double x = kLeft + bar_w * static_cast<double>(i);
    const double a = static_cast<double>(admitted), d = static_cast<double>(denied);
    const double w = std::max(bar_w * 0.9, 0.5);
    if (admitted > 0) {
      svg +=
          format("<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#2e8b57\"/>\n",
                 x, y_of(a), w, kTop + plot_h - y_of(a));
    }
    if (denied > 0) {
      svg +=
          format("<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#d9534f\"/>\n",
                 x, y_of(a + d), w, y_of(a) - y_of(a + d));
    }
  }
  // The quota line.
  if (quota_per_bar >= 0) {
    svg += format(
        "<line x1=\"%g\" x2=\"%g\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#1f4e9c\" stroke-width=\"2\" "
        "stroke-dasharray=\"6 4\"/>\n",
        kLeft, kLeft + plot_w, y_of(quota_per_bar), y_of(quota_per_bar));
  }
  // Axes.
  svg += format("<line x1=\"%g\" x2=\"%g\" y1=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", kLeft,
                kLeft + plot_w, kTop + plot_h, kTop + plot_h);
  svg += format("<line x1=\"%g\" x2=\"%g\" y1=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", kLeft, kLeft,
                kTop, kTop + plot_h);
  // Time ticks at round instants.
  const bool dates = origin > 978'307'200'000'000'000LL;  // After 2001-01-01.
  const std::int64_t tick = round_up(static_cast<std::int64_t>(t_span / 8));
  for (Wide wide_t = floor_to(first, tick); wide_t <= first + static_cast<Wide>(t_span);
       wide_t += tick) {
    if (wide_t < first || wide_t > INT64_MAX) continue;
    const auto t = static_cast<std::int64_t>(wide_t);
    const double x = x_of(t);
    std::string label;
    if (dates) {
      const std::time_t secs = static_cast<std::time_t>(floor_to(t, kS) / kS);
      std::tm tm{};
      gmtime_r(&secs, &tm);
      char buf[32];
      std::strftime(buf, sizeof buf,
                    tick >= 24 * kHour ? "%b %d"
                    : tick >= kMin     ? "%H:%M"
                                       : "%H:%M:%S",
                    &tm);
      label = buf;
      if (tick < kS) label += format(".%03.0f", static_cast<double>((t % kS) / kMs));
    } else {
      label = format("%g s", static_cast<double>(t) / 1e9);
    }
    svg += format("<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", x, x,
                  kTop + plot_h, kTop + plot_h + 5);
    svg += "<text x=\"" + format("%.1f", x) + "\" y=\"" + format("%g", kTop + plot_h + 18) +
           "\" text-anchor=\"middle\">" + label + "</text>\n";
  }
  std::string x_title = "time";
  if (dates) {
    const std::time_t secs = static_cast<std::time_t>(floor_to(first, kS) / kS);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    x_title += std::string(" (UTC, from ") + buf + ")";
  } else {
    x_title += " (seconds since the epoch of the trace)";
  }
  x_title += "; one bar per " + duration_text(width);
  svg += "<text x=\"" + format("%g", kLeft + plot_w / 2) + "\" y=\"" + format("%g", kHeight - 14) +
         "\" text-anchor=\"middle\">" + escape_xml(x_title) + "</text>\n";
  svg += format(
      "<text transform=\"translate(16 %g) rotate(-90)\" text-anchor=\"middle\">requests per "
      "bar</text>\n",
      kTop + plot_h / 2);
  // Legend.
  const double lx = kWidth - kRight - 380;
  svg += format("<rect x=\"%g\" y=\"30\" width=\"12\" height=\"12\" fill=\"#2e8b57\"/>", lx);
  svg += format("<text x=\"%g\" y=\"40\">admitted</text>\n", lx + 16);
  svg += format("<rect x=\"%g\" y=\"30\" width=\"12\" height=\"12\" fill=\"#d9534f\"/>", lx + 85);
  svg += format("<text x=\"%g\" y=\"40\">denied</text>\n", lx + 101);
  if (quota_per_bar >= 0) {
    svg += format(
        "<line x1=\"%g\" x2=\"%g\" y1=\"36\" y2=\"36\" stroke=\"#1f4e9c\" stroke-width=\"2\" "
        "stroke-dasharray=\"6 4\"/>",
        lx + 160, lx + 185);
    svg += "<text x=\"" + format("%g", lx + 190) + "\" y=\"40\">" + escape_xml(labels.quota_label) +
           "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace floodgate::replay
