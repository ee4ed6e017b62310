// The address `poolguard export --listen` takes, "[ADDR:]PORT": ADDR an IPv4 address, or an IPv6
// one in brackets as in a URL ("[::1]:9464", "[::]:9464"); a bare PORT is 127.0.0.1's, so that
// nothing is served beyond the machine unless asked. Parsing only: no socket is made here.
#pragma once

#include <sys/socket.h>

#include <string>

namespace pg::tool {

struct ListenAddress {
  sockaddr_storage sa{};  // a sockaddr_in or sockaddr_in6, port included
  socklen_t len = 0;
  std::string host;  // as a URL writes it: "127.0.0.1", "[::1]"
  int port = 0;
};

// false if `s` is not [ADDR:]PORT as above (a host name, an IPv6 address without brackets, a
// port above 65535 or missing).
bool parse_listen_address(const std::string& s, ListenAddress* out);

}  // namespace pg::tool
