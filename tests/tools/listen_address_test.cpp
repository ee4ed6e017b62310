// `poolguard export --listen`'s [ADDR:]PORT (tools/listen_address.*): IPv4, bracketed IPv6, a bare
// port on 127.0.0.1, and the malformed ones refused.
#include "tools/listen_address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>

namespace pg::tool {
namespace {

// The address as inet_ntop prints it and the port, from the parsed socket address.
std::string show(const ListenAddress& a) {
  char name[INET6_ADDRSTRLEN] = "?";
  int port = -1;
  if (a.sa.ss_family == AF_INET && a.len == sizeof(sockaddr_in)) {
    const auto* sa = reinterpret_cast<const sockaddr_in*>(&a.sa);
    inet_ntop(AF_INET, &sa->sin_addr, name, sizeof name);
    port = ntohs(sa->sin_port);
  } else if (a.sa.ss_family == AF_INET6 && a.len == sizeof(sockaddr_in6)) {
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(&a.sa);
    inet_ntop(AF_INET6, &sa->sin6_addr, name, sizeof name);
    port = ntohs(sa->sin6_port);
  }
  return std::string(a.sa.ss_family == AF_INET6 ? "v6 " : "v4 ") + name + " " +
         std::to_string(port) + " " + a.host + ":" + std::to_string(a.port);
}

std::string parsed(const std::string& s) {
  ListenAddress a;
  return parse_listen_address(s, &a) ? show(a) : "refused";
}

TEST(ListenAddress, Ipv4AndBarePort) {
  EXPECT_EQ(parsed("9464"), "v4 127.0.0.1 9464 127.0.0.1:9464");
  EXPECT_EQ(parsed("0"), "v4 127.0.0.1 0 127.0.0.1:0");
  EXPECT_EQ(parsed("127.0.0.1:9464"), "v4 127.0.0.1 9464 127.0.0.1:9464");
  EXPECT_EQ(parsed("0.0.0.0:65535"), "v4 0.0.0.0 65535 0.0.0.0:65535");
  EXPECT_EQ(parsed("10.1.2.3:080"), "v4 10.1.2.3 80 10.1.2.3:80");
}

TEST(ListenAddress, Ipv6InBrackets) {
  EXPECT_EQ(parsed("[::1]:9464"), "v6 ::1 9464 [::1]:9464");
  EXPECT_EQ(parsed("[::]:9464"), "v6 :: 9464 [::]:9464");
  EXPECT_EQ(parsed("[0:0:0:0:0:0:0:1]:0"), "v6 ::1 0 [::1]:0");  // printed as inet_ntop does
  EXPECT_EQ(parsed("[fd00::5]:1"), "v6 fd00::5 1 [fd00::5]:1");
  EXPECT_EQ(parsed("[::ffff:127.0.0.1]:9"), "v6 ::ffff:127.0.0.1 9 [::ffff:127.0.0.1]:9");
}

TEST(ListenAddress, MalformedAreRefused) {
  for (const char* s : {"",
                        ":",
                        ":9464",
                        "x",
                        "nowhere:x",
                        "localhost:9464",
                        "127.0.0.1",
                        "127.0.0.1:",
                        "1.2.3:80",
                        "256.0.0.1:80",
                        "127.0.0.1:65536",
                        "127.0.0.1:99999",
                        "127.0.0.1:-1",
                        "127.0.0.1:+1",
                        "127.0.0.1: 1",
                        "127.0.0.1:1x",
                        "::1:9464",
                        "::1",
                        "[::1]",
                        "[::1]:",
                        "[::1]9464",
                        "[::1",
                        "::1]:9464",
                        "[]:9464",
                        "[127.0.0.1]:9464",
                        "[::1]:65536",
                        "[fe80::1%lo]:9464",
                        "[[::1]]:9464",
                        "[::1]:[9464]",
                        "[::g]:9464"}) {
    EXPECT_EQ(parsed(s), "refused") << "'" << s << "'";
  }
}

}  // namespace
}  // namespace pg::tool
