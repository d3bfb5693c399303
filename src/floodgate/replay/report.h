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

struct Report {
  // One line of the summary: what it counts, its value, and the name a reader of the page (or a
  // test) finds it by (`data-field`).
  struct Figure {
    std::string field;
    std::string label;
    std::uint64_t value = 0;
    std::string note;  // After the value: "25.5%", "estimated".
  };
  struct Key {
    std::string key;
    std::uint64_t requests = 0;
    std::uint64_t denied = 0;
    std::int64_t first_denied = 0;  // Nanoseconds since the epoch, when `denied` > 0.
    std::int64_t last_denied = 0;
    std::uint64_t peak_per_second = 0;
  };
  struct SweepRow {
    std::string quota;
    std::uint64_t denied = 0;
    std::uint64_t keys_denied = 0;
    bool keys_exact = true;
    std::string most_denied;  // "key=count;key=count".
  };
  struct Rule {
    std::string id;
    std::string limit;
    std::uint64_t hits = 0;
    std::uint64_t over = 0;
    std::uint64_t shadowed = 0;
    std::vector<std::pair<std::string, std::uint64_t>> most_limited;
    std::string svg;  // Its plot, or empty.
  };

  std::string title;     // "floodgate replay access.log".
  std::string subtitle;  // The policy, or the configuration and domain.
  std::vector<Figure> summary;
  std::string svg;  // The plot of every request (or one key's), or empty.
  std::uint64_t requests = 0;
  std::vector<Key> keys;         // The most denied first; at most `kMaxKeys` of them.
  std::uint64_t keys_total = 0;  // Keys in all (the table may hold fewer).
  bool keys_asked = false;       // Whether keys were counted (else the section says how).
  std::vector<SweepRow> sweep;
  std::vector<Rule> rules;
  std::string generator;  // "floodgate 0.1.0 (commit ...)".
};

// The most keys a report's table holds: the most denied first (--keys-out has them all).
inline constexpr std::size_t kReportMaxKeys = 2000;

// Returns the page.
std::string render_report(const Report& report);

}  // namespace floodgate::replay
