// Measures zstd frame layouts on the pages of a real database, to choose the
// store's layout by measurement (docs/FORMAT.md quotes the result).
//
//   build/zstd_layout DB_FILE [PAGE_SIZE]
//
// Prints, for each layout, compressed bytes, the ratio to whole-file zstd -3,
// and single-thread time; then the store's own PackWriter (hashing, framing,
// compression on worker threads, writing the pack) for several frame sizes,
// levels and thread counts (0: on the caller's thread), with its wall and
// CPU time.
#include <sys/resource.h>
#include <zstd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "store/hash.h"
#include "store/pack.h"

using Clock = std::chrono::steady_clock;

static double Seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// User + system time of every thread of the process: on a shared machine the
// wall time counts waiting for a core, the CPU time does not.
static double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static size_t CompressFrames(const std::string& data, size_t frame_bytes, int level) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  std::string out(ZSTD_compressBound(frame_bytes), '\0');
  size_t total = 0;
  for (size_t off = 0; off < data.size(); off += frame_bytes) {
    const size_t n = std::min(frame_bytes, data.size() - off);
    total += ZSTD_compressCCtx(cctx, &out[0], out.size(), data.data() + off, n, level);
  }
  ZSTD_freeCCtx(cctx);
  return total;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DB_FILE [PAGE_SIZE]\n", argv[0]);
    return 2;
  }
  std::ifstream f(argv[1], std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string data = ss.str();
  const size_t page = argc > 2 ? std::stoul(argv[2]) : 4096;
  std::printf("%s: %zu bytes, %zu pages of %zu\n\n", argv[1], data.size(), data.size() / page, page);

  auto t0 = Clock::now();
  const size_t whole3 = CompressFrames(data, data.size(), 3);
  const double whole3_s = Seconds(t0);
  std::printf("%-34s %12s %8s %8s\n", "layout", "bytes", "vs -3", "time s");
  std::printf("%-34s %12zu %8.3f %8.2f\n", "whole file, level 3", whole3, 1.0, whole3_s);
  struct Layout {
    size_t pages;
    int level;
  };
  for (Layout l : {Layout{0, 1}, Layout{1, 3}, Layout{16, 3}, Layout{64, 1}, Layout{64, 3}, Layout{256, 3}}) {
    const size_t frame = l.pages == 0 ? data.size() : l.pages * page;
    t0 = Clock::now();
    const size_t n = CompressFrames(data, frame, l.level);
    const double s = Seconds(t0);
    char name[64];
    if (l.pages == 0) {
      std::snprintf(name, sizeof name, "whole file, level %d", l.level);
    } else {
      std::snprintf(name, sizeof name, "frames of %zu pages, level %d", l.pages, l.level);
    }
    std::printf("%-34s %12zu %8.3f %8.2f\n", name, n, double(n) / double(whole3), s);
  }

  // The store's PackWriter: hashing, framing, compression on worker threads,
  // writing the pack (to /tmp, no fsync cost hidden: it is included).
  uint8_t secret[snapshot::kHashSecretSize] = {1, 2, 3};
  struct Choice {
    int threads, level;
    size_t frame_pages;
  };
  for (Choice c : {Choice{2, 1, 64}, Choice{2, 2, 64}, Choice{2, 3, 64}, Choice{2, 1, 256}, Choice{2, 2, 256},
                   Choice{2, 3, 256}, Choice{1, 3, 64}, Choice{0, 2, 64}, Choice{0, 2, 256}}) {
    {
      const int level = c.level, threads = c.threads;
      snapshot::CompressOptions o;
      o.level = level;
      o.threads = threads;
      o.frame_bytes = c.frame_pages * page;
      std::unique_ptr<snapshot::PackWriter> w;
      t0 = Clock::now();
      const double cpu0 = ProcessCpuSeconds();
      snapshot::Status s =
          snapshot::PackWriter::Create(snapshot::Env::Default(), "/tmp", 999999, uint32_t(page), 0600, o, &w);
      for (size_t off = 0; s.ok() && off + page <= data.size(); off += page) {
        const uint8_t* p = reinterpret_cast<const uint8_t*>(data.data()) + off;
        s = w->AddPage(p, snapshot::HashPage(secret, p, page));
      }
      uint64_t bytes = 0;
      if (s.ok()) s = w->Finish(&bytes);
      const double secs = Seconds(t0);
      const double cpu = ProcessCpuSeconds() - cpu0;
      std::remove("/tmp/0000999999.pack");
      if (!s.ok()) {
        std::fprintf(stderr, "%s\n", s.message().c_str());
        return 1;
      }
      std::printf("pack: %3zu-page frames, level %d, %d thr %12llu %8.3f %8.2f  (%.0f MB/s, CPU %.2f s)\n", c.frame_pages,
                  level, threads, (unsigned long long)bytes, double(bytes) / double(whole3), secs, data.size() / secs / 1e6,
                  cpu);
    }
  }
  return 0;
}
