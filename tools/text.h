// Text for the tool's output: byte counts for people, JSON strings, fixed-point numbers and hex
// addresses. Shared by the commands (tools/cmd_*.cpp) and the flame graphs (tools/flamegraph.cpp).
#pragma once

#include <cstdint>
#include <string>

namespace pg::tool {

// "512 B", "1.5 KiB", ... "3.0 TiB".
std::string bytes(uint64_t n);
// `s` as a JSON string literal, quotes included.
std::string json_string(const std::string& s);
// `v` with `decimals` decimals ("%.*f"); 0 when not finite.
std::string fixed(double v, int decimals);
// a / b, 0 when b is 0.
double ratio(uint64_t a, uint64_t b);
// "0x1f".
std::string hex(uint64_t v);

}  // namespace pg::tool
