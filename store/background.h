// Background priority for the threads that do a snapshot's bulk work.
//
// A snapshot is background work: the database's own writers (web workers
// committing small transactions) must not wait for it. Two knobs, both for
// the calling thread only and both allowed without privileges:
//
//   - CPU: SCHED_IDLE, so a writer that wakes (say, from its fsync) takes the
//     CPU at once instead of waiting out the snapshot thread's time slice.
//     Plain nice 10 still let a writer wait for a compressing thread on a
//     two-core machine (bench/README.md, "Commit latency"). If
//     SCHED_IDLE is refused (a seccomp filter, say), nice 19 instead.
//   - Disk: the idle I/O class, which I/O schedulers that know priorities
//     (mq-deadline, bfq) serve after everyone else's requests.
//
// A thread cannot raise its priority back without privileges, so call this
// only on threads made for the background work, never on the caller's.
//
// Neither knob keeps the kernel from finishing what a background thread
// started in it (a page-cache copy, a page fault) before a woken writer
// runs, and the cores share caches and memory bandwidth. So the number of
// busy threads matters more than their priority: on two cores, a full
// snapshot compressing on two threads beside its reader raised a writer's
// p99 commit time far more than one compressing on the reader alone
// (bench/README.md, "Commit latency", the table of snapshot variants).
// Hence also
// CompressOptions::busy_elsewhere (store/pack.h).
#ifndef SNAPSHOT_STORE_BACKGROUND_H_
#define SNAPSHOT_STORE_BACKGROUND_H_

namespace snapshot {

void LowerThisThreadToBackground();

}  // namespace snapshot

#endif  // SNAPSHOT_STORE_BACKGROUND_H_
