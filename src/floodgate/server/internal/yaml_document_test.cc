#include "floodgate/server/internal/yaml_document.h"

#include <gtest/gtest.h>

#include <string>

namespace floodgate::internal {
namespace {

using Kind = YamlDocument::Kind;

std::string error_of(std::string_view text) {
  Result<YamlDocument> doc = YamlDocument::parse(text, "f.yaml");
  EXPECT_FALSE(doc) << text.substr(0, 200);
  return doc ? std::string() : doc.error().message();
}

TEST(YamlDocumentTest, ReadsMapsSequencesScalarsNullsAndLines) {
  Result<YamlDocument> doc = YamlDocument::parse(
      "a: 1\nb:\n  - x\n  - 'y'\n  - {k: v}\nc:\nd: ~\ne: \"\"\nf: &anchor [1, 2]\ng: *anchor\n",
      "f.yaml");
  ASSERT_TRUE(doc) << doc.error().message();
  const std::uint32_t root = doc->root();
  ASSERT_EQ(doc->kind(root), Kind::Map);
  EXPECT_EQ(doc->text(doc->find(root, "a")), "1");
  const std::uint32_t b = doc->find(root, "b");
  ASSERT_EQ(doc->kind(b), Kind::Seq);
  EXPECT_EQ(doc->line(b), 3u);
  std::uint32_t item = doc->first(b);
  EXPECT_EQ(doc->text(item), "x");
  item = doc->next(item);
  EXPECT_EQ(doc->text(item), "y");
  EXPECT_EQ(doc->line(item), 4u);
  item = doc->next(item);
  EXPECT_EQ(doc->text(doc->find(item, "k")), "v");
  EXPECT_EQ(doc->next(item), YamlDocument::kNone);
  EXPECT_EQ(doc->kind(doc->find(root, "c")), Kind::Null);
  EXPECT_EQ(doc->kind(doc->find(root, "d")), Kind::Null);
  EXPECT_EQ(doc->kind(doc->find(root, "e")), Kind::Scalar) << "a quoted empty string is a value";
  const std::uint32_t g = doc->find(root, "g");
  ASSERT_EQ(doc->kind(g), Kind::Seq);
  EXPECT_EQ(doc->line(g), 10u) << "an alias is where it is written";
  EXPECT_EQ(doc->text(doc->first(g)), "1");
  EXPECT_EQ(doc->find(root, "missing"), YamlDocument::kNone);
  Result<YamlDocument> empty = YamlDocument::parse("", "f.yaml");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->kind(empty->root()), Kind::Null);
}

// A key written twice in one mapping is refused with both lines: either reading (first or last
// wins) would hide a merge mistake ("requests_per_unit: 5, requests_per_unit: 1000" read as 5).
TEST(YamlDocumentTest, RefusesAKeyGivenTwiceInOneMapping) {
  EXPECT_EQ(error_of("domain: api\ndomain: other\n"),
            "f.yaml:2: key \"domain\" given twice in one mapping (first at line 1)");
  EXPECT_EQ(error_of("r: {unit: second, requests_per_unit: 5,\n    requests_per_unit: 1000}\n"),
            "f.yaml:2: key \"requests_per_unit\" given twice in one mapping (first at line 1)");
  // Past the keys compared one by one, the hash map finds it too.
  std::string many;
  for (int i = 0; i < 40; ++i) many += "k" + std::to_string(i) + ": v\n";
  EXPECT_EQ(error_of(many + "k3: again\n"),
            "f.yaml:41: key \"k3\" given twice in one mapping (first at line 4)");
  // The same key in two mappings is fine.
  EXPECT_TRUE(YamlDocument::parse("- {a: 1}\n- {a: 2}\n", "f.yaml"));
}

TEST(YamlDocumentTest, RefusesNestingPastTheLimitNamingIt) {
  std::string deep(600, '[');
  deep += std::string(600, ']');
  EXPECT_EQ(error_of(deep), "f.yaml:1: nested more than 512 levels deep");
  std::string fine(500, '[');
  fine += std::string(500, ']');
  EXPECT_TRUE(YamlDocument::parse(fine, "f.yaml"));
}

// A "billion laughs": each level two aliases of the one below. 1.2 KB used to become 2^20 rules
// and 4 GB; the alias that crosses the budget is refused with its line, at once.
TEST(YamlDocumentTest, RefusesAliasesThatExpandPastTheBudget) {
  std::string text = "&L0 [{key: z, rate_limit: {unit: second, requests_per_unit: 5}}]";
  for (int i = 1; i <= 20; ++i) {
    text = "&L" + std::to_string(i) + " [{key: a, descriptors: " + text +
           "}, {key: b, descriptors: *L" + std::to_string(i - 1) + "}]";
  }
  const std::string error = error_of("domain: api\ndescriptors: " + text + "\n");
  EXPECT_TRUE(error.starts_with("f.yaml:2: aliases expand to more than 100000 nodes")) << error;
  EXPECT_NE(error.find("refused as an alias bomb"), std::string::npos) << error;
  // Aliases that reuse a block, as operators write them, are fine.
  std::string reuse = "base: &limit {unit: second, requests_per_unit: 5}\nlist:\n";
  for (int i = 0; i < 5'000; ++i) reuse += "  - {key: k" + std::to_string(i) + ", r: *limit}\n";
  EXPECT_TRUE(YamlDocument::parse(reuse, "f.yaml"));
  EXPECT_EQ(error_of("a: *nowhere\n"), "f.yaml:1: alias *nowhere names no anchor before it");
  EXPECT_EQ(error_of("a: &self [1, *self]\n"),
            "f.yaml:1: alias *self names a node that contains it");
}

TEST(YamlDocumentTest, SaysWhatIsNotValidYamlWithItsLine) {
  const std::string error = error_of("a: 1\nb: [unclosed\n");
  EXPECT_TRUE(error.starts_with("f.yaml:")) << error;
  EXPECT_NE(error.find("not valid YAML: "), std::string::npos) << error;
  EXPECT_EQ(error_of("a: 1\n---\nb: 2\n"), "f.yaml:2: a second YAML document (a file holds one)");
}

}  // namespace
}  // namespace floodgate::internal
