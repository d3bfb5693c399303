// What `floodgate replay` reports about a trace: totals, the keys denied most often, and the
// requests per time bucket that `render_svg` draws. Each keeps bounded memory whatever the
// trace's length or number of keys. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "floodgate/core/decision.h"
#include "floodgate/core/internal/string_hash.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"

namespace floodgate::replay {

// Counts denials per key in bounded memory: exact while at most `capacity` x 2 keys have been
// denied. Beyond that, whenever the table fills, all but the `capacity` most denied keys are
// forgotten, and a key counted anew starts from the highest count forgotten so far (as in the
// Space-Saving algorithm): every count reported is then at least the true one and at most
// `error_bound()` above it.
class TopDenials {
 public:
  // A capacity of 0 is taken as 1.
  explicit TopDenials(std::size_t capacity = 4096) : capacity_(capacity == 0 ? 1 : capacity) {}

  // Counts one denial of `key`.
  void add(std::string_view key);

  // Returns up to `n` keys with their counts, most denied first (ties by key).
  std::vector<std::pair<std::string, std::uint64_t>> top(std::size_t n) const;

  // Returns how much any count may be high by (0 while exact).
  std::uint64_t error_bound() const noexcept { return error_bound_; }

 private:
  using Hash = internal::StringHash;
  std::size_t capacity_;
  std::uint64_t error_bound_ = 0;
  std::unordered_map<std::string, std::uint64_t, Hash, std::equal_to<>> counts_;
};

// How many distinct keys were added, in bounded memory: exact while at most `kExactLimit` keys
// have been seen (their 64-bit hashes are kept: two of 100,000 keys share one with odds of 3 in
// 10^10), then estimated by HyperLogLog over 2^14 registers of those hashes (standard error 0.8%,
// 16 KiB), the exact ones carried into it.
class DistinctKeys {
 public:
  // The most keys counted exactly.
  static constexpr std::size_t kExactLimit = 100'000;

  // Counts `key`, once however often it is added.
  void add(std::string_view key);
  // Returns how many distinct keys were added (see `exact`).
  std::uint64_t count() const;
  // Whether `count` is exact (no more than `kExactLimit` keys seen).
  bool exact() const noexcept { return registers_.empty(); }

 private:
  void add_hash(std::uint64_t hash);

  // While exact: the hashes seen, in an open-addressing table (0: empty; a hash of 0 is kept as 1)
  // at most half full.
  std::vector<std::uint64_t> table_;
  std::size_t distinct_ = 0;
  std::vector<std::uint8_t> registers_;  // Once past the limit: HyperLogLog's.
};

// Admitted and denied requests per time bucket. Bucket i holds the requests in
// [origin + i * width, origin + (i + 1) * width): half-open, and aligned to multiples of the width
// since the epoch, so to UTC's seconds, minutes, hours and days. The width starts at 1 ms and
// grows, whenever the requests seen would need more than `kMaxBuckets`, along a ladder in which
// each width is a multiple of the one before: 1, 2, 10, 20, 100, 200 ms, 1, 2, 10, 20 s, 1, 2, 10,
// 20 min, 1, 2, 6, 12 h, a day, a week, then weeks doubling. A bucket therefore lies inside one
// bar of any width it divides, and bars counted from buckets are exact. A request earlier than
// every one before it widens the series to the left: lines need not be sorted.
class TimeSeries {
 public:
  // The most buckets kept; the series widens them rather than keep more.
  static constexpr std::size_t kMaxBuckets = 4096;

  // Buckets of `base_width` (1 ms by default) to start with; past `kMaxBuckets` they widen to the
  // next width of the ladder that `base_width`'s multiples reach (else they double).
  explicit TimeSeries(Nanos base_width = std::chrono::milliseconds(1))
      : width_(std::max<std::int64_t>(base_width.count(), 1)) {}

  // Counts one request at `t`.
  void add(Instant t, bool admitted);

  // Reports whether no request has been counted.
  bool empty() const noexcept { return buckets_.empty(); }
  // The first bucket's start.
  Instant origin() const noexcept;
  Nanos width() const noexcept { return Nanos{width_}; }
  // Admitted and denied counts, bucket by bucket from `origin()`.
  const std::deque<std::pair<std::uint64_t, std::uint64_t>>& buckets() const noexcept {
    return buckets_;
  }

 private:
  // Widens the buckets to the next width of the ladder.
  void widen();

  std::int64_t first_ = 0;  // The first bucket's index: its start is first_ * width_.
  std::int64_t width_ = 1'000'000;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> buckets_;
};

// The bars of a plot: `series` regrouped into bars of a round width (1 ms to a week, then whole
// weeks) that the series' width divides, about 240 of them; bar i holds the requests in
// [first + i * width, first + (i + 1) * width), aligned to multiples of the width since the
// epoch. Exact: every request is in the bar its instant falls in.
struct PlotBars {
  std::int64_t first = 0;  // The first bar's start, nanoseconds since the epoch.
  std::int64_t width = 0;  // Each bar's width, in nanoseconds.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> counts;  // (admitted, denied) per bar.
};
// With `window` [from, to), the bars cover it whole, requests or not; with `bar`, they are the
// series' buckets (the series built with that base width: exact unless it had to widen).
PlotBars plot_bars(const TimeSeries& series,
                   std::optional<std::pair<Instant, Instant>> window = std::nullopt,
                   bool bar_is_bucket = false);

// Returns `key` fit for one line of a terminal: at most `max_bytes` bytes of it (then "..."),
// valid UTF-8 as it is, and control bytes and bytes that are not valid UTF-8 as \xNN.
std::string printable_key(std::string_view key, std::size_t max_bytes = 60);

// Returns `text` as XML or HTML character data (fit for an attribute's value too): markup and
// quotes escaped, control bytes as '?', and bytes that are not valid UTF-8 as U+FFFD, so that the
// document stays well-formed whatever the key.
std::string escape_xml(std::string_view text);

// What the plot says about itself.
struct PlotLabels {
  // The plot's heading.
  std::string title;
  // The quota to draw as a line (requests a bar at its rate), and what it applies to.
  std::optional<Quota> quota;
  std::string quota_label;
  // One empty bar before the first request's, so that a key's plot shows the calm before it.
  bool lead_bar = false;
  // The time to draw, [from, to) (`plot_bars`'s window); none: the requests' span.
  std::optional<std::pair<Instant, Instant>> window = std::nullopt;
  // Draw the series' buckets as the bars (`--bar`), rather than round bars of about 240.
  bool bar_is_bucket = false;
};

// Returns an SVG document (no scripts, no external references) with admitted and denied requests
// as stacked bars of a round width (1 ms to a week, at most about 240 bars), the y axis scaled to
// the tallest bar, the quota as a dashed line (the requests one bar's time admits at the quota's
// rate; above the scale, a marker at the top says its value instead), a time axis with ticks at
// round instants (UTC clock time when the instants look like dates after 2001, else seconds) and
// a legend. The bars are `plot_bars(series)`; each has a <title> (a tooltip) with its interval
// and its counts: "2026-12-07 10:29:00 to 10:30:00 UTC: 120 requests, 100 admitted, 20 denied".
std::string render_svg(const TimeSeries& series, const PlotLabels& labels);

}  // namespace floodgate::replay
