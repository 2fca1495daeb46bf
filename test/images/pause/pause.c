/*
 * The pod sandbox's process (the kubelet's "pause" image): holds the pod's namespaces open, reaps the zombies a
 * shared PID namespace hands it, and exits 0 on SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_stop(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

static void on_child(int signal_number) {
  (void)signal_number;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

static void handle(int signal_number, void (*handler)(int), int flags) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = handler;
  action.sa_flags = flags;
  sigemptyset(&action.sa_mask);
  if (sigaction(signal_number, &action, NULL) != 0) {
    perror("pause: sigaction");
    _exit(2);
  }
}

int main(void) {
  handle(SIGTERM, on_stop, 0);
  handle(SIGINT, on_stop, 0);
  handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART);
  if (getpid() != 1) fprintf(stderr, "pause: warning: not running as PID 1\n");
  while (!stopping) pause();
  return 0;
}
