// Parses `poolguard export --listen`'s [ADDR:]PORT (tools/listen_address.h).
#include "tools/listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace pg::tool {

namespace {

// "0".."65535" in decimal digits only (no sign, no space); -1 otherwise.
int parse_port(const std::string& s) {
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos) {
    return -1;
  }
  int p = std::stoi(s);
  return p <= 65535 ? p : -1;
}

}  // namespace

bool parse_listen_address(const std::string& s, ListenAddress* out) {
  std::string addr = "127.0.0.1", port = s;
  bool v6 = false;
  if (!s.empty() && s[0] == '[') {
    // "[ADDR]:PORT": the brackets keep an IPv6 address's colons apart from the port's.
    size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    addr = s.substr(1, close - 1);
    port = s.substr(close + 2);
    v6 = true;
  } else if (size_t colon = s.rfind(':'); colon != std::string::npos) {
    addr = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  int p = parse_port(port);
  if (p < 0) return false;
  *out = ListenAddress{};
  if (v6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&out->sa);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(static_cast<uint16_t>(p));
    // inet_pton refuses a zone ("%eth0") and an IPv4 address: neither is served.
    if (inet_pton(AF_INET6, addr.c_str(), &sa->sin6_addr) != 1) return false;
    out->len = sizeof(sockaddr_in6);
    char name[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &sa->sin6_addr, name, sizeof name);
    out->host = std::string("[") + name + "]";
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&out->sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(static_cast<uint16_t>(p));
    if (inet_pton(AF_INET, addr.c_str(), &sa->sin_addr) != 1) return false;
    out->len = sizeof(sockaddr_in);
    out->host = addr;
  }
  out->port = p;
  return true;
}

}  // namespace pg::tool
