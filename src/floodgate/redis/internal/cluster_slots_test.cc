#include "floodgate/redis/internal/cluster_slots.h"

#include <gtest/gtest.h>

namespace floodgate::internal {
namespace {

Reply integer(std::int64_t n) {
  Reply r;
  r.type = Reply::Type::Integer;
  r.integer = n;
  return r;
}

Reply string(std::string text) {
  Reply r;
  r.type = Reply::Type::String;
  r.text = std::move(text);
  return r;
}

Reply array(std::vector<Reply> elements) {
  Reply r;
  r.type = Reply::Type::Array;
  r.elements = std::move(elements);
  return r;
}

TEST(ClusterSlotsTest, KeySlotIsCrc16OfTheKeyOrItsHashTag) {
  // The CRC16/XMODEM check value: "123456789" -> 0x31C3 = 12739.
  EXPECT_EQ(key_slot("123456789"), 12739);
  // Values the Redis Cluster specification and `CLUSTER KEYSLOT` give.
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot(""), 0);
  // Hash tags: the first {...} with something inside decides.
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("{user1000}.followers"), key_slot("user1000"));
  EXPECT_EQ(key_slot("floodgate:{tenant-7}:api"), key_slot("tenant-7"));
  EXPECT_EQ(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));  // Empty tag: the whole key.
  EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));  // From the first { to the first }.
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  EXPECT_EQ(key_slot("{unclosed"), key_slot("{unclosed"));
  const std::string binary("\xff\x00\x80", 3);
  EXPECT_LT(key_slot(binary), kClusterSlots);
}

TEST(ClusterSlotsTest, ReadsClusterSlotsWithAndWithoutHosts) {
  const Reply reply = array({
      array({integer(0), integer(5460),
             array({string("10.0.0.1"), integer(7000), string("id1"), array({})}),
             array({string("10.0.0.4"), integer(7003), string("id4")})}),
      array({integer(5461), integer(16383), array({string(""), integer(7001), string("id2")})}),
  });
  Result<std::vector<SlotRange>> ranges = parse_cluster_slots(reply, "seed.local");
  ASSERT_TRUE(ranges) << ranges.error().message();
  ASSERT_EQ(ranges->size(), 2u);
  EXPECT_EQ((*ranges)[0].first, 0);
  EXPECT_EQ((*ranges)[0].last, 5460);
  EXPECT_EQ((*ranges)[0].master, (Endpoint{"10.0.0.1", 7000, ""}));
  EXPECT_EQ((*ranges)[1].first, 5461);
  EXPECT_EQ((*ranges)[1].last, 16383);
  EXPECT_EQ((*ranges)[1].master, (Endpoint{"seed.local", 7001, ""}));

  // A master whose address the node does not know yet is left out.
  const Reply unknown =
      array({array({integer(0), integer(10), array({string("?"), integer(7000), string("x")})})});
  Result<std::vector<SlotRange>> none = parse_cluster_slots(unknown, "h");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(ClusterSlotsTest, RejectsMalformedClusterSlots) {
  const auto rejected = [](const Reply& reply) {
    Result<std::vector<SlotRange>> r = parse_cluster_slots(reply, "h");
    return !r && r.error().message().starts_with("CLUSTER SLOTS: ");
  };
  EXPECT_TRUE(rejected(string("nope")));
  EXPECT_TRUE(rejected(array({array({integer(0), integer(1)})})));
  EXPECT_TRUE(
      rejected(array({array({integer(0), integer(16384), array({string("h"), integer(1)})})})));
  EXPECT_TRUE(rejected(array({array({integer(9), integer(8), array({string("h"), integer(1)})})})));
  EXPECT_TRUE(
      rejected(array({array({integer(-1), integer(8), array({string("h"), integer(1)})})})));
  EXPECT_TRUE(rejected(array({array({integer(0), integer(8), array({string("h"), integer(0)})})})));
  EXPECT_TRUE(
      rejected(array({array({integer(0), integer(8), array({string("h"), integer(70000)})})})));
  EXPECT_TRUE(rejected(array({array({integer(0), integer(8), array({integer(1), integer(1)})})})));
}

TEST(ClusterSlotsTest, ReadsRedirections) {
  std::optional<Redirect> moved = parse_redirect("MOVED 3999 127.0.0.1:6381", "h");
  ASSERT_TRUE(moved);
  EXPECT_TRUE(moved->moved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->to, (Endpoint{"127.0.0.1", 6381, ""}));

  std::optional<Redirect> ask = parse_redirect("ASK 16383 10.0.0.2:7000", "h");
  ASSERT_TRUE(ask);
  EXPECT_FALSE(ask->moved);
  EXPECT_EQ(ask->slot, 16383);
  EXPECT_EQ(ask->to, (Endpoint{"10.0.0.2", 7000, ""}));

  std::optional<Redirect> v6 = parse_redirect("MOVED 1 ::1:7000", "h");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->to, (Endpoint{"::1", 7000, ""}));

  std::optional<Redirect> same_host = parse_redirect("MOVED 12 :7002", "node-3");
  ASSERT_TRUE(same_host);
  EXPECT_EQ(same_host->to, (Endpoint{"node-3", 7002, ""}));

  EXPECT_FALSE(parse_redirect("ERR something", "h"));
  EXPECT_FALSE(parse_redirect("MOVED", "h"));
  EXPECT_FALSE(parse_redirect("MOVED 16384 h:1", "h"));
  EXPECT_FALSE(parse_redirect("MOVED x h:1", "h"));
  EXPECT_FALSE(parse_redirect("MOVED 1 h", "h"));
  EXPECT_FALSE(parse_redirect("MOVED 1 h:0", "h"));
  EXPECT_FALSE(parse_redirect("MOVED 1 h:65536", "h"));
  EXPECT_FALSE(parse_redirect("ASK 1 h:12x", "h"));
}

}  // namespace
}  // namespace floodgate::internal
