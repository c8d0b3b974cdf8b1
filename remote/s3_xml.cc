// See s3_xml.h. Offsets are checked against `end` before every access, so a
// body cut anywhere, or one with elements nested in surprising ways, yields
// "not found", never a read past the buffer.
#include "remote/s3_xml.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace snapshot {
namespace s3xml {

namespace {

// Appends code point `cp` as UTF-8; false for values UTF-8 cannot hold.
bool AppendUtf8(uint32_t cp, std::string* out) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return true;
}

// Decodes the reference `ref` (what stands between '&' and ';').
bool DecodeReference(const std::string& ref, std::string* out) {
  if (ref == "amp") { out->push_back('&'); return true; }
  if (ref == "lt") { out->push_back('<'); return true; }
  if (ref == "gt") { out->push_back('>'); return true; }
  if (ref == "quot") { out->push_back('"'); return true; }
  if (ref == "apos") { out->push_back('\''); return true; }
  if (ref.size() < 2 || ref[0] != '#') return false;
  bool hex = ref[1] == 'x' || ref[1] == 'X';
  size_t digits = hex ? 2 : 1;
  if (digits >= ref.size() || ref.size() - digits > 8) return false;
  uint32_t cp = 0;
  for (size_t i = digits; i < ref.size(); i++) {
    char c = ref[i];
    uint32_t d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    cp = cp * (hex ? 16 : 10) + d;
  }
  return AppendUtf8(cp, out);
}

}  // namespace

std::string DecodeEntities(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); i++) {
    if (in[i] == '&') {
      size_t semi = in.find(';', i + 1);
      // References are short: a far-away ';' belongs to something else.
      if (semi != std::string::npos && semi - i <= 12 &&
          DecodeReference(in.substr(i + 1, semi - i - 1), &out)) {
        i = semi;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

std::string EscapeText(const std::string& in) {
  std::string out;
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

bool FindElement(const std::string& xml, size_t begin, size_t end, const std::string& name,
                 std::string* text, size_t* element_end) {
  // Every search stops at `end`: a search of the whole body for each of
  // many small elements would make a long hostile listing quadratic.
  const std::string_view window = std::string_view(xml).substr(0, std::min(end, xml.size()));
  const std::string open = "<" + name;
  const std::string close = "</" + name + ">";
  size_t pos = begin;
  while (pos < window.size()) {
    size_t start = window.find(open, pos);
    if (start == std::string_view::npos || start + open.size() >= window.size()) return false;
    size_t after = start + open.size();
    char c = window[after];
    if (c != '>' && c != '/' && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      pos = after;  // a longer name that starts the same (<KeyCount> for <Key>)
      continue;
    }
    size_t tag_end = window.find('>', after);
    if (tag_end == std::string_view::npos) return false;
    if (window[tag_end - 1] == '/') {  // <name/>
      text->clear();
      if (element_end) *element_end = tag_end + 1;
      return true;
    }
    size_t close_pos = window.find(close, tag_end + 1);
    if (close_pos == std::string_view::npos) return false;
    *text = DecodeEntities(std::string(window.substr(tag_end + 1, close_pos - tag_end - 1)));
    if (element_end) *element_end = close_pos + close.size();
    return true;
  }
  return false;
}

void ParseError(const std::string& xml, std::string* code, std::string* message) {
  code->clear();
  message->clear();
  FindElement(xml, 0, xml.size(), "Code", code);
  FindElement(xml, 0, xml.size(), "Message", message);
}

namespace {

bool ParseSize(const std::string& text, uint64_t* out) {
  if (text.empty() || text.size() > 19) return false;  // 19 digits fit in 64 bits
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

std::string Unquote(const std::string& etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') return etag.substr(1, etag.size() - 2);
  return etag;
}

}  // namespace

bool ParseListObjectsV2(const std::string& xml, ListPage* page, std::string* error) {
  page->objects.clear();
  page->truncated = false;
  page->next_token.clear();
  std::string body;
  size_t result_end = 0;
  if (!FindElement(xml, 0, xml.size(), "ListBucketResult", &body, &result_end)) {
    *error = "the answer is not a ListBucketResult";
    return false;
  }
  // Walk <Contents> elements in the raw text (FindElement's text is decoded,
  // so nested elements must be searched in the original).
  size_t pos = 0;
  const std::string_view result = std::string_view(xml).substr(0, result_end);
  while (true) {
    size_t start = result.find("<Contents>", pos);
    if (start == std::string_view::npos) break;
    size_t end = result.find("</Contents>", start);
    if (end == std::string_view::npos) {
      *error = "a <Contents> element is not closed";
      return false;
    }
    ListedObject obj;
    std::string size, etag;
    if (!FindElement(xml, start, end, "Key", &obj.key) || obj.key.empty()) {
      *error = "a <Contents> element has no <Key>";
      return false;
    }
    if (!FindElement(xml, start, end, "Size", &size) || !ParseSize(size, &obj.size)) {
      *error = "object " + obj.key + " has no valid <Size>";
      return false;
    }
    if (FindElement(xml, start, end, "ETag", &etag)) obj.etag = Unquote(etag);
    page->objects.push_back(std::move(obj));
    pos = end + 1;
  }
  std::string truncated;
  // Only the top level's <IsTruncated> counts; S3 puts it before <Contents>,
  // and no object field is named so.
  if (FindElement(xml, 0, result_end, "IsTruncated", &truncated)) page->truncated = truncated == "true";
  if (page->truncated &&
      (!FindElement(xml, 0, result_end, "NextContinuationToken", &page->next_token) || page->next_token.empty())) {
    *error = "the listing is truncated but has no NextContinuationToken";
    return false;
  }
  return true;
}

}  // namespace s3xml
}  // namespace snapshot
