#include "flags.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "commands.h"

namespace floodgate::app {

bool print_help_if_asked(const std::vector<std::string>& args, std::string_view help) {
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::fwrite(help.data(), 1, help.size(), stdout);
      return true;
    }
  }
  return false;
}

int usage_error(std::string_view command, const std::string& message) {
  std::fprintf(stderr, "floodgate %.*s: %s\n", static_cast<int>(command.size()), command.data(),
               message.c_str());
  return kExitUsage;
}

Result<Flags> Flags::parse(std::string_view command, const std::vector<std::string>& args,
                           const std::set<std::string, std::less<>>& valued,
                           const std::set<std::string, std::less<>>& booleans,
                           const std::set<std::string, std::less<>>& repeatable) {
  Flags flags;
  flags.command_ = command;
  const std::string help = " (see floodgate " + std::string(command) + " --help)";
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      for (++i; i < args.size(); ++i) flags.positional_.push_back(args[i]);
      break;
    }
    if (!arg.starts_with("--") || arg == "-") {
      flags.positional_.push_back(arg);
      continue;
    }
    const std::size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (valued.contains(name) || repeatable.contains(name)) {
      std::string value;
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Error("flag --" + name + ": needs a value" + help);
      }
      if (repeatable.contains(name)) {
        flags.repeated_[name].push_back(value);
        continue;
      }
      if (flags.values_.contains(name)) {
        return Error("flag --" + name + ": given twice (\"" + flags.values_[name] + "\" and \"" +
                     value + "\")");
      }
      flags.values_[name] = value;
    } else if (booleans.contains(name)) {
      if (eq != std::string::npos) {
        return Error("flag --" + name + ": takes no value (got \"" + arg.substr(eq + 1) + "\")");
      }
      flags.present_.insert(name);
    } else {
      return Error("unknown flag \"" + arg + "\" for floodgate " + std::string(command) + help);
    }
  }
  return flags;
}

std::vector<std::string> Flags::get_all(std::string_view name) const {
  const auto it = repeated_.find(name);
  return it == repeated_.end() ? std::vector<std::string>() : it->second;
}

std::optional<std::string> Flags::get(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Flags::get_or(std::string_view name, std::string fallback) const {
  return get(name).value_or(std::move(fallback));
}

bool Flags::has(std::string_view name) const { return present_.contains(name); }

Result<std::uint64_t> Flags::get_uint(std::string_view name, std::uint64_t fallback,
                                      std::uint64_t min, std::uint64_t max) const {
  const std::optional<std::string> text = get(name);
  if (!text) return fallback;
  std::uint64_t value = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, value);
  if (text->empty() || text->front() == '-' || text->front() == '+' || ec != std::errc() ||
      ptr != end || value < min || value > max) {
    return Error("flag --" + std::string(name) + ": \"" + *text + "\" is not a whole number from " +
                 std::to_string(min) + " to " + std::to_string(max));
  }
  return value;
}

Result<std::string> Flags::get_secret(std::string_view name, const char* env) const {
  const std::optional<std::string> file = get(name);
  if (!file) {
    const char* value = std::getenv(env);
    return std::string(value != nullptr ? value : "");
  }
  const std::string flag = "flag --" + std::string(name) + ": \"" + *file + "\": ";
  std::ifstream in(*file, std::ios::binary);
  if (!in) return Error(flag + "cannot open");
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return Error(flag + "its first line is empty");
  return line;
}

Result<double> Flags::get_seconds(std::string_view name, double fallback, double min) const {
  const std::optional<std::string> text = get(name);
  if (!text) return fallback;
  // Decimal only: strtod would also take "0x10" (16) and "inf".
  const bool decimal =
      !text->empty() && text->find_first_not_of("0123456789.eE+-") == std::string::npos;
  char* end = nullptr;
  const double value = decimal ? std::strtod(text->c_str(), &end) : 0.0;
  if (!decimal || end != text->c_str() + text->size() || !std::isfinite(value) || value < min ||
      value > 3600) {
    char range[64];
    std::snprintf(range, sizeof range, "from %g to 3600", min);
    return Error("flag --" + std::string(name) + ": \"" + *text +
                 "\" is not a decimal number of seconds " + range);
  }
  return value;
}

}  // namespace floodgate::app
