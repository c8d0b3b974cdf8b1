// A snapshot's work in the background (store/background.h and the pack's
// compress hooks): the hooks a snapshot waits at (busy_elsewhere,
// before_writeback, between_blocks) are asked when they should be and change
// nothing stored, and only the calling thread's priority is lowered.

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <random>
#include <string>
#include <thread>

#include "store/background.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

// Takes a snapshot of `img` into a new store at `dir` whose pack hooks
// `hooks` sets, and checks that it reads back.
void SnapWithPackHooks(const std::string& dir, const Image& img,
                       const std::function<void(snapshot::CompressOptions*)>& hooks) {
  StoreOptions o = Options(dir);
  hooks(&o.compress);
  auto store = OpenOrDie(o);
  ASSERT_NE(store, nullptr);
  uint64_t id = 0;
  ASSERT_OK(Snap(store.get(), img, "", &id));
  EXPECT_TRUE(ReadsBack(store.get(), id, img));
}

// While busy_elsewhere() says the application needs the cores, frames are
// compressed on the caller's thread; the pack is the same either way.
TEST(Background, BusyElsewhereIsAskedForEveryFrameAndChangesNothingStored) {
  const Image img = MakeImage(4096, 1280, 1);  // 5 frames of 1 MiB
  TempDir tmp;
  for (int mode = 0; mode < 3; mode++) {  // never, always, every other frame
    SCOPED_TRACE("mode " + std::to_string(mode));
    int asked = 0;
    SnapWithPackHooks(tmp / ("s" + std::to_string(mode)), img, [&](snapshot::CompressOptions* c) {
      c->busy_elsewhere = [&] {
        asked++;
        return mode == 1 || (mode == 2 && asked % 2 == 0);
      };
    });
    EXPECT_GE(asked, 5);
  }
}

// The pack file asks before_writeback before each 256 KiB chunk it writes
// back (store/env_posix.cc); a snapshot waits there for a gap between the
// database's commits.
TEST(Background, BeforeWritebackIsAskedForEveryChunk) {
  Image img;  // pages that do not compress: the pack is about their size
  img.page_size = 4096;
  std::mt19937 rng(7);
  for (int i = 0; i < 1024; i++) {
    std::string p(4096, '\0');
    for (char& c : p) c = char(rng());
    img.pages.push_back(p);
  }
  TempDir tmp;
  int asked = 0;
  SnapWithPackHooks(tmp / "s", img, [&](snapshot::CompressOptions* c) { c->before_writeback = [&] { asked++; }; });
  EXPECT_GE(asked, 15);  // 4 MiB in 256 KiB chunks
}

// With between_blocks set, frames are compressed in 128 KiB steps with the
// hook called between them (a snapshot pauses there while a writer is in a
// transaction); the pack reads back the same.
TEST(Background, BetweenBlocksIsCalledWithinEveryFrame) {
  const Image img = MakeImage(4096, 1280, 1);  // 5 frames of 1 MiB
  TempDir tmp;
  std::atomic<int> calls{0};
  SnapWithPackHooks(tmp / "s", img, [&](snapshot::CompressOptions* c) { c->between_blocks = [&] { calls++; }; });
  EXPECT_EQ(5 * 7, calls.load());  // 8 steps a frame, 7 gaps
}

// A snapshot's threads yield the CPU and the disk to the database's writers
// (store/background.h); the caller's own thread is left alone.
TEST(Background, LowersOnlyTheCallingThread) {
  int policy = -1, io_class = -1;
  std::thread t([&] {
    snapshot::LowerThisThreadToBackground();
    policy = sched_getscheduler(0);
    const long prio = syscall(SYS_ioprio_get, 1, 0);  // IOPRIO_WHO_PROCESS, this thread
    io_class = prio < 0 ? -1 : int(prio >> 13);
  });
  t.join();
  EXPECT_EQ(SCHED_IDLE, policy);
  EXPECT_EQ(3, io_class);  // IOPRIO_CLASS_IDLE
  EXPECT_EQ(SCHED_OTHER, sched_getscheduler(0));
}

}  // namespace
}  // namespace store_test
