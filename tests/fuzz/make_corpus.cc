// Writes the fuzz targets' seed corpora: make_corpus <tests/fuzz/corpus>.
// Each input is the target's mode byte and the bytes of one file of the
// small seed store (MakeSmallStore) or of a bundle of its manifests, or,
// for sql_args_fuzz, one encoded function call. Deterministic: the same
// files on every run. The v1-* seeds beside them are the same store written
// in format v1 (docs/FORMAT.md §11): readers must keep reading it.
#include "store/manifest.h"
#include "tests/fuzz/fuzz_util.h"
#include "vfs/tracking_format.h"

using namespace snapshot_fuzz;

namespace {

void Put(const std::string& dir, const std::string& name, const std::string& bytes) {
  mkdir(dir.c_str(), 0755);
  if (!WriteFile(dir + "/" + name, bytes)) {
    std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
}

// One sql_args_fuzz call: function index, argument count, arguments.
struct Call {
  std::string name;
  uint8_t function, argc;
  std::string args;  // each: type byte, then bytes as sql_args_fuzz reads them
};
std::string Text(const std::string& s) { return std::string(1, '\3') + char(s.size()) + s; }
std::string Int(uint64_t v) {
  std::string s(1, '\1');
  for (int i = 0; i < 8; i++) s += char((v >> (8 * i)) & 0xff);
  return s;
}
std::string Null() { return std::string(1, '\0'); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus <corpus dir>\n");
    return 2;
  }
  const std::string out = argv[1];
  mkdir(out.c_str(), 0755);
  FixedEnv env;
  const std::string store = ScratchDir() + "/seed";
  Status s = MakeSmallStore(&env, store);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  const std::string fix(1, char(kFixChecksums)), keep(1, '\0');
  // store_fuzz's file order: STORE, manifests 1-3, packs 1-3.
  std::vector<std::string> files = {"STORE"};
  for (uint64_t id = 1; id <= 3; id++) files.push_back("snapshots/" + FileNameForId(id, ".snap"));
  for (uint64_t id = 1; id <= 3; id++) files.push_back("packs/" + FileNameForId(id, ".pack"));
  for (size_t i = 0; i < files.size(); i++) {
    const std::string bytes = ReadWholeFile(store + "/" + files[i]);
    const std::string base = files[i].substr(files[i].find('/') + 1);
    Put(out + "/store_fuzz", base, fix + char(i) + bytes);
    if (files[i].rfind("snapshots/", 0) == 0) Put(out + "/manifest_fuzz", base, fix + bytes);
    if (files[i].rfind("packs/", 0) == 0) {
      // pack_fuzz reads its input as pack 1.
      std::string pack = bytes;
      PutU64(&pack, 16, 1);
      FixPackChecksums(&pack);
      Put(out + "/pack_fuzz", base, fix + pack);
      if (i == files.size() - 3) Put(out + "/pack_fuzz", "unfixed-" + base, keep + pack);
    }
  }
  // bundle_fuzz: the three manifests folded as compaction folds them, in one
  // frame, and in a frame each (so the reader's frame cache switches).
  for (size_t frame_bytes : {size_t(4) << 20, size_t(1)}) {
    BundleWriter w(3, frame_bytes);
    for (uint64_t id = 1; id <= 3; id++) {
      const std::string name = "snapshots/" + FileNameForId(id, ".snap");
      const std::string bytes = ReadWholeFile(store + "/" + name);
      Manifest m;
      s = Manifest::Decode(bytes, name, &m);
      if (s.ok()) s = w.Add(id, bytes, m.extents.size());
      if (!s.ok()) break;
    }
    const std::string path = ScratchDir() + "/seed.bundle";
    uint64_t size = 0;
    if (s.ok()) s = w.Publish(&env, path, kFuzzBundleId, 0644, &size);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      return 1;
    }
    const std::string bundle = ReadWholeFile(path);
    const std::string name = frame_bytes == 1 ? "frame-each" : "one-frame";
    Put(out + "/bundle_fuzz", name, fix + bundle);
    if (frame_bytes == 1) Put(out + "/bundle_fuzz", "unfixed-" + name, keep + bundle);
  }
  // sql_args_fuzz: function index (into kFunctions) + 16 * extra arguments.
  const std::vector<Call> calls = {
      {"backup", 0, 1, Text("nightly")},
      {"backup-schema", 0, 2, Text("x") + Text("main")},
      {"restore-latest", 1, 0, ""},
      {"restore-id", 1, 1, Int(1)},
      {"restore_to", 2, 1, Int(1) + Text("out.db")},
      {"import", 3, 1, Text("out.db") + Text("imported")},
      {"verify", 4, 0, ""},
      {"verify-id", 4, 1, Int(2)},
      {"prune", 5, 0, Int(1)},
      {"prune-days", 5, 1, Int(2) + Text("1.5")},
      {"config-level", 6, 1, Text("level") + Int(3)},
      {"config-threads", 6, 1, Text("threads") + Int(1)},
      {"config-dir", 6, 0, Text("dir")},
      {"dir", 7, 0, ""},
      {"progress", 8, 0, ""},
      {"progress-running", 8, 0, "backup 1 1764900000000 10 20 1764900001000\n"},
      // The elapsed time once overflowed a signed subtraction.
      {"progress-overflow", 8, 0, "x 1 -9223372036854775807 0 0 9223372036854775807\n"},
      {"tracking", 9, 0, ""},
      {"version", 10, 0, ""},
      {"null-label", 0, 1, Null()},
  };
  for (const Call& c : calls) {
    // restore_to and import take a path first; the rest as listed.
    std::string args = c.args;
    if (c.name == "restore_to") args = Text("out.db") + Int(1);
    Put(out + "/sql_args_fuzz", c.name, std::string(1, char(c.function + 16 * c.argc)) + args);
  }
  // sidefiles_fuzz: mode, 16-bit length, tracking-file part, -snapcow part.
  auto side = [&](const std::string& name, uint8_t mode, const std::string& track, const std::string& cow) {
    Put(out + "/sidefiles_fuzz", name,
        std::string(1, char(mode)) + char(track.size() & 0xff) + char(track.size() >> 8) + track + cow);
  };
  side("pristine", 0, std::string(160, '\0'), "");  // XOR with zeros: the file as the backup left it
  side("empty-file", 1, "", "");
  // A snapshot's copy-on-write generation 1 in progress (the header's
  // cow_generation XORed from 0 to 1), and its -snapcow: magic,
  // generation, page size, page count, "every unlisted page needed", next
  // slot, then the page states.
  std::string track(160, '\0');
  track[offsetof(snapshot::TrackHeader, cow_generation)] = 1;
  std::string cow = "SQSNCOW2";
  ByteWriter w(&cow);
  w.U32(1);
  w.U32(1024);
  w.U32(40);
  w.U32(1);
  w.U64(0);
  cow.resize(8192, '\0');
  side("cow", 0, track, cow);
  RemoveTree(store);
  return 0;
}
