// Text for the tool's output: byte counts for people, JSON strings, fixed-point numbers, hex
// addresses and UTF-8 lengths. Shared by the commands (tools/cmd_*.cpp), the flame graphs
// (tools/flamegraph.cpp) and the timeline chart (tools/timeline_chart.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pg::tool {

// "512 B", "1.5 KiB", ... "3.0 TiB".
std::string bytes(uint64_t n);
// `s` as a JSON string literal, quotes included.
std::string json_string(const std::string& s);
// UTC time of a CLOCK_REALTIME reading in ISO 8601 with milliseconds, "2026-12-06T15:09:40.145Z"
// (the form of the limit records' "time").
std::string iso_time(uint64_t unix_ns);
// `v` with `decimals` decimals ("%.*f"); 0 when not finite.
std::string fixed(double v, int decimals);
// a / b, 0 when b is 0.
double ratio(uint64_t a, uint64_t b);
// "0x1f".
std::string hex(uint64_t v);
// The code points of UTF-8 text (bytes that do not continue a sequence), and its first n code
// points (all of it when it has fewer): for fitting labels to a width.
size_t code_points(const std::string& s);
std::string first_code_points(const std::string& s, size_t n);

}  // namespace pg::tool
