#include "floodgate/redis/internal/url.h"

#include <gtest/gtest.h>

namespace floodgate::internal {
namespace {

TEST(RedisUrlTest, ReadsEveryForm) {
  Result<RedisUrl> plain = parse_redis_url("redis://10.0.0.5:6380/3");
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_FALSE(plain->cluster);
  ASSERT_EQ(plain->endpoints.size(), 1u);
  EXPECT_EQ(plain->endpoints[0], (Endpoint{"10.0.0.5", 6380, ""}));
  EXPECT_EQ(plain->db, 3);

  Result<RedisUrl> defaults = parse_redis_url("redis://cache");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->endpoints[0], (Endpoint{"cache", 6379, ""}));
  EXPECT_EQ(defaults->db, 0);

  Result<RedisUrl> auth = parse_redis_url("redis://limiter:s3cret@h:1/0");
  ASSERT_TRUE(auth);
  EXPECT_EQ(auth->username, "limiter");
  EXPECT_EQ(auth->password, "s3cret");
  Result<RedisUrl> password_only = parse_redis_url("redis://:pw@h");
  ASSERT_TRUE(password_only);
  EXPECT_EQ(password_only->username, "");
  EXPECT_EQ(password_only->password, "pw");

  Result<RedisUrl> v6 = parse_redis_url("redis://[::1]:7000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->endpoints[0], (Endpoint{"::1", 7000, ""}));
  EXPECT_EQ(v6->endpoints[0].to_string(), "[::1]:7000");

  Result<RedisUrl> socket = parse_redis_url("unix:///run/redis/redis.sock?db=2");
  ASSERT_TRUE(socket);
  EXPECT_EQ(socket->endpoints[0].path, "/run/redis/redis.sock");
  EXPECT_EQ(socket->db, 2);

  Result<RedisUrl> cluster = parse_redis_url("redis+cluster://a:7000,b:7001,[::1]:7002");
  ASSERT_TRUE(cluster);
  EXPECT_TRUE(cluster->cluster);
  ASSERT_EQ(cluster->endpoints.size(), 3u);
  EXPECT_EQ(cluster->endpoints[1], (Endpoint{"b", 7001, ""}));
}

// Credentials are percent-decoded, as redis-py and go-redis read them: a URL copied from their
// configuration works here (it used to be sent as written, and refused with WRONGPASS).
TEST(RedisUrlTest, ReadsSentinelUrls) {
  Result<RedisUrl> u = parse_redis_url("redis+sentinel://u:p@s1:5000,s2,[::1]/mymaster/2");
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_EQ(u->master, "mymaster");
  EXPECT_EQ(u->db, 2);
  EXPECT_EQ(u->username, "u");
  EXPECT_EQ(u->password, "p");
  ASSERT_EQ(u->endpoints.size(), 3u);
  EXPECT_EQ(u->endpoints[0].to_string(), "s1:5000");
  EXPECT_EQ(u->endpoints[1].port, 26379) << "Sentinel's own port when none is written";
  EXPECT_EQ(u->endpoints[2].host, "::1");
  EXPECT_EQ(u->endpoints[2].port, 26379);
  EXPECT_FALSE(u->cluster);
  u = parse_redis_url("redis+sentinel://s1:26379");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().message(),
            "redis URL \"redis+sentinel://s1:26379\": Sentinel needs the master's name: "
            "redis+sentinel://host:port/master-name");
  EXPECT_EQ(quoted_url("redis+sentinel://u:secret@s1/m"), "\"redis+sentinel://u:***@s1/m\"");
}

TEST(RedisUrlTest, DecodesPercentEncodedCredentials) {
  Result<RedisUrl> url = parse_redis_url("redis://us%65r:p%40ss%3Aw%2Frd%25%23%3F@127.0.0.1:7000");
  ASSERT_TRUE(url) << url.error().message();
  EXPECT_EQ(url->username, "user");
  EXPECT_EQ(url->password, "p@ss:w/rd%#?");
  EXPECT_EQ(url->endpoints[0], (Endpoint{"127.0.0.1", 7000, ""}));
  // Bytes a URL may hold as they are stay as they are, '@' included (the last '@' ends them).
  Result<RedisUrl> raw = parse_redis_url("redis://:p@ss:w/rd#@h:1");
  ASSERT_TRUE(raw) << raw.error().message();
  EXPECT_EQ(raw->password, "p@ss:w/rd#");
}

TEST(RedisUrlTest, RejectsBadPercentEncodingWithoutShowingThePassword) {
  for (const std::string_view url : {"redis://u:100%@h", "redis://u:%4@h", "redis://u%zz:p@h"}) {
    Result<RedisUrl> parsed = parse_redis_url(url);
    ASSERT_FALSE(parsed) << url;
    EXPECT_NE(parsed.error().message().find("starts no %XX pair (write a '%' itself as %25)"),
              std::string::npos)
        << parsed.error().message();
    EXPECT_NE(parsed.error().message().find(":***@h\""), std::string::npos)
        << parsed.error().message();
  }
}

TEST(RedisUrlTest, RejectsBadUrlsNamingTheUrlAndTheProblem) {
  const struct {
    const char* url;
    const char* says;
  } cases[] = {
      {"localhost:6379", "expected redis://host:port[/db]"},
      {"http://h:1", "expected redis://"},
      {"redis://h:0", "port must be 1 to 65535 (got \"0\")"},
      {"redis://h:65536", "port must be 1 to 65535 (got \"65536\")"},
      {"redis://h:12ab", "port must be 1 to 65535"},
      {"redis://h:", "empty port"},
      {"redis://:6379", "no host"},
      {"redis://h/x", "the database must be a number from 0 (got \"x\")"},
      {"redis://h/-1", "the database must be a number"},
      {"redis://a:1,b:2", "several hosts need redis+cluster://"},
      {"redis+cluster://a:1/2", "Redis Cluster has only database 0"},
      {"unix://relative.sock", "absolute path"},
      {"unix:///s.sock?database=1", "db=N"},
      {"redis://[::1:7000", "unclosed '['"},
      {"redis://h:6379?timeout=1",
       "query parameters are not supported (got \"?timeout=1\"); timeouts and pools are the "
       "limiter's options"},
  };
  for (const auto& c : cases) {
    Result<RedisUrl> parsed = parse_redis_url(c.url);
    ASSERT_FALSE(parsed) << c.url;
    EXPECT_NE(parsed.error().message().find(std::string("\"") + c.url + "\""), std::string::npos)
        << parsed.error().message();
    EXPECT_NE(parsed.error().message().find(c.says), std::string::npos)
        << c.url << ": " << parsed.error().message();
  }
}

TEST(RedisUrlTest, QuotesAUrlWholeWithItsPasswordHidden) {
  EXPECT_EQ(quoted_url("redis://limiter:s3cret@h:1/0"), "\"redis://limiter:***@h:1/0\"");
  EXPECT_EQ(quoted_url("redis://:s3cret@h"), "\"redis://:***@h\"");
  EXPECT_EQ(quoted_url("redis://s3cret@h"), "\"redis://:***@h\"");
  EXPECT_EQ(quoted_url("redis+cluster://u:p@ss@a:1,b:2"), "\"redis+cluster://u:***@a:1,b:2\"");
  EXPECT_EQ(quoted_url("redis://limiter:@h"), "\"redis://limiter:@h\"");  // No password.
  EXPECT_EQ(quoted_url("redis://h:1"), "\"redis://h:1\"");
  // A socket path of any length a system takes, and a long seed list, are not cut.
  const std::string path = "unix:///" + std::string(200, 'd') + "/redis.sock";
  EXPECT_EQ(quoted_url(path), "\"" + path + "\"");
  // A bad URL's error hides the password too.
  Result<RedisUrl> bad = parse_redis_url("redis://u:s3cret@h:0");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message().find("s3cret"), std::string::npos) << bad.error().message();
  EXPECT_NE(bad.error().message().find("\"redis://u:***@h:0\""), std::string::npos)
      << bad.error().message();
}

}  // namespace
}  // namespace floodgate::internal
