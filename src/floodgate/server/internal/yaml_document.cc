#include "floodgate/server/internal/yaml_document.h"

#include <yaml.h>

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <utility>

#include "floodgate/core/internal/format.h"

namespace floodgate::internal {
namespace {

// The largest file read: past it a node's place in the text would not fit its 32 bits.
constexpr std::size_t kMaxYamlBytes = std::size_t{1} << 30;
// Keys of one map compared one by one; past this many, through a hash map.
constexpr std::size_t kLinearKeys = 16;

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

bool is_null(const yaml_event_t& e) {
  if (e.data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const std::string_view v(reinterpret_cast<const char*>(e.data.scalar.value),
                           e.data.scalar.length);
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

}  // namespace

// Builds a `YamlDocument` from libyaml's events.
class YamlBuilder {
 public:
  YamlBuilder(YamlDocument& doc, const std::string& file) : doc_(doc), file_(file) {}

  Result<void> run(std::string_view text) {
    if (text.size() > kMaxYamlBytes) {
      return Error(file_ + ": larger than " + std::to_string(kMaxYamlBytes) + " bytes");
    }
    yaml_parser_t parser;
    if (yaml_parser_initialize(&parser) == 0) return Error(file_ + ": out of memory");
    const std::unique_ptr<yaml_parser_t, void (*)(yaml_parser_t*)> owned(&parser,
                                                                         yaml_parser_delete);
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
    int documents = 0;
    for (;;) {
      yaml_event_t event;
      if (yaml_parser_parse(&parser, &event) == 0) {
        std::string message =
            file_ + ":" + std::to_string(parser.problem_mark.line + 1) +
            ": not valid YAML: " + (parser.problem != nullptr ? parser.problem : "unreadable");
        if (parser.context != nullptr) message += std::string(" ") + parser.context;
        return Error(std::move(message));
      }
      const std::unique_ptr<yaml_event_t, void (*)(yaml_event_t*)> held(&event, yaml_event_delete);
      const auto line = static_cast<std::uint32_t>(event.start_mark.line + 1);
      Result<void> ok;
      switch (event.type) {
        case YAML_STREAM_END_EVENT:
          return {};
        case YAML_DOCUMENT_START_EVENT:
          if (++documents > 1) {
            return Error(file_ + ":" + std::to_string(line) +
                         ": a second YAML document (a file holds one)");
          }
          break;
        case YAML_SCALAR_EVENT:
          ok = scalar(event, line);
          break;
        case YAML_SEQUENCE_START_EVENT:
          ok = open(YamlDocument::Kind::Seq, event.data.sequence_start.anchor, line);
          break;
        case YAML_MAPPING_START_EVENT:
          ok = open(YamlDocument::Kind::Map, event.data.mapping_start.anchor, line);
          break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
          ok = close();
          break;
        case YAML_ALIAS_EVENT:
          ok = alias(event, line);
          break;
        default:
          break;
      }
      if (!ok) return ok;
    }
  }

 private:
  struct Open {
    std::uint32_t node;
    std::uint32_t last = YamlDocument::kNone;  // The last child added.
    std::uint64_t size = 1;                    // Nodes, aliases expanded.
    std::uint32_t children = 0;
    // A map's keys so far (scalars), for duplicates: their nodes, and once there are many, their
    // texts and lines in a hash map too.
    std::vector<std::uint32_t> keys;
    std::unordered_map<std::string, std::uint32_t> many_keys;
    bool anchored = false;
  };

  Result<std::uint32_t> add_node(YamlDocument::Kind kind, std::uint32_t line) {
    if (doc_.nodes_.size() >= kMaxYamlNodes) {
      return Error(file_ + ":" + std::to_string(line) + ": more than " +
                   std::to_string(kMaxYamlNodes) + " YAML nodes");
    }
    YamlDocument::Node n;
    n.kind = kind;
    n.line = line;
    doc_.nodes_.push_back(n);
    return static_cast<std::uint32_t>(doc_.nodes_.size() - 1);
  }

  // Links node `n`, of `size` nodes, into the collection being read (or makes it the root).
  Result<void> attach(std::uint32_t n, std::uint64_t size) {
    if (stack_.empty()) {
      doc_.root_ = n;
      return {};
    }
    Open& parent = stack_.back();
    if (parent.last == YamlDocument::kNone) {
      doc_.nodes_[parent.node].first = n;
    } else {
      doc_.nodes_[parent.last].next = n;
    }
    parent.last = n;
    parent.size = saturating_add(parent.size, size);
    // A map's even children are keys: a key written twice is a mistake (often a merge's), and
    // YAML forbids it; reading either silently would hide it.
    if (doc_.nodes_[parent.node].kind == YamlDocument::Kind::Map && parent.children % 2 == 0 &&
        doc_.nodes_[n].kind == YamlDocument::Kind::Scalar && !doc_.nodes_[n].alias) {
      const std::string_view key = doc_.text(n);
      std::uint32_t first_line = 0;
      if (parent.keys.size() < kLinearKeys) {
        for (const std::uint32_t k : parent.keys) {
          if (doc_.text(k) == key) first_line = doc_.nodes_[k].line;
        }
        parent.keys.push_back(n);
        if (parent.keys.size() == kLinearKeys) {
          for (const std::uint32_t k : parent.keys) {
            parent.many_keys.emplace(std::string(doc_.text(k)), doc_.nodes_[k].line);
          }
        }
      } else if (const auto [at, added] =
                     parent.many_keys.emplace(std::string(key), doc_.nodes_[n].line);
                 !added) {
        first_line = at->second;
      }
      if (first_line != 0) {
        return Error(file_ + ":" + std::to_string(doc_.nodes_[n].line) + ": key " + quoted(key) +
                     " given twice in one mapping (first at line " + std::to_string(first_line) +
                     ")");
      }
    }
    ++parent.children;
    return {};
  }

  void name(const yaml_char_t* anchor, std::uint32_t n) {
    if (anchor != nullptr) anchors_[reinterpret_cast<const char*>(anchor)] = n;
  }

  Result<void> scalar(const yaml_event_t& e, std::uint32_t line) {
    const bool null = is_null(e);
    Result<std::uint32_t> n =
        add_node(null ? YamlDocument::Kind::Null : YamlDocument::Kind::Scalar, line);
    if (!n) return n.error();
    if (!null) {
      doc_.nodes_[*n].plain = e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
      doc_.nodes_[*n].text_at = static_cast<std::uint32_t>(doc_.texts_.size());
      doc_.nodes_[*n].text_size = static_cast<std::uint32_t>(e.data.scalar.length);
      doc_.texts_.append(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
    }
    name(e.data.scalar.anchor, *n);
    if (e.data.scalar.anchor != nullptr) sizes_[*n] = 1;
    return attach(*n, 1);
  }

  Result<void> open(YamlDocument::Kind kind, const yaml_char_t* anchor, std::uint32_t line) {
    if (stack_.size() >= kMaxYamlDepth) {
      return Error(file_ + ":" + std::to_string(line) + ": nested more than " +
                   std::to_string(kMaxYamlDepth) + " levels deep");
    }
    Result<std::uint32_t> n = add_node(kind, line);
    if (!n) return n.error();
    name(anchor, *n);
    Open o;
    o.node = *n;
    o.anchored = anchor != nullptr;
    stack_.push_back(std::move(o));
    return {};
  }

  Result<void> close() {
    Open done = std::move(stack_.back());
    stack_.pop_back();
    if (done.anchored) sizes_[done.node] = done.size;
    return attach(done.node, done.size);
  }

  Result<void> alias(const yaml_event_t& e, std::uint32_t line) {
    const std::string name(reinterpret_cast<const char*>(e.data.alias.anchor));
    const auto target = anchors_.find(name);
    if (target == anchors_.end()) {
      return Error(file_ + ":" + std::to_string(line) + ": alias *" + name +
                   " names no anchor before it");
    }
    const auto size = sizes_.find(target->second);
    if (size == sizes_.end()) {
      return Error(file_ + ":" + std::to_string(line) + ": alias *" + name +
                   " names a node that contains it");
    }
    expanded_ = saturating_add(expanded_, size->second);
    const std::uint64_t budget = std::max(kAliasFloor, kAliasRatio * doc_.nodes_.size());
    if (expanded_ > budget || expanded_ > kMaxYamlNodes) {
      return Error(file_ + ":" + std::to_string(line) + ": aliases expand to more than " +
                   std::to_string(std::min(budget, kMaxYamlNodes)) + " nodes (at most " +
                   std::to_string(kAliasRatio) + " times the " +
                   std::to_string(doc_.nodes_.size()) + " written out, or " +
                   std::to_string(kAliasFloor) + "): refused as an alias bomb");
    }
    Result<std::uint32_t> n = add_node(doc_.nodes_[target->second].kind, line);
    if (!n) return n.error();
    doc_.nodes_[*n].alias = true;
    doc_.nodes_[*n].first = target->second;
    return attach(*n, size->second);
  }

  YamlDocument& doc_;
  const std::string& file_;
  std::vector<Open> stack_;
  std::unordered_map<std::string, std::uint32_t> anchors_;
  std::unordered_map<std::uint32_t, std::uint64_t> sizes_;  // Of anchored nodes, once complete.
  std::uint64_t expanded_ = 0;                              // Nodes that aliases stand for.
};

Result<YamlDocument> YamlDocument::parse(std::string_view text, const std::string& file) {
  YamlDocument doc;
  YamlBuilder builder(doc, file);
  if (Result<void> ok = builder.run(text); !ok) return ok.error();
  if (doc.root_ == kNone) {  // An empty file: one null node.
    doc.nodes_.push_back(Node{});
    doc.root_ = static_cast<std::uint32_t>(doc.nodes_.size() - 1);
  }
  return doc;
}

std::string_view YamlDocument::text(std::uint32_t n) const noexcept {
  const Node& node = nodes_[resolve(n)];
  return std::string_view(texts_).substr(node.text_at, node.text_size);
}

std::uint32_t YamlDocument::find(std::uint32_t n, std::string_view key) const noexcept {
  if (kind(n) != Kind::Map) return kNone;
  for (std::uint32_t k = first(n); k != kNone; k = next(next(k))) {
    if (kind(k) == Kind::Scalar && text(k) == key) return next(k);
  }
  return kNone;
}

}  // namespace floodgate::internal
