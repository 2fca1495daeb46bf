/*
 * Prints the original destination of a redirected IPv6 TCP connection: the socket is this program's standard
 * input, the answer one line "ADDRESS PORT". Node has no getsockopt, so the lab's IPv6 relay runs this once per
 * accepted connection. (HAProxy does the same for IPv4 with SO_ORIGINAL_DST.)
 * Build: gcc -O2 -Wall -Werror -o original-destination original-destination.c
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

/* From <linux/netfilter_ipv6/ip6_tables.h>, which cannot be included next to the libc headers. */
#define IP6T_SO_ORIGINAL_DST 80

int main(void) {
  struct sockaddr_in6 destination;
  socklen_t length = sizeof destination;
  char address[INET6_ADDRSTRLEN];

  if (getsockopt(0, IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST, &destination, &length) != 0) {
    perror("getsockopt(IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST) on standard input");
    return 1;
  }
  if (inet_ntop(AF_INET6, &destination.sin6_addr, address, sizeof address) == NULL) {
    perror("inet_ntop");
    return 1;
  }
  printf("%s %u\n", address, ntohs(destination.sin6_port));
  return 0;
}
