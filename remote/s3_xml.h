// s3_xml: the few fields the S3 client reads from S3's XML responses.
//
// S3 answers listings, multipart uploads and errors in small XML documents
// whose shape is fixed. Rather than a general XML parser, these functions
// find the elements they need by name (`<Key>...</Key>`), decode the five
// predefined entities and numeric character references, and treat anything
// else as text. They never fail on a garbled or hostile body: a missing
// element is reported as missing, and callers say what they expected.
// tests/fuzz/s3_xml_fuzz.cc feeds them arbitrary bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace snapshot {
namespace s3xml {

// The decoded text of the first element `name` in xml[begin, end), and in
// *element_end the offset just past its closing tag. False if there is none
// (or its closing tag is missing). `<name/>` is an empty element.
bool FindElement(const std::string& xml, size_t begin, size_t end, const std::string& name,
                 std::string* text, size_t* element_end = nullptr);

// Replaces &amp; &lt; &gt; &quot; &apos; &#N; &#xN; by what they stand for
// (as UTF-8); anything malformed is kept as it is.
std::string DecodeEntities(const std::string& in);

// Escapes text for an element's content.
std::string EscapeText(const std::string& in);

// An <Error> body: its <Code> and <Message>, empty if absent.
void ParseError(const std::string& xml, std::string* code, std::string* message);

struct ListedObject {
  std::string key;   // the full object name, as the server lists it
  uint64_t size = 0;
  std::string etag;  // without its quotes
};

struct ListPage {
  std::vector<ListedObject> objects;
  bool truncated = false;
  std::string next_token;  // NextContinuationToken when truncated
};

// A ListObjectsV2 answer. False (with *error saying why) when it is not
// one: no <ListBucketResult>, a <Contents> without <Key>, a size that is
// not a number, or truncated without a continuation token.
bool ParseListObjectsV2(const std::string& xml, ListPage* page, std::string* error);

}  // namespace s3xml
}  // namespace snapshot
