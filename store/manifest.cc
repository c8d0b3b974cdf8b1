#include "store/manifest.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "store/coding.h"
#include "store/format.h"
#include "store/hash.h"

namespace snapshot {

std::string FileNameForId(uint64_t id, const char* suffix) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%010llu", static_cast<unsigned long long>(id));
  return std::string(buf) + suffix;
}

bool ParseFileId(const std::string& name, const char* suffix, uint64_t* id) {
  const std::string s(suffix);
  if (name.size() != 10 + s.size() || name.compare(10, s.size(), s) != 0) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < 10; i++) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + uint64_t(name[i] - '0');
  }
  if (v == 0) return false;
  *id = v;
  return true;
}

void Manifest::SetPageMap(const std::vector<PageRef>& refs) {
  extents.clear();
  for (uint32_t i = 0; i < refs.size(); i++) {
    AppendExtent(Extent{i + 1, 1, refs[i].pack, refs[i].index});
  }
  info.page_count = static_cast<uint32_t>(refs.size());
}

void Manifest::AppendExtent(const Extent& e) {
  const uint32_t index = e.pack == 0 ? 0 : e.first_index;
  if (!extents.empty()) {
    Extent& last = extents.back();
    // Zero pages (pack 0) have no index to advance.
    const uint32_t want_index = e.pack == 0 ? 0 : last.first_index + last.page_count;
    if (last.pack == e.pack && index == want_index && last.first_pgno + last.page_count == e.first_pgno) {
      last.page_count += e.page_count;
      return;
    }
  }
  extents.push_back(Extent{e.first_pgno, e.page_count, e.pack, index});
}

bool Manifest::Lookup(uint32_t pgno, PageRef* ref) const {
  if (pgno == 0 || pgno > info.page_count) return false;
  auto it = std::upper_bound(extents.begin(), extents.end(), pgno,
                             [](uint32_t p, const Extent& e) { return p < e.first_pgno; });
  if (it == extents.begin()) return false;
  const Extent& e = *(it - 1);
  if (pgno - e.first_pgno >= e.page_count) return false;
  ref->pack = e.pack;
  ref->index = e.pack == 0 ? 0 : e.first_index + (pgno - e.first_pgno);
  return true;
}

std::string Manifest::Encode() const {
  std::string out;
  ByteWriter w(&out);
  w.Bytes(kManifestMagic, 8);
  w.U32(kFormatVersion);
  w.U32(0);  // flags
  w.U64(info.id);
  w.U64(static_cast<uint64_t>(info.created_ms));
  w.U32(info.page_size);
  w.U32(info.page_count);
  w.U64(info.pages_new);
  w.U64(info.bytes_new);
  w.U64(static_cast<uint64_t>(info.commit_ms));
  w.String(info.label);
  w.U32(static_cast<uint32_t>(extents.size()));
  for (const Extent& e : extents) {
    w.U32(e.first_pgno);
    w.U32(e.page_count);
    w.U64(e.pack);
    w.U32(e.first_index);
  }
  w.U64(Checksum64(out.data(), out.size()));
  return out;
}

// The fields from the version to the label, shared by whole manifests and
// the heads a bundle keeps of them (store/bundle.h). `r` starts after the magic.
static Status DecodeHeader(ByteReader* r, const std::string& name, SnapshotInfo* info) {
  auto bad = [&](const std::string& why) { return Status::Corruption("snapshot file " + name + " is damaged: " + why); };
  uint32_t version, flags;
  uint64_t created;
  if (!r->U32(&version)) return bad("truncated");
  if (version == 0) return bad("format version 0");
  if (version > kFormatVersion) {
    return Status::NotSupported("snapshot file " + name + " has format version " + std::to_string(version) +
                                ", newer than this build reads (" + std::to_string(kFormatVersion) + "); upgrade the extension");
  }
  uint64_t committed = uint64_t(kUnknownCommitTime);
  bool ok = r->U32(&flags) && r->U64(&info->id) && r->U64(&created) && r->U32(&info->page_size) &&
            r->U32(&info->page_count) && r->U64(&info->pages_new) && r->U64(&info->bytes_new) &&
            (version < 2 || r->U64(&committed)) && r->String(&info->label, kMaxLabelBytes);
  if (!ok) return bad("truncated header");
  info->created_ms = static_cast<int64_t>(created);
  info->commit_ms = static_cast<int64_t>(committed);
  if (!IsValidPageSize(info->page_size)) return bad("invalid page size");
  return Status::OK();
}

Status Manifest::DecodeHead(const char* head, size_t size, const std::string& name, SnapshotInfo* out) {
  if (size < 8 || std::memcmp(head, kManifestMagic, 8) != 0) {
    return Status::Corruption("snapshot file " + name + " is damaged: bad magic number");
  }
  ByteReader r(head + 8, size - 8);
  SnapshotInfo info;
  SNAPSHOT_RETURN_IF_ERROR(DecodeHeader(&r, name, &info));
  if (r.remaining() != 0) return Status::Corruption("snapshot file " + name + " is damaged: head has the wrong size");
  *out = std::move(info);
  return Status::OK();
}

Status Manifest::Decode(const std::string& bytes, const std::string& name, Manifest* out) {
  auto bad = [&](const std::string& why) { return Status::Corruption("snapshot file " + name + " is damaged: " + why); };
  if (bytes.size() < 8 + 8 || bytes.compare(0, 8, kManifestMagic) != 0) return bad("bad magic number");
  uint64_t stored_sum;
  ByteReader tail(bytes.data() + bytes.size() - 8, 8);
  tail.U64(&stored_sum);
  if (Checksum64(bytes.data(), bytes.size() - 8) != stored_sum) return bad("checksum mismatch");

  ByteReader r(bytes.data() + 8, bytes.size() - 16);
  uint32_t n_extents;
  Manifest m;
  SNAPSHOT_RETURN_IF_ERROR(DecodeHeader(&r, name, &m.info));
  if (!r.U32(&n_extents)) return bad("truncated header");
  if (uint64_t(n_extents) * 20 != r.remaining()) return bad("extent table has the wrong size");
  m.extents.resize(n_extents);
  uint64_t next_pgno = 1;
  for (Extent& e : m.extents) {
    r.U32(&e.first_pgno);
    r.U32(&e.page_count);
    r.U64(&e.pack);
    r.U32(&e.first_index);
    if (e.first_pgno != next_pgno || e.page_count == 0) return bad("extents do not cover the pages in order");
    if (e.pack != 0 && uint64_t(e.first_index) + e.page_count > UINT32_MAX) return bad("extent index overflows");
    next_pgno += e.page_count;
  }
  if (next_pgno != uint64_t(m.info.page_count) + 1) return bad("extents do not cover the page count");
  *out = std::move(m);
  return Status::OK();
}

uint64_t ManifestSizeLimit(const std::string& prefix) {
  // Not a manifest at all: no more than its start is ever needed.
  if (prefix.compare(0, 8, kManifestMagic) != 0) return prefix.size();
  ByteReader r(prefix);
  uint32_t version = 0, page_count = 0, label_len = 0;
  uint8_t skip[36];
  r.Bytes(skip, 8);            // magic
  r.U32(&version);
  r.Bytes(skip, 24);           // flags, id, created, page size
  r.U32(&page_count);
  r.Bytes(skip, version < 2 ? 16 : 24);  // pages_new, bytes_new (, commit_ms)
  r.U32(&label_len);
  if (r.failed()) return kManifestPrefixSize;
  const uint64_t fixed = version < 2 ? 72 : 80;  // every field but the label and the extents
  return fixed + uint64_t(std::min<uint32_t>(label_len, kMaxLabelBytes)) + 20 * uint64_t(page_count);
}

Status ValidateLabel(const std::string& label) {
  if (label.size() > kMaxLabelBytes) {
    return Status::InvalidArgument("snapshot label is longer than " + std::to_string(kMaxLabelBytes) + " bytes");
  }
  for (unsigned char c : label) {
    if (c < 0x20 || c == 0x7f || c == '/' || c == '\\') {
      return Status::InvalidArgument(
          "snapshot label may not contain control characters, '/' or '\\' (labels are shown in logs and used in file names by scripts)");
    }
  }
  return Status::OK();
}

}  // namespace snapshot
