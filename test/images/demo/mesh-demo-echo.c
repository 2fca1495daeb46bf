/*
 * mesh-demo-echo PORT: an HTTP server on PORT (IPv6 and IPv4) that answers every request with
 * `peer=<the caller's address>`, so a test sees who connected: a client pod, or 127.0.0.6 when the request came
 * through the server pod's inbound proxy. Prints `listening on PORT` when ready and one `peer=...` line per request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int listen_on(int port) {
  int on = 1, off = 0;
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd >= 0) {
    struct sockaddr_in6 address = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any};
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) == 0 && listen(fd, 128) == 0) return fd;
    close(fd);
  }
  /* No IPv6 on this host (ipv6.disable=1): IPv4 only. */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, 128) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* The caller's address as text; IPv4-mapped IPv6 addresses as plain IPv4. */
static void peer_text(const struct sockaddr_storage *peer, char *text, size_t size) {
  if (peer->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)peer;
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], text, size);
    } else {
      inet_ntop(AF_INET6, &v6->sin6_addr, text, size);
    }
  } else {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, text, size);
  }
}

static void write_all(int fd, const char *data, size_t length) {
  while (length > 0) {
    ssize_t written = write(fd, data, length);
    if (written <= 0) return;
    data += written;
    length -= (size_t)written;
  }
}

/* Reads the request head (up to a blank line, or 16 KiB, or 10 s), then answers and closes. */
static void serve(int fd, const char *peer) {
  struct timeval timeout = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  char request[16384];
  size_t used = 0;
  while (used < sizeof request - 1) {
    ssize_t got = read(fd, request + used, sizeof request - 1 - used);
    if (got <= 0) break;
    used += (size_t)got;
    request[used] = '\0';
    if (strstr(request, "\r\n\r\n") || strstr(request, "\n\n")) break;
  }
  char body[128], response[512];
  int body_length = snprintf(body, sizeof body, "peer=%s\n", peer);
  int length = snprintf(response, sizeof response,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                        body_length, body);
  write_all(fd, response, (size_t)length);
  shutdown(fd, SHUT_WR);
}

int main(int argc, char **argv) {
  char *end = NULL;
  long port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
  if (argc != 2 || *argv[1] == '\0' || *end != '\0' || port < 1 || port > 65535) {
    fprintf(stderr, "usage: mesh-demo-echo PORT   (PORT: 1-65535)\n");
    return 2;
  }
  int listener = listen_on((int)port);
  if (listener < 0) {
    fprintf(stderr, "mesh-demo-echo: cannot listen on port %ld: %s\n", port, strerror(errno));
    return 1;
  }
  /* Children are reaped by the kernel; each connection is served by its own process. */
  signal(SIGCHLD, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("listening on %ld\n", port);
  for (;;) {
    struct sockaddr_storage peer;
    socklen_t peer_length = sizeof peer;
    int fd = accept(listener, (struct sockaddr *)&peer, &peer_length);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("mesh-demo-echo: accept");
      return 1;
    }
    char text[INET6_ADDRSTRLEN];
    peer_text(&peer, text, sizeof text);
    printf("peer=%s\n", text);
    pid_t child = fork();
    if (child == 0) {
      close(listener);
      serve(fd, text);
      _exit(0);
    }
    if (child < 0) serve(fd, text);
    close(fd);
  }
}
