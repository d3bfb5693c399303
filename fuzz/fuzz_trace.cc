// Fuzz target: a trace (CSV or access log, any bytes) through the whole replay: the reader, the
// replayer under each algorithm and a choice of quotas and key limits, the summary and the plot.
// Every request is in the clamp range, every decision keeps its contract, and the SVG is UTF-8.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "decision_checks.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/replay/replayer.h"
#include "floodgate/replay/summary.h"
#include "floodgate/replay/trace.h"
#include "fuzz_input.h"

namespace {

using namespace floodgate;
using namespace floodgate::replay;

// Reports whether `text` is valid UTF-8: no stray continuation bytes, no overlong forms, no
// surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    std::size_t n = 1;
    std::uint32_t cp = b0;
    if (b0 >= 0x80) {
      if (b0 >= 0xc2 && b0 <= 0xdf) {
        n = 2;
        cp = b0 & 0x1fu;
      } else if (b0 >= 0xe0 && b0 <= 0xef) {
        n = 3;
        cp = b0 & 0x0fu;
      } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        n = 4;
        cp = b0 & 0x07u;
      } else {
        return false;
      }
      if (i + n > text.size()) return false;
      for (std::size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(text[i + k]);
        if ((b & 0xc0u) != 0x80u) return false;
        cp = (cp << 6) | (b & 0x3fu);
      }
      const std::uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using floodgate::fuzz::check_decision;
  using floodgate::fuzz::fail;
  floodgate::fuzz::FuzzInput in(data, size);
  static const TraceFormat kFormats[] = {TraceFormat::Auto, TraceFormat::Csv,
                                         TraceFormat::AccessLog, TraceFormat::Json};
  static const char* const kFields[] = {"",     "client", "ident",   "user",  "request",
                                        "path", "status", "referer", "agent", "method",
                                        "xff",  "host",   "key",     "a.b"};
  static const char* const kLogFormats[] = {"", "combined", "envoy", "istio",
                                            R"($remote_addr [$time_iso8601] "$request" $status)"};
  static const char* const kQuotas[] = {"10/s", "1/ns",     "3/7ns",   "5/s burst 1",
                                        "1/d",  "1/26687d", "1000/ms", "7/3s burst 9",
                                        "2/h",  "60/m"};
  static const std::size_t kMaxKeys[] = {1, 2, 1000};
  TraceOptions options;
  options.format = in.pick(kFormats);
  options.key_field = in.pick(kFields);
  options.log_format = in.pick(kLogFormats);
  if (in.pick(std::array{false, true})) {
    options.include.push_back(LineFilter::parse("status=2*,4??").value());
  }
  Policy policy;
  policy.algorithm = in.pick(kAlgorithms);
  policy.quota = Quota::parse(in.pick(kQuotas)).value();
  policy.max_keys = in.pick(kMaxKeys);
  const bool window = !has_burst(policy.algorithm);
  if (window) policy.quota = policy.quota.with_burst(policy.quota.count());
  if (policy.algorithm == Algorithm::SlidingLog && policy.quota.count() > 1000) return 0;
  Result<Replayer> replayer = Replayer::create(policy);
  if (!replayer) return 0;

  std::string text(in.rest());
  if (text.empty()) return 0;  // fmemopen needs a buffer of at least one byte.
  std::FILE* file = fmemopen(text.data(), text.size(), "r");
  if (file == nullptr) return 0;
  TraceReader reader(file, "fuzz", std::move(options));
  TopDenials denials(4);
  TimeSeries series;
  for (int lines = 0; lines < 100'000; ++lines) {
    Result<std::optional<Request>> next = reader.next();
    if (!next) {
      if (next.error().message().empty()) fail("an error without a message");
      continue;
    }
    if (!next->has_value()) break;
    const Request& request = **next;
    if (!internal::in_time_range(request.time.time_since_epoch().count())) {
      fail("a request outside the clamp range", request.key);
    }
    const Decision d = replayer->decide(request);
    check_decision(d, "replay");
    if (!d.allowed()) denials.add(request.key);
    series.add(request.time, d.allowed());
  }
  std::fclose(file);
  (void)replayer->sweep();
  for (const auto& [key, count] : denials.top(4)) {
    if (count == 0) fail("a key counted with no denial", key);
    (void)replayer->quota_of(key);
    (void)printable_key(key);
  }
  PlotLabels labels;
  labels.title = "fuzz " + text.substr(0, 40);
  labels.quota = policy.quota;
  labels.quota_label = "q";
  const std::string svg = render_svg(series, labels);
  if (!svg.ends_with("</svg>\n")) fail("an unfinished SVG");
  if (!valid_utf8(svg)) fail("an SVG that is not UTF-8");
  return 0;
}
