// `YamlDocument`: one YAML document read with libyaml into a compact tree of nodes, within
// bounds, for the configuration parser. What an operator's file (or a mistake in one) controls is
// bounded where it is read: nesting (`kMaxYamlDepth`), nodes (`kMaxYamlNodes`), and what aliases
// expand to (`kAliasFloor`, `kAliasRatio`: a "billion laughs" of a kilobyte is refused at the
// alias that crosses the budget). A key given twice in one mapping is an error naming both lines.
// Not part of the public API. A built document is immutable; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/result.h"

namespace floodgate::internal {

// The deepest nesting of mappings and sequences (a descriptor level takes two).
inline constexpr std::size_t kMaxYamlDepth = 512;
// The most nodes one document may hold, and expand to with its aliases.
inline constexpr std::uint64_t kMaxYamlNodes = std::uint64_t{32} << 20;
// Aliases may expand to this many nodes whatever the document's size, and past it to
// `kAliasRatio` times the nodes written out.
inline constexpr std::uint64_t kAliasFloor = 100'000;
inline constexpr std::uint64_t kAliasRatio = 10;

class YamlDocument {
 public:
  enum class Kind : std::uint8_t { Null, Scalar, Map, Seq };
  static constexpr std::uint32_t kNone = 0xffffffff;

  // Reads the first document of `text`; `file` names it in errors ("file:line: ..."). A second
  // document is an error.
  static Result<YamlDocument> parse(std::string_view text, const std::string& file);

  // The root node.
  std::uint32_t root() const noexcept { return root_; }

  // The kind of node `n` (an alias is the node it names).
  Kind kind(std::uint32_t n) const noexcept { return nodes_[resolve(n)].kind; }
  // The 1-based line where node `n` is written (for an alias: where the alias is).
  std::uint32_t line(std::uint32_t n) const noexcept { return nodes_[n].line; }
  // The text of a scalar.
  std::string_view text(std::uint32_t n) const noexcept;
  // Reports whether a scalar was written without quotes (a plain `true` or `12` is a boolean or a
  // number to YAML's core schema; a quoted one is a string).
  bool plain(std::uint32_t n) const noexcept { return nodes_[resolve(n)].plain; }

  // The first child of a map or sequence, then the next one: for a map, keys and values
  // alternate. `kNone` at the end. An alias iterates the node it names.
  std::uint32_t first(std::uint32_t n) const noexcept { return nodes_[resolve(n)].first; }
  std::uint32_t next(std::uint32_t n) const noexcept { return nodes_[n].next; }

  // Returns the value of key `key` in map `n`, or `kNone`.
  std::uint32_t find(std::uint32_t n, std::string_view key) const noexcept;

 private:
  struct Node {
    Kind kind = Kind::Null;
    bool alias = false;  // `first` is the node named.
    bool plain = false;  // A scalar written without quotes.
    std::uint32_t line = 0;
    std::uint32_t first = kNone;
    std::uint32_t next = kNone;
    std::uint32_t text_at = 0;
    std::uint32_t text_size = 0;
  };

  std::uint32_t resolve(std::uint32_t n) const noexcept {
    return nodes_[n].alias ? nodes_[n].first : n;
  }

  std::vector<Node> nodes_;
  std::string texts_;  // Every scalar's bytes, one after another.
  std::uint32_t root_ = kNone;

  friend class YamlBuilder;
};

}  // namespace floodgate::internal
