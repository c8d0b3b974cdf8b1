#include "store/background.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace snapshot {

namespace {
// From linux/ioprio.h, which not every libc exposes.
constexpr int kIoprioWhoProcess = 1;  // with id 0 and a thread: this thread
constexpr int kIoprioClassIdle = 3;
constexpr int kIoprioClassShift = 13;
}  // namespace

void LowerThisThreadToBackground() {
  const pid_t tid = pid_t(syscall(SYS_gettid));
  sched_param param{};
  if (sched_setscheduler(tid, SCHED_IDLE, &param) != 0) setpriority(PRIO_PROCESS, tid, 19);
  syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, kIoprioClassIdle << kIoprioClassShift);
}

}  // namespace snapshot
