#include "floodgate/server/unit.h"

namespace floodgate::server {

std::string_view to_string(Unit unit) noexcept {
  switch (unit) {
    case Unit::Second:
      return "second";
    case Unit::Minute:
      return "minute";
    case Unit::Hour:
      return "hour";
    case Unit::Day:
      return "day";
    case Unit::Week:
      return "week";
    case Unit::Month:
      return "month";
    case Unit::Year:
      return "year";
  }
  return "?";
}

Nanos length_of(Unit unit) noexcept {
  constexpr std::int64_t kSecond = 1'000'000'000;
  constexpr std::int64_t kDay = 86'400 * kSecond;
  switch (unit) {
    case Unit::Second:
      return Nanos{kSecond};
    case Unit::Minute:
      return Nanos{60 * kSecond};
    case Unit::Hour:
      return Nanos{3'600 * kSecond};
    case Unit::Day:
      return Nanos{kDay};
    case Unit::Week:
      return Nanos{7 * kDay};
    case Unit::Month:
      return Nanos{30 * kDay};
    case Unit::Year:
      return Nanos{365 * kDay};
  }
  return Nanos{kSecond};
}

}  // namespace floodgate::server
