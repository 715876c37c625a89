/* A tiny static test program for Pods on the dev cluster's node (no base image exists here).
 *   node_probe serve PORT          answer every HTTP request with "node_probe <hostname>"
 *   node_probe get HOST PORT       exit 0 once an HTTP GET to HOST:PORT answers 200 (tries for 30 s)
 *   node_probe tcp HOST PORT       exit 0 once a TCP connection to HOST:PORT opens (tries for 30 s)
 *   node_probe closed HOST PORT    exit 0 if a TCP connection to HOST:PORT is refused or times out, 1 if it opens
 * It only ever talks to the addresses it is given; the tests give it cluster addresses on this machine. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int dial(const char *host, int port) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  struct timeval timeout = {.tv_sec = 2};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || inet_pton(AF_INET, host, &addr.sin_addr) != 1) return -1;
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { close(fd); return -1; }
  return fd;
}

static int http_ok(const char *host, int port) {
  char answer[64] = {0};
  int fd = dial(host, port), ok = 0;
  if (fd < 0) return 0;
  const char *request = "GET / HTTP/1.0\r\n\r\n";
  if (write(fd, request, strlen(request)) > 0 && read(fd, answer, sizeof answer - 1) > 0)
    ok = strncmp(answer, "HTTP/1.0 200", 12) == 0;
  close(fd);
  return ok;
}

static int serve(int port) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = INADDR_ANY};
  char name[64] = {0}, body[160], request[1024];
  int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
  gethostname(name, sizeof name - 1);
  snprintf(body, sizeof body, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nnode_probe %s\n", name);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0) { perror("listen"); return 1; }
  for (;;) {
    int client = accept(fd, NULL, NULL);
    if (client < 0) continue;
    if (read(client, request, sizeof request) >= 0) (void)!write(client, body, strlen(body));
    close(client);
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "serve") == 0) return serve(atoi(argv[2]));
  if (argc != 4) { fprintf(stderr, "usage: node_probe serve PORT | get|tcp|closed HOST PORT\n"); return 2; }
  const char *mode = argv[1], *host = argv[2];
  int port = atoi(argv[3]);
  if (strcmp(mode, "closed") == 0) {
    int fd = dial(host, port);
    if (fd >= 0) { printf("OPEN %s:%d\n", host, port); close(fd); return 1; }
    printf("closed %s:%d\n", host, port);
    return 0;
  }
  for (int attempt = 0; attempt < 60; attempt++) {
    int fd;
    if (strcmp(mode, "get") == 0 ? http_ok(host, port) : (fd = dial(host, port)) >= 0 && close(fd) == 0) {
      printf("reached %s:%d\n", host, port);
      return 0;
    }
    usleep(500000);
  }
  printf("could not reach %s:%d\n", host, port);
  return 1;
}
