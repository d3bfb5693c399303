#include "floodgate/replay/summary.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <utility>

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

namespace {

constexpr int kRegisterBits = 14;  // 2^14 HyperLogLog registers.

// A 64-bit hash of `key` whose every bit is mixed (splitmix64's finalizer over the library's
// hash), for HyperLogLog's register index and leading zeros.
std::uint64_t mixed_hash(std::string_view key) {
  std::uint64_t h = std::hash<std::string_view>{}(key);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

}  // namespace

void DistinctKeys::add(std::string_view key) {
  const std::uint64_t hash = mixed_hash(key);
  if (!registers_.empty()) return add_hash(hash);
  if (table_.empty()) table_.assign(1024, 0);
  const std::uint64_t stored = hash == 0 ? 1 : hash;
  const std::size_t mask = table_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    if (table_[i] == stored) return;
    if (table_[i] == 0) {
      table_[i] = stored;
      break;
    }
  }
  if (++distinct_ > kExactLimit) {
    // Past the limit: HyperLogLog from here on, from every hash seen.
    registers_.assign(std::size_t{1} << kRegisterBits, 0);
    for (const std::uint64_t h : table_) {
      if (h != 0) add_hash(h);
    }
    table_ = {};
    return;
  }
  if (distinct_ * 2 > table_.size()) {
    std::vector<std::uint64_t> old =
        std::exchange(table_, std::vector<std::uint64_t>(table_.size() * 2, 0));
    const std::size_t wider = table_.size() - 1;
    for (const std::uint64_t h : old) {
      if (h == 0) continue;
      std::size_t i = h & wider;
      while (table_[i] != 0) i = (i + 1) & wider;
      table_[i] = h;
    }
  }
}

void DistinctKeys::add_hash(std::uint64_t hash) {
  const std::size_t index = hash >> (64 - kRegisterBits);
  const std::uint64_t rest = hash << kRegisterBits;
  const auto rank =
      static_cast<std::uint8_t>(rest == 0 ? 64 - kRegisterBits + 1 : std::countl_zero(rest) + 1);
  registers_[index] = std::max(registers_[index], rank);
}

std::uint64_t DistinctKeys::count() const {
  if (registers_.empty()) return distinct_;
  const double m = static_cast<double>(registers_.size());
  double sum = 0;
  std::size_t zeros = 0;
  for (const std::uint8_t r : registers_) {
    sum += std::ldexp(1.0, -r);
    zeros += r == 0 ? 1 : 0;
  }
  const double alpha = 0.7213 / (1 + 1.079 / m);
  double estimate = alpha * m * m / sum;
  // Few keys for the registers: linear counting of the empty ones is the better estimate.
  if (estimate <= 2.5 * m && zeros > 0) estimate = m * std::log(m / static_cast<double>(zeros));
  return static_cast<std::uint64_t>(std::llround(estimate));
}

namespace {

constexpr std::int64_t kMs = 1'000'000, kS = 1000 * kMs, kMin = 60 * kS, kHour = 60 * kMin;
constexpr std::int64_t kDay = 24 * kHour, kWeek = 7 * kDay;

// Instants span at most 2^63 ns, but sums of them may not fit in int64: count in 128 bits.
__extension__ using Wide = __int128;

// Returns floor(a / b), for b > 0.
Wide floor_div(Wide a, Wide b) { return a / b - (a % b < 0 ? 1 : 0); }

// The widths of a time series' buckets, each a multiple of the one before; past the last, weeks
// double.
constexpr std::int64_t kLadder[] = {kMs,       2 * kMs,   10 * kMs,   20 * kMs,  100 * kMs,
                                    200 * kMs, kS,        2 * kS,     10 * kS,   20 * kS,
                                    kMin,      2 * kMin,  10 * kMin,  20 * kMin, kHour,
                                    2 * kHour, 6 * kHour, 12 * kHour, kDay,      kWeek};

}  // namespace

Instant TimeSeries::origin() const noexcept {
  return Instant{Nanos{static_cast<std::int64_t>(Wide{first_} * width_)}};
}

void TimeSeries::widen() {
  // The next width of the ladder that is a multiple of this one, if one is within 10 times it;
  // else twice this one (past a week: weeks double).
  std::int64_t wider = width_ * 2;
  for (const std::int64_t w : kLadder) {
    if (w > width_ && w % width_ == 0 && w / width_ <= 10) {
      wider = w;
      break;
    }
  }
  const auto start = [&](std::size_t i) { return (Wide{first_} + static_cast<Wide>(i)) * width_; };
  const auto first = static_cast<std::int64_t>(floor_div(start(0), wider));
  std::deque<std::pair<std::uint64_t, std::uint64_t>> merged;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    const auto at = static_cast<std::size_t>(floor_div(start(i), wider) - first);
    if (at >= merged.size()) merged.resize(at + 1);
    merged[at].first += buckets_[i].first;
    merged[at].second += buckets_[i].second;
  }
  buckets_ = std::move(merged);
  first_ = first;
  width_ = wider;
}

void TimeSeries::add(Instant t, bool admitted) {
  // Instants lie within +-2^62 ns, widths are at least 1 ms: 64 bits hold the index.
  const std::int64_t raw = t.time_since_epoch().count();
  const std::int64_t bucket = raw / width_ - (raw % width_ < 0 ? 1 : 0);
  if (bucket >= first_ && bucket - first_ < static_cast<std::int64_t>(buckets_.size())) {
    auto& counts = buckets_[static_cast<std::size_t>(bucket - first_)];
    (admitted ? counts.first : counts.second) += 1;
    return;
  }
  const Wide ns = raw;
  if (buckets_.empty()) {
    first_ = static_cast<std::int64_t>(floor_div(ns, width_));
    buckets_.emplace_back(0, 0);
  }
  for (;;) {
    const Wide index = floor_div(ns, width_);
    const Wide low = std::min<Wide>(index, first_);
    const Wide high = std::max<Wide>(index, Wide{first_} + static_cast<Wide>(buckets_.size()) - 1);
    if (high - low + 1 > static_cast<Wide>(kMaxBuckets)) {
      widen();
      continue;
    }
    if (index < first_) {
      buckets_.insert(buckets_.begin(), static_cast<std::size_t>(first_ - index), {0, 0});
      first_ = static_cast<std::int64_t>(index);
    }
    const auto at = static_cast<std::size_t>(index - first_);
    if (at >= buckets_.size()) buckets_.resize(at + 1);
    (admitted ? buckets_[at].first : buckets_[at].second) += 1;
    return;
  }
}

namespace {

// Returns the length of the valid UTF-8 sequence that starts `text` (1 to 4 bytes, no overlong
// forms, no surrogates, at most U+10FFFF), or 0 if it does not start with one.
std::size_t utf8_length(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char low = 0x80, high = 0xbf;  // The range of the second byte.
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3;
    if (b0 == 0xe0) low = 0xa0;   // Overlong.
    if (b0 == 0xed) high = 0x9f;  // Surrogates.
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4;
    if (b0 == 0xf0) low = 0x90;   // Overlong.
    if (b0 == 0xf4) high = 0x8f;  // Above U+10FFFF.
  } else {
    return 0;
  }
  if (text.size() < n || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
  }
  return n;
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
constexpr std::int64_t kRound[] = {
    kMs,       2 * kMs,   5 * kMs,   10 * kMs,  20 * kMs,   50 * kMs,   100 * kMs,
    200 * kMs, 500 * kMs, kS,        2 * kS,    5 * kS,     10 * kS,    15 * kS,
    30 * kS,   kMin,      2 * kMin,  5 * kMin,  10 * kMin,  15 * kMin,  30 * kMin,
    kHour,     2 * kHour, 3 * kHour, 6 * kHour, 12 * kHour, 24 * kHour, 7 * 24 * kHour};

// Returns the smallest round duration of at least `ns` that `step` divides: one of kRound, or
// whole weeks (a multiple of `step`, if `step` is longer than a week).
std::int64_t round_up(std::int64_t ns, std::int64_t step = 1) {
  for (const std::int64_t r : kRound) {
    if (r >= ns && r % step == 0) return r;
  }
  const std::int64_t unit = std::max(kWeek, step);  // Every step up to a week divides a week.
  return static_cast<std::int64_t>((Wide{ns} + unit - 1) / unit * unit);
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

std::string escape_xml(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    const std::size_t n = utf8_length(text);
    const char c = text.front();
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER.
      text.remove_prefix(1);
      continue;
    }
    if (n > 1) {
      // U+FFFE and U+FFFF are not XML characters either.
      const std::string_view sequence = text.substr(0, n);
      out += sequence == "\xEF\xBF\xBE" || sequence == "\xEF\xBF\xBF" ? "\xEF\xBF\xBD"
                                                                      : std::string(sequence);
      text.remove_prefix(n);
      continue;
    }
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
        out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
    }
    text.remove_prefix(1);
  }
  return out;
}

PlotBars plot_bars(const TimeSeries& series, std::optional<std::pair<Instant, Instant>> window,
                   bool bar_is_bucket) {
  const auto& fine = series.buckets();
  const std::int64_t fine_width = series.width().count();
  const Wide origin = series.origin().time_since_epoch().count();
  Wide from = origin;
  Wide span = Wide{fine_width} * static_cast<Wide>(std::max<std::size_t>(fine.size(), 1));
  if (window) {
    from = window->first.time_since_epoch().count();
    span = std::max<Wide>(1, Wide{window->second.time_since_epoch().count()} - from);
  }
  PlotBars bars;
  bars.width =
      bar_is_bucket
          ? fine_width
          : round_up(static_cast<std::int64_t>(std::max<Wide>(fine_width, span / 240)), fine_width);
  bars.first = static_cast<std::int64_t>(floor_div(from, bars.width) * bars.width);
  const auto n = static_cast<std::size_t>(floor_div(from + span - 1 - bars.first, bars.width) + 1);
  bars.counts.resize(std::max<std::size_t>(n, 1));
  for (std::size_t i = 0; i < fine.size(); ++i) {
    // The bar's width is a multiple of the bucket's, both aligned to the epoch: the bucket lies
    // inside one bar.
    const Wide start = origin + Wide{fine_width} * static_cast<Wide>(i);
    const Wide bar = floor_div(start - bars.first, bars.width);
    if (bar < 0 || bar >= static_cast<Wide>(bars.counts.size())) continue;  // Off the window.
    bars.counts[static_cast<std::size_t>(bar)].first += fine[i].first;
    bars.counts[static_cast<std::size_t>(bar)].second += fine[i].second;
  }
  return bars;
}

namespace {

// Where things go on the page.
struct Frame {
  static constexpr double kWidth = 960, kHeight = 440;
  static constexpr double kLeft = 70, kRight = 20, kTop = 50, kBottom = 60;
  static constexpr double kPlotW = kWidth - kLeft - kRight, kPlotH = kHeight - kTop - kBottom;

  std::int64_t first;  // The instant at the left edge.
  double t_span;       // Nanoseconds across the plot.
  double y_max;        // Requests per bar at the top.

  double y_of(double v) const { return kTop + kPlotH - v / y_max * kPlotH; }
  double x_of(Wide t) const { return kLeft + static_cast<double>(t - first) / t_span * kPlotW; }
};

void draw_grid(std::string& svg, const Frame& f) {
  const double y_step = nice_step(f.y_max, 5);
  for (double v = 0; v <= f.y_max; v += y_step) {
    svg += format("<line x1=\"%g\" x2=\"%g\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                  Frame::kLeft, Frame::kLeft + Frame::kPlotW, f.y_of(v), f.y_of(v));
    svg += format("<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", Frame::kLeft - 6,
                  f.y_of(v) + 4, v);
  }
}

// Returns instant `t` for a bar's tooltip: a UTC date and time for `dates` (with milliseconds
// when `width` is not whole seconds), else seconds with three decimals.
std::string instant_text(Wide t, std::int64_t width, bool dates) {
  const Wide ms = floor_div(t, kMs);
  if (!dates) {
    const Wide whole = floor_div(ms, 1000);
    return std::to_string(static_cast<std::int64_t>(whole)) +
           format(".%03.0f s", static_cast<double>(ms - whole * 1000));
  }
  const auto secs = static_cast<std::time_t>(floor_div(t, kS));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  std::string text = buf;
  if (width % kS != 0) {
    text += format(".%03.0f", static_cast<double>(ms - floor_div(t, kS) * 1000));
  }
  return text;
}

// Admitted below, denied stacked on top; each bar's interval and counts in its <title>.
void draw_bars(std::string& svg, const Frame& f, const PlotBars& bars, bool dates) {
  const double bar_w = Frame::kPlotW / static_cast<double>(bars.counts.size());
  for (std::size_t i = 0; i < bars.counts.size(); ++i) {
    const auto [admitted, denied] = bars.counts[i];
    const double x = Frame::kLeft + bar_w * static_cast<double>(i);
    const double a = static_cast<double>(admitted), d = static_cast<double>(denied);
    const double w = std::max(bar_w * 0.9, 0.5);
    if (admitted + denied == 0) continue;
    const Wide start = Wide{bars.first} + Wide{bars.width} * static_cast<Wide>(i);
    svg += "<g><title>" + instant_text(start, bars.width, dates) + " to " +
           instant_text(start + bars.width, bars.width, dates) + (dates ? " UTC" : "") + ": " +
           std::to_string(admitted + denied) + " requests, " + std::to_string(admitted) +
           " admitted, " + std::to_string(denied) + " denied</title>\n";
    if (admitted > 0) {
      svg +=
          format("<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#2e8b57\"/>\n",
                 x, f.y_of(a), w, Frame::kTop + Frame::kPlotH - f.y_of(a));
    }
    if (denied > 0) {
      svg +=
          format("<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#d9534f\"/>\n",
                 x, f.y_of(a + d), w, f.y_of(a) - f.y_of(a + d));
    }
    svg += "</g>\n";
  }
}

void draw_quota_line(std::string& svg, const Frame& f, double quota_per_bar) {
  svg += format(
      "<line x1=\"%g\" x2=\"%g\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#1f4e9c\" stroke-width=\"2\" "
      "stroke-dasharray=\"6 4\"/>\n",
      Frame::kLeft, Frame::kLeft + Frame::kPlotW, f.y_of(quota_per_bar), f.y_of(quota_per_bar));
}

// The quota is above every bar: said at the top of the plot, with its value, rather than drawn
// so high that the bars would be flat.
void draw_quota_off_scale(std::string& svg, double quota_per_bar) {
  const double x = Frame::kLeft + Frame::kPlotW;
  svg += format("<path d=\"M %g %g l 5 -8 l 5 8 z\" fill=\"#1f4e9c\"/>\n", x - 10, Frame::kTop - 2);
  svg += "<text x=\"" + format("%g", x - 14) + "\" y=\"" + format("%g", Frame::kTop - 3) +
         "\" text-anchor=\"end\" fill=\"#1f4e9c\">quota above the scale: " +
         format("%.6g", quota_per_bar) + " per bar</text>\n";
}

void draw_axes(std::string& svg) {
  constexpr double kLeft = Frame::kLeft, kBottom = Frame::kTop + Frame::kPlotH;
  svg += format("<line x1=\"%g\" x2=\"%g\" y1=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", kLeft,
                kLeft + Frame::kPlotW, kBottom, kBottom);
  svg += format("<line x1=\"%g\" x2=\"%g\" y1=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", kLeft, kLeft,
                Frame::kTop, kBottom);
}

// Returns `t` as a tick label: a time of day (or a date) for `dates`, else seconds.
std::string tick_label(std::int64_t t, std::int64_t tick, bool dates) {
  if (!dates) return format("%g s", static_cast<double>(t) / 1e9);
  const std::time_t secs = static_cast<std::time_t>(floor_to(t, kS) / kS);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf,
                tick >= 24 * kHour ? "%b %d"
                : tick >= kMin     ? "%H:%M"
                                   : "%H:%M:%S",
                &tm);
  std::string label = buf;
  if (tick < kS) label += format(".%03.0f", static_cast<double>((t % kS) / kMs));
  return label;
}

// Ticks at round instants along the time axis.
void draw_time_ticks(std::string& svg, const Frame& f, bool dates) {
  const double bottom = Frame::kTop + Frame::kPlotH;
  const std::int64_t tick = round_up(static_cast<std::int64_t>(f.t_span / 8));
  for (Wide wide_t = floor_to(f.first, tick); wide_t <= f.first + static_cast<Wide>(f.t_span);
       wide_t += tick) {
    if (wide_t < f.first || wide_t > INT64_MAX) continue;
    const auto t = static_cast<std::int64_t>(wide_t);
    const double x = f.x_of(t);
    svg += format("<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", x, x,
                  bottom, bottom + 5);
    svg += "<text x=\"" + format("%.1f", x) + "\" y=\"" + format("%g", bottom + 18) +
           "\" text-anchor=\"middle\">" + tick_label(t, tick, dates) + "</text>\n";
  }
}

// The axes' titles.
void draw_axis_titles(std::string& svg, const PlotBars& bars, bool dates) {
  std::string x_title = "time";
  if (dates) {
    const std::time_t secs = static_cast<std::time_t>(floor_to(bars.first, kS) / kS);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    x_title += std::string(" (UTC, from ") + buf + ")";
  } else {
    x_title += " (seconds since the epoch of the trace)";
  }
  x_title += "; one bar per " + duration_text(bars.width);
  svg += "<text x=\"" + format("%g", Frame::kLeft + Frame::kPlotW / 2) + "\" y=\"" +
         format("%g", Frame::kHeight - 14) + "\" text-anchor=\"middle\">" + escape_xml(x_title) +
         "</text>\n";
  svg += format(
      "<text transform=\"translate(16 %g) rotate(-90)\" text-anchor=\"middle\">requests per "
      "bar</text>\n",
      Frame::kTop + Frame::kPlotH / 2);
}

void draw_legend(std::string& svg, const PlotLabels& labels, bool with_quota) {
  const double lx = Frame::kWidth - Frame::kRight - 380;
  svg += format("<rect x=\"%g\" y=\"30\" width=\"12\" height=\"12\" fill=\"#2e8b57\"/>", lx);
  svg += format("<text x=\"%g\" y=\"40\">admitted</text>\n", lx + 16);
  svg += format("<rect x=\"%g\" y=\"30\" width=\"12\" height=\"12\" fill=\"#d9534f\"/>", lx + 85);
  svg += format("<text x=\"%g\" y=\"40\">denied</text>\n", lx + 101);
  if (!with_quota) return;
  svg += format(
      "<line x1=\"%g\" x2=\"%g\" y1=\"36\" y2=\"36\" stroke=\"#1f4e9c\" stroke-width=\"2\" "
      "stroke-dasharray=\"6 4\"/>",
      lx + 160, lx + 185);
  svg += "<text x=\"" + format("%g", lx + 190) + "\" y=\"40\">" + escape_xml(labels.quota_label) +
         "</text>\n";
}

}  // namespace

std::string printable_key(std::string_view key, std::size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  std::size_t i = 0;
  while (i < key.size() && i < max_bytes) {
    const auto c = static_cast<unsigned char>(key[i]);
    const std::size_t n = utf8_length(key.substr(i));
    if (n > 1 && i + n <= max_bytes) {
      out.append(key.substr(i, n));
      i += n;
      continue;
    }
    if (n == 1 && c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
    ++i;
  }
  if (i < key.size()) out += "...";
  return out;
}

std::string render_svg(const TimeSeries& series, const PlotLabels& labels) {
  PlotBars bars = plot_bars(series, labels.window, labels.bar_is_bucket);
  if (labels.lead_bar && !labels.window && !series.empty() &&
      bars.first >= INT64_MIN + bars.width) {
    bars.first -= bars.width;
    bars.counts.insert(bars.counts.begin(), {0, 0});
  }
  std::uint64_t peak = 0;
  for (const auto& [a, d] : bars.counts) peak = std::max(peak, a + d);
  double quota_per_bar = -1;  // None.
  if (labels.quota) {
    quota_per_bar = static_cast<double>(labels.quota->count()) * static_cast<double>(bars.width) /
                    static_cast<double>(labels.quota->period().count());
  }
  const Frame frame{
      .first = bars.first,
      .t_span = static_cast<double>(bars.width) * static_cast<double>(bars.counts.size()),
      .y_max = std::max(1.0, static_cast<double>(peak)) * 1.08,
  };
  const bool dates =
      series.origin().time_since_epoch().count() > 978'307'200'000'000'000LL;  // After 2001-01-01.

  std::string svg = format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      Frame::kWidth, Frame::kHeight, Frame::kWidth, Frame::kHeight);
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + format("%g", Frame::kLeft) +
         "\" y=\"22\" font-size=\"15\" font-weight=\"bold\">" + escape_xml(labels.title) +
         "</text>\n";
  draw_grid(svg, frame);
  draw_bars(svg, frame, bars, dates);
  if (quota_per_bar >= 0 && quota_per_bar <= frame.y_max)
    draw_quota_line(svg, frame, quota_per_bar);
  if (quota_per_bar > frame.y_max) draw_quota_off_scale(svg, quota_per_bar);
  draw_axes(svg);
  draw_time_ticks(svg, frame, dates);
  draw_axis_titles(svg, bars, dates);
  draw_legend(svg, labels, quota_per_bar >= 0);
  svg += "</svg>\n";
  return svg;
}

}  // namespace floodgate::replay
