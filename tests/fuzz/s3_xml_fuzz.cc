// Fuzz target: the S3 client's XML reading (remote/s3_xml.h), which parses
// whatever an object store, or something pretending to be one, answers.
//
// Input: the bytes of a response body. Every reader must return without
// crashing; an accepted listing must hold only named objects and, when
// truncated, a continuation token; escaping any text and decoding it again
// must give the text back.
#include "remote/s3_xml.h"
#include "tests/fuzz/fuzz_util.h"

using namespace snapshot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);

  s3xml::ListPage page;
  std::string error;
  if (s3xml::ParseListObjectsV2(body, &page, &error)) {
    for (const s3xml::ListedObject& o : page.objects) FUZZ_CHECK(!o.key.empty(), "an object without a key");
    FUZZ_CHECK(!page.truncated || !page.next_token.empty(), "truncated without a token");
  } else {
    FUZZ_CHECK(!error.empty(), "a refused listing without a reason");
  }

  std::string code, message;
  s3xml::ParseError(body, &code, &message);

  std::string text;
  size_t end = 0;
  if (s3xml::FindElement(body, 0, body.size(), "UploadId", &text, &end)) {
    FUZZ_CHECK(end <= body.size(), "element ends at %zu past %zu", end, body.size());
  }
  // Searching a window never looks outside it.
  if (size > 4 && s3xml::FindElement(body, 2, size - 2, "Key", &text, &end)) {
    FUZZ_CHECK(end <= size - 2, "element ends at %zu past the window's end %zu", end, size - 2);
  }

  FUZZ_CHECK(s3xml::DecodeEntities(s3xml::EscapeText(body)) == body, "escaping does not round-trip");
  return 0;
}
