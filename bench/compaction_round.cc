// Times compaction rounds on a copy of a real store: how long a round holds
// the store's exclusive lock, which every other snapshot waits for.
//
//   build/compaction_round STORE_DIR DB_NAME [NEW_SNAPSHOTS]
//
// Opens the store for writing (it must not be in use), takes NEW_SNAPSHOTS
// (default 40) small snapshots on the newest one, each changing two of its
// pages (page 1 and a random one, as a one-row UPDATE does), without
// compacting, so that the store needs a round; then runs rounds until one
// finds nothing to do, printing each one's wall and CPU time, from opening
// the store to closing it, as snapshot_backup() runs it. Changes the store:
// run it on a copy (bench/README.md, "A store after thousands of
// snapshots").
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "store/store.h"

using Clock = std::chrono::steady_clock;
using namespace snapshot;

static double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static StoreOptions OptionsFor(const std::string& dir, const std::string& db_name) {
  StoreOptions o;
  o.dir = dir;
  o.db_name = db_name;
  o.exclusive = true;
  o.compaction_file_threshold = 0;  // this tool runs the rounds itself
  return o;
}

static int Fail(const char* what, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", what, s.message().c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s STORE_DIR DB_NAME [NEW_SNAPSHOTS]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1], db_name = argv[2];
  const int new_snapshots = argc > 3 ? std::atoi(argv[3]) : 40;
  {
    std::unique_ptr<Store> store;
    Status s = Store::Open(OptionsFor(dir, db_name), &store);
    if (!s.ok()) return Fail("open", s);
    std::mt19937 rng(1);
    for (int i = 0; i < new_snapshots; i++) {
      uint64_t id = 0;
      Manifest base;
      if (!(s = store->LatestId(&id)).ok() || !(s = store->ReadManifest(id, &base)).ok()) return Fail("read", s);
      std::unique_ptr<SnapshotImage> image;
      if (!(s = store->OpenImage(id, &image)).ok()) return Fail("open image", s);
      std::unique_ptr<SnapshotBuilder> b;
      if (!(s = store->NewSnapshot(base.info.page_size, base.info.page_count, &base, &b)).ok()) return Fail("new", s);
      std::string page(base.info.page_size, '\0');
      for (uint32_t pgno : {1u, 2 + uint32_t(rng() % (base.info.page_count - 1))}) {
        if (!(s = image->ReadPage(pgno, reinterpret_cast<uint8_t*>(&page[0]))).ok()) return Fail("read page", s);
        page[page.size() - 1 - i % 64] ^= 1;  // a new content (the store does not parse pages)
        if (!(s = b->AddPage(pgno, reinterpret_cast<const uint8_t*>(page.data()))).ok()) return Fail("add", s);
      }
      if (!(s = b->Commit("bench", &id)).ok()) return Fail("commit", s);
    }
  }
  for (int round = 1;; round++) {
    const Clock::time_point t0 = Clock::now();
    const double c0 = CpuSeconds();
    bool did_work = false;
    {
      std::unique_ptr<Store> store;
      Status s = Store::Open(OptionsFor(dir, db_name), &store);
      if (!s.ok()) return Fail("open", s);
      if (!(s = store->CompactRound(&did_work)).ok()) return Fail("round", s);
    }
    std::printf("round %d: %s, wall %.1f ms, cpu %.1f ms\n", round, did_work ? "work" : "nothing to do",
                std::chrono::duration<double, std::milli>(Clock::now() - t0).count(), (CpuSeconds() - c0) * 1000);
    if (!did_work || round >= 100) break;
  }
  return 0;
}
