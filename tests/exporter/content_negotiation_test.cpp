// Which exposition format a scrape gets from its Accept header
// (exporter/src/content_negotiation.hpp): Prometheus' own headers, q-values,
// the text default, unknown and malformed types.

#include "content_negotiation.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using spindle::detail::negotiate_format;
using spindle::detail::ScrapeFormat;

constexpr ScrapeFormat kText = ScrapeFormat::kText;
constexpr ScrapeFormat kProtobuf = ScrapeFormat::kProtobuf;

// The media range of the delimited protobuf exposition.
const std::string kProto =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";

TEST(ContentNegotiation, PrometheusGetsProtobufOnlyWithNativeHistogramsEnabled) {
  // What Prometheus 2.42 sends with --enable-feature=native-histograms ...
  EXPECT_EQ(
      negotiate_format("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                       "encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,"
                       "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;"
                       "q=0.5,*/*;q=0.1"),
      kProtobuf);
  // ... and without it.
  EXPECT_EQ(negotiate_format("application/openmetrics-text;version=1.0.0,application/"
                             "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;"
                             "q=0.5,*/*;q=0.1"),
            kText);
}

TEST(ContentNegotiation, TheTextIsTheDefault) {
  EXPECT_EQ(negotiate_format(""), kText);
  EXPECT_EQ(negotiate_format("*/*"), kText);
  EXPECT_EQ(negotiate_format("text/plain"), kText);
  EXPECT_EQ(negotiate_format("text/*"), kText);
  EXPECT_EQ(negotiate_format("   "), kText);
  EXPECT_EQ(negotiate_format(","), kText);
}

TEST(ContentNegotiation, UnknownTypesGetTheText) {
  EXPECT_EQ(negotiate_format("application/json"), kText);
  EXPECT_EQ(negotiate_format("application/openmetrics-text;version=1.0.0"), kText);
  EXPECT_EQ(negotiate_format("image/png, application/xml;q=0.9"), kText);
  // A wildcard never selects protobuf.
  EXPECT_EQ(negotiate_format("application/*"), kText);
  // Other text versions are not spindle's text.
  EXPECT_EQ(negotiate_format("text/plain;version=1.0.0;q=1, " + kProto + ";q=0.1"), kProtobuf);
}

TEST(ContentNegotiation, ProtobufNeedsTheDelimitedMetricFamilyParameters) {
  EXPECT_EQ(negotiate_format(kProto), kProtobuf);
  EXPECT_EQ(negotiate_format("application/vnd.google.protobuf"), kText);
  EXPECT_EQ(negotiate_format("application/vnd.google.protobuf;encoding=delimited"), kText);
  EXPECT_EQ(
      negotiate_format("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily"),
      kText);
  EXPECT_EQ(negotiate_format("application/vnd.google.protobuf;proto=io.prometheus.client."
                             "MetricFamily;encoding=text"),
            kText);
  EXPECT_EQ(negotiate_format("application/vnd.google.protobuf;proto=io.prometheus.client."
                             "MetricFamily;encoding=compact-text"),
            kText);
  EXPECT_EQ(negotiate_format("application/vnd.google.protobuf;proto=other.Message;"
                             "encoding=delimited"),
            kText);
}

TEST(ContentNegotiation, CaseSpacesQuotesAndParameterOrderDoNotMatter) {
  EXPECT_EQ(negotiate_format("Application/Vnd.Google.Protobuf; Encoding=delimited ; "
                             "PROTO=\"io.prometheus.client.MetricFamily\""),
            kProtobuf);
  EXPECT_EQ(negotiate_format("  " + kProto + " ;  q=0.9  , text/plain ; q=0.5 "), kProtobuf);
}

TEST(ContentNegotiation, TheHigherQValueWins) {
  EXPECT_EQ(negotiate_format(kProto + ";q=0.4,text/plain;q=0.5"), kText);
  EXPECT_EQ(negotiate_format(kProto + ";q=0.6,text/plain;q=0.5"), kProtobuf);
  EXPECT_EQ(negotiate_format("text/plain;q=0.5," + kProto + ";q=0.501"), kProtobuf);
  EXPECT_EQ(negotiate_format("*/*;q=0.9," + kProto + ";q=0.8"), kText);
  EXPECT_EQ(negotiate_format(kProto + ";q=1.000,text/plain;q=0.999"), kProtobuf);
  // q = 0: not acceptable.
  EXPECT_EQ(negotiate_format(kProto + ";q=0"), kText);
  EXPECT_EQ(negotiate_format(kProto + ";q=0.000,*/*;q=0.001"), kText);
  EXPECT_EQ(negotiate_format("text/plain;q=0," + kProto + ";q=0.1"), kProtobuf);
  // The most specific range sets a format's weight: text/plain;q=0 overrides */*.
  EXPECT_EQ(negotiate_format("*/*;q=0.9, text/plain;q=0, " + kProto + ";q=0.2"), kProtobuf);
  EXPECT_EQ(negotiate_format("text/*;q=0.9, text/plain;q=0.1, " + kProto + ";q=0.2"), kProtobuf);
}

TEST(ContentNegotiation, OnATieTheMoreSpecificThenTheFirstWins) {
  EXPECT_EQ(negotiate_format(kProto + ", text/plain"), kProtobuf);
  EXPECT_EQ(negotiate_format("text/plain, " + kProto), kText);
  EXPECT_EQ(negotiate_format("*/*, " + kProto), kProtobuf);  // an exact type beats a wildcard
  EXPECT_EQ(negotiate_format("text/*;q=0.5, " + kProto + ";q=0.5"), kProtobuf);
}

TEST(ContentNegotiation, MalformedRangesAreSkipped) {
  // A bad q-value drops its range only.
  EXPECT_EQ(negotiate_format(kProto + ";q=2"), kText);
  EXPECT_EQ(negotiate_format(kProto + ";q=0.5x"), kText);
  EXPECT_EQ(negotiate_format(kProto + ";q=-1"), kText);
  EXPECT_EQ(negotiate_format(kProto + ";q=0.12345"), kText);
  EXPECT_EQ(negotiate_format(kProto + ";q=1.5"), kText);
  EXPECT_EQ(negotiate_format(kProto + ";q=, text/plain;q=0.1"), kText);
  EXPECT_EQ(negotiate_format("text/plain;q=bad, " + kProto + ";q=0.1"), kProtobuf);
  // Not type/subtype.
  EXPECT_EQ(negotiate_format("protobuf, /x, x/, " + kProto), kProtobuf);
  // A parameter without '='.
  EXPECT_EQ(negotiate_format(kProto + ";delimited"), kText);
  // A comma inside a quoted value does not split the range.
  EXPECT_EQ(negotiate_format("text/plain;x=\"a,b\";q=0.1, " + kProto + ";q=0.2"), kProtobuf);
  // Parameters after q are extensions, not media type parameters.
  EXPECT_EQ(negotiate_format("application/vnd.google.protobuf;q=1;proto=io.prometheus.client."
                             "MetricFamily;encoding=delimited"),
            kText);
}

TEST(ContentNegotiation, ContentTypesAreTheOnesPrometheusExpects) {
  EXPECT_EQ(spindle::detail::content_type(kProtobuf),
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
            "encoding=delimited");
  EXPECT_EQ(spindle::detail::content_type(kText), "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace
