#include "common/metrics/exposition_parser.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace glm4v::metrics {
namespace {

using ::testing::HasSubstr;

TEST(ExpositionParserTest, ParsesAWellFormedScrape) {
  const std::string text =
      "# HELP a_total A \\\\ counter.\\nline two\n"
      "# TYPE a_total counter\n"
      "a_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 5\n"
      "a_total{x=\"2\"} 1.5e3 1700000000000\n"
      "# TYPE g gauge\n"
      "g -Inf\n"
      "# TYPE h histogram\n"
      "h_bucket{le=\"0.5\"} 1\n"
      "h_bucket{le=\"+Inf\"} 3\n"
      "h_sum 4\n"
      "h_count 3\n"
      "# TYPE u untyped\n"
      "u NaN\n";
  auto p = ParseExposition(text);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->families.size(), 4u);
  EXPECT_EQ(p->families[0].help, "A \\ counter.\nline two");
  EXPECT_EQ(p->families[0].type, "counter");
  EXPECT_EQ(p->Value("a_total", {{"x", "1"}, {"y", "q\"\\\n"}}), 5);
  EXPECT_EQ(p->Value("a_total", {{"x", "2"}}), 1500);
  EXPECT_TRUE(std::isinf(*p->Value("g")));
  EXPECT_EQ(p->Value("h_bucket", {{"le", "+Inf"}}), 3);
  EXPECT_TRUE(std::isnan(*p->Value("u")));
  EXPECT_FALSE(p->Value("missing").has_value());
  EXPECT_TRUE(ParseExposition("").ok());
}

struct BadCase {
  const char* text;
  const char* error;
};

TEST(ExpositionParserTest, RejectsMalformedInput) {
  const BadCase cases[] = {
      {"# TYPE a counter\na 1", "newline"},
      {"a 1\n", "not preceded by the TYPE"},
      {"# TYPE a counter\n\na 1\n", "blank line"},
      {"# just a comment\n", "neither HELP nor TYPE"},
      {"# TYPE a counter\n# TYPE a counter\n", "second TYPE"},
      {"# HELP a x\n# HELP a y\n# TYPE a counter\n", "second HELP"},
      {"# TYPE a counter\na 1\n# HELP a late\n", "after its samples"},
      {"# TYPE a widget\n", "unknown type"},
      {"# TYPE 1a counter\n", "bad metric name"},
      {"# TYPE a counter\na{x=\"1\"} 1\na{x=\"1\"} 2\n", "duplicate series"},
      {"# TYPE a counter\na -1\n", "negative"},
      {"# TYPE a gauge\na one\n", "bad value"},
      {"# TYPE a gauge\na 1 2 3\n", "optional timestamp"},
      {"# TYPE a gauge\na{x=1} 1\n", "quoted"},
      {"# TYPE a gauge\na{x=\"1\" 1\n", "expected ','"},
      {"# TYPE a gauge\na{x=\"\\t\"} 1\n", "bad escape"},
      {"# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n", "duplicate label"},
      {"# TYPE a gauge\na{__x=\"1\"} 1\n", "bad label name"},
      {"# TYPE a gauge\na{le=\"1\"} 1\n", "le label outside"},
      {"# TYPE a gauge\n# TYPE b gauge\na 1\n", "not preceded"},
      {"# TYPE a gauge\nb 1\n", "not preceded"},
      {"# HELP a x\n", "HELP without TYPE"},
      {"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", "+Inf"},
      {"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
       "decrease"},
      {"# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
       "h_sum 1\nh_count 1\n",
       "ascending"},
      {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", "!= _count"},
      {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n", "missing _sum"},
      {"# TYPE h histogram\nh_bucket{le=\"x\"} 2\nh_sum 1\nh_count 2\n", "bad le"},
      {"# TYPE h histogram\nh 2\n", "not preceded"},
  };
  for (const BadCase& c : cases) {
    auto p = ParseExposition(c.text);
    ASSERT_FALSE(p.ok()) << "accepted:\n" << c.text;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(c.error)) << c.text;
  }
}

}  // namespace
}  // namespace glm4v::metrics
