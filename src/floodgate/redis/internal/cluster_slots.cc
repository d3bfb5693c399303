#include "floodgate/redis/internal/cluster_slots.h"

#include <array>
#include <charconv>
#include <string>

namespace floodgate::internal {
namespace {

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the checksum Redis Cluster uses.
constexpr std::array<std::uint16_t, 256> crc16_table() {
  std::array<std::uint16_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i << 8;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = static_cast<std::uint16_t>(crc);
  }
  return table;
}

constexpr std::array<std::uint16_t, 256> kCrc16 = crc16_table();

std::uint16_t crc16(std::string_view bytes) noexcept {
  std::uint16_t crc = 0;
  for (const char c : bytes) {
    const auto index = static_cast<std::uint8_t>((crc >> 8) ^ static_cast<std::uint8_t>(c));
    crc = static_cast<std::uint16_t>((crc << 8) ^ kCrc16[index]);
  }
  return crc;
}

// Reads `host:port`, the host possibly empty or an IPv6 address (the port follows the last
// colon).
std::optional<Endpoint> parse_host_port(std::string_view text, std::string_view asked_host) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  int port = 0;
  const std::string_view digits = text.substr(colon + 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || end != digits.data() + digits.size() || port <= 0 || port > 65535) {
    return std::nullopt;
  }
  const std::string_view host = text.substr(0, colon);
  return Endpoint{std::string(host.empty() ? asked_host : host), port, ""};
}

Error malformed(const Reply& reply, std::string_view what) {
  return Error("CLUSTER SLOTS: " + std::string(what) + " in the reply (" + describe(reply) + ")");
}

}  // namespace

std::uint16_t key_slot(std::string_view key) noexcept {
  const auto open = key.find('{');
  if (open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<std::uint16_t>(crc16(key) % kClusterSlots);
}

Result<std::vector<SlotRange>> parse_cluster_slots(const Reply& reply,
                                                   std::string_view asked_host) {
  if (reply.type != Reply::Type::Array) return malformed(reply, "not an array");
  std::vector<SlotRange> ranges;
  ranges.reserve(reply.elements.size());
  for (const Reply& entry : reply.elements) {
    // [first, last, [host, port, id, ...], replicas...]
    if (entry.type != Reply::Type::Array || entry.elements.size() < 3) {
      return malformed(reply, "an entry that is not [first, last, master, ...]");
    }
    const Reply& first = entry.elements[0];
    const Reply& last = entry.elements[1];
    const Reply& master = entry.elements[2];
    if (first.type != Reply::Type::Integer || last.type != Reply::Type::Integer ||
        first.integer < 0 || last.integer < first.integer || last.integer >= kClusterSlots) {
      return malformed(reply, "a slot range outside 0..16383");
    }
    if (master.type != Reply::Type::Array || master.elements.size() < 2 ||
        master.elements[0].type != Reply::Type::String ||
        master.elements[1].type != Reply::Type::Integer || master.elements[1].integer <= 0 ||
        master.elements[1].integer > 65535) {
      return malformed(reply, "a master that is not [host, port, ...]");
    }
    const std::string& host = master.elements[0].text;
    if (host == "?") continue;  // The node does not know the master's address yet.
    ranges.push_back(SlotRange{static_cast<std::uint16_t>(first.integer),
                               static_cast<std::uint16_t>(last.integer),
                               Endpoint{host.empty() ? std::string(asked_host) : host,
                                        static_cast<int>(master.elements[1].integer), ""}});
  }
  return ranges;
}

std::optional<Redirect> parse_redirect(std::string_view error, std::string_view asked_host) {
  Redirect redirect;
  if (error.starts_with("MOVED ")) {
    redirect.moved = true;
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  unsigned slot = 0;
  const auto [end, ec] = std::from_chars(error.data(), error.data() + space, slot);
  if (ec != std::errc() || end != error.data() + space || slot >= kClusterSlots) {
    return std::nullopt;
  }
  redirect.slot = static_cast<std::uint16_t>(slot);
  std::optional<Endpoint> to = parse_host_port(error.substr(space + 1), asked_host);
  if (!to) return std::nullopt;
  redirect.to = std::move(*to);
  return redirect;
}

}  // namespace floodgate::internal
