// What `floodgate replay` reports about a trace: totals, the keys denied most often, and the
// requests per time bucket that `render_svg` draws. Each keeps bounded memory whatever the
// trace's length or number of keys. Not thread-safe.
#pragma once

#include <cstdint>
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

// Admitted and denied requests per time bucket. Buckets start 1 ms wide and double (merging
// pairs) whenever the trace would need more than `kMaxBuckets`, so a trace of any span keeps
// between kMaxBuckets / 2 and kMaxBuckets of them: fine enough for `render_svg` to regroup them
// into bars of a round width.
class TimeSeries {
 public:
  static constexpr std::size_t kMaxBuckets = 4096;

  // Counts one request at `t`. A request before the first one seen counts in the first bucket.
  void add(Instant t, bool admitted);

  bool empty() const noexcept { return buckets_.empty(); }
  Instant origin() const noexcept { return origin_; }
  Nanos width() const noexcept { return Nanos{width_}; }
  // Admitted and denied counts, bucket by bucket from `origin()`.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>>& buckets() const noexcept {
    return buckets_;
  }

 private:
  Instant origin_{};
  std::int64_t width_ = 1'000'000;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> buckets_;
};

// Returns `key` fit for one line of a terminal: at most `max_bytes` bytes of it (then "..."),
// valid UTF-8 as it is, and control bytes and bytes that are not valid UTF-8 as \xNN.
std::string printable_key(std::string_view key, std::size_t max_bytes = 60);

// What the plot says about itself.
struct PlotLabels {
  std::string title;
  // The quota to draw as a line (requests a bucket at its rate), and what it applies to.
  std::optional<Quota> quota;
  std::string quota_label;
};

// Returns an SVG document (no scripts, no external references) with admitted and denied requests
// as stacked bars of a round width (1 ms to a week, at most about 240 bars), the quota as a
// dashed line (the requests one bar's time admits at the quota's rate), a time axis with ticks at
// round instants (UTC clock time when the instants look like dates after 2001, else seconds) and
// a legend. A series bucket counts in the bar where it starts.
std::string render_svg(const TimeSeries& series, const PlotLabels& labels);

}  // namespace floodgate::replay
