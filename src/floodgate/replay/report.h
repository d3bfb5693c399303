// The replay's report: one self-contained HTML page (no network, no external file) with the
// summary, the plot, the keys (a table sortable by any column), the --sweep comparison and, for a
// replay of a whole configuration, a section per rule with its plot. Numbers are written into the
// page as text (each cell's exact value in `data-value`), so that it reads without its script;
// the script only sorts. A `#sort=TABLE:COLUMN:asc|desc` fragment sorts a table as the page
// opens, so that a sorted view can be linked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace floodgate::replay {

// What the page shows: filled by `floodgate replay --report`, written by `render_report`.
struct Report {
  // One line of the summary: what it counts, its value, and the name a reader of the page (or a
  // test) finds it by (`data-field`).
  struct Figure {
    std::string field;        // The row's `data-field`: "requests", "denied", ...
    std::string label;        // What it counts, as the page says it.
    std::uint64_t value = 0;  // The count.
    std::string note;         // After the value: "25.5%", "estimated".
  };
  // One key's row of the keys table (what --keys-out writes for it).
  struct Key {
    std::string key;                    // The key, as the trace has it.
    std::uint64_t requests = 0;         // Its requests.
    std::uint64_t denied = 0;           // Of them, denied.
    std::int64_t first_denied = 0;      // Nanoseconds since the epoch, when `denied` > 0.
    std::int64_t last_denied = 0;       // Likewise, the latest denial.
    std::uint64_t peak_per_second = 0;  // The most requests it sent in one UTC second.
  };
  // One quota's row of the --sweep comparison.
  struct SweepRow {
    std::string quota;              // The quota, as text.
    std::uint64_t denied = 0;       // Requests it denied.
    std::uint64_t keys_denied = 0;  // Distinct keys with a request denied.
    bool keys_exact = true;         // Whether `keys_denied` is exact (else estimated).
    std::string most_denied;        // "key=count;key=count".
  };
  // One rule's section, for a replay of a whole configuration.
  struct Rule {
    std::string id;              // The rule's name in metrics: "edge.remote_address".
    std::string limit;           // Its limit, as text: "10/s", "unlimited".
    std::uint64_t hits = 0;      // Request descriptors it applied to.
    std::uint64_t over = 0;      // Of them, over its limit and refused.
    std::uint64_t shadowed = 0;  // Over it in shadow mode: answered OK.
    std::vector<std::pair<std::string, std::uint64_t>> most_limited;  // Values and counts.
    std::string svg;                                                  // Its plot, or empty.
  };

  std::string title;             // "floodgate replay access.log".
  std::string subtitle;          // The policy, or the configuration and domain.
  std::vector<Figure> summary;   // The summary's lines, in order.
  std::string svg;               // The plot of every request (or one key's), or empty.
  std::uint64_t requests = 0;    // Requests decided (the sweep's shares are of these).
  std::vector<Key> keys;         // The most denied first; at most `kReportMaxKeys` of them.
  std::uint64_t keys_total = 0;  // Keys in all (the table may hold fewer).
  bool keys_asked = false;       // Whether keys were counted (else the section says how).
  std::vector<SweepRow> sweep;   // The --sweep comparison; empty without one.
  std::vector<Rule> rules;       // With --config, each rule a request met.
  std::string generator;         // "floodgate 0.1.0 (commit ...)".
};

// The most keys a report's table holds: the most denied first (--keys-out has them all).
inline constexpr std::size_t kReportMaxKeys = 2000;

// Returns the page.
std::string render_report(const Report& report);

}  // namespace floodgate::replay
