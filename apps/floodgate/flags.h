// A small command-line flag reader for the `floodgate` subcommands: `--name=value`,
// `--name value`, boolean `--name`, and positional arguments; `--` ends the flags. Every error
// names the flag and the value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/result.h"

namespace floodgate::app {

// Reports whether `args` ask for help (`--help` or `-h`), printing `help` on stdout if so.
bool print_help_if_asked(const std::vector<std::string>& args, std::string_view help);

// Prints "floodgate COMMAND: MESSAGE" on stderr and returns the usage exit status (1).
int usage_error(std::string_view command, const std::string& message);

class Flags {
 public:
  // Reads `args` (without the program and subcommand names) for `command`. `valued` names the
  // flags that take a value, `booleans` those that do not, `repeatable` those that take a value
  // and may be given more than once (read with `get_all`).
  static Result<Flags> parse(std::string_view command, const std::vector<std::string>& args,
                             const std::set<std::string, std::less<>>& valued,
                             const std::set<std::string, std::less<>>& booleans,
                             const std::set<std::string, std::less<>>& repeatable = {});

  // Returns the value of `--name`, or nothing if it was not given.
  std::optional<std::string> get(std::string_view name) const;
  // Returns every value of the repeatable `--name`, in the order given.
  std::vector<std::string> get_all(std::string_view name) const;
  // Returns the value of `--name`, or `fallback`.
  std::string get_or(std::string_view name, std::string fallback) const;
  // Reports whether the boolean `--name` was given.
  bool has(std::string_view name) const;
  // Returns `--name` as an integer in [min, max], `fallback` if absent, or an error naming it.
  Result<std::uint64_t> get_uint(std::string_view name, std::uint64_t fallback, std::uint64_t min,
                                 std::uint64_t max) const;
  // Returns `--name` as a number of seconds > 0, `fallback` if absent, or an error naming it.
  Result<double> get_seconds(std::string_view name, double fallback, double min = 0.001) const;
  // Returns a secret kept out of the command line (which every local user can read in /proc):
  // the first line of the file that flag `name` names, else the environment variable `env` if
  // set, else "". An error names the flag and the file when it cannot be read or its first
  // line is empty.
  Result<std::string> get_secret(std::string_view name, const char* env) const;

  const std::vector<std::string>& positional() const noexcept { return positional_; }

 private:
  std::string command_;
  std::map<std::string, std::string, std::less<>> values_;
  std::set<std::string, std::less<>> present_;
  std::map<std::string, std::vector<std::string>, std::less<>> repeated_;
  std::vector<std::string> positional_;
};

}  // namespace floodgate::app
