// Bench-only LD_PRELOAD: gcc -shared -fPIC -O2 bench/idle_refused.c -o /tmp/idle_refused.so
// Refuses SCHED_IDLE, as a seccomp filter might, so the snapshot threads take
// store/background.cc's own fallback: nice 19. Used when a benchmark shares
// the machine with other jobs that run at nice 19 (builds): a SCHED_IDLE
// thread would get no CPU beside them, while at nice 19 it shares their CPU
// and, like a SCHED_IDLE thread, still yields to the benchmark's nice-0
// writers. (bench/noidle.c instead keeps the threads at the writers' own
// priority, which measures the store, not the scheduler.)
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
int sched_setscheduler(pid_t pid, int policy, const struct sched_param* p) {
  (void)pid; (void)policy; (void)p;
  errno = EPERM;
  return -1;
}
