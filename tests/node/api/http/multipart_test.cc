#include "node/api/http/multipart.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dispotify::api::http {
namespace {

using std::string_literals::operator""s;

struct ParsedPart {
  std::string name;
  std::optional<std::string> filename;
  std::string content_type;
  std::string data;
};

// Parses `body` delivered `chunk` bytes per read, reading the parts' content `read_size` bytes at a
// time. `skip` names parts whose content is not read (NextPart skips it).
Result<std::vector<ParsedPart>> ParseAll(const std::string& body, const std::string& boundary, size_t chunk,
                                         size_t read_size = 5, const std::string& skip = "") {
  StringBodyReader reader(body, chunk);
  MultipartReader mp(reader, boundary);
  std::vector<ParsedPart> parts;
  std::vector<char> buf(read_size);
  for (;;) {
    Result<bool> next = mp.NextPart();
    if (!next.ok()) return next.status();
    if (!*next) break;
    ParsedPart p{mp.part().name, mp.part().filename, mp.part().content_type, ""};
    if (p.name != skip) {
      for (;;) {
        Result<size_t> n = mp.Read(buf.data(), buf.size());
        if (!n.ok()) return n.status();
        if (*n == 0) break;
        p.data.append(buf.data(), *n);
      }
    }
    parts.push_back(std::move(p));
  }
  // After the end, further calls keep saying so.
  Result<bool> again = mp.NextPart();
  if (!again.ok() || *again) return Status::Aborted("NextPart after the end did not return false");
  return parts;
}

const size_t kChunks[] = {1, 2, 3, 7, 16, 100, 1 << 20};

TEST(MultipartBoundaryTest, FromContentType) {
  EXPECT_EQ(*BoundaryFromContentType("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(*BoundaryFromContentType("Multipart/Form-Data;boundary=\"a b;c\""), "a b;c");
  EXPECT_EQ(*BoundaryFromContentType("multipart/form-data; charset=utf-8; BOUNDARY=----WebKitFormBoundaryX"),
            "----WebKitFormBoundaryX");
  EXPECT_FALSE(BoundaryFromContentType("multipart/form-data").ok());
  EXPECT_FALSE(BoundaryFromContentType("multipart/form-data; boundary=").ok());
  EXPECT_FALSE(BoundaryFromContentType("multipart/form-data; boundary=\"abc").ok());
  EXPECT_FALSE(BoundaryFromContentType("application/json; boundary=abc").ok());
  EXPECT_FALSE(BoundaryFromContentType("multipart/form-data; boundary=" + std::string(71, 'x')).ok());
  EXPECT_TRUE(BoundaryFromContentType("multipart/form-data; boundary=" + std::string(70, 'x')).ok());
}

TEST(MultipartTest, TwoPartsEveryChunkSize) {
  const std::string body =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"title\"\r\n"
      "\r\n"
      "Hello\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"file\"; filename=\"song.mp3\"\r\n"
      "Content-Type: audio/mpeg\r\n"
      "\r\n"
      "ID3\x00\x01\r\n\r\n--XyNOT\r\n-XyZ\r--XyZ\n--Xy\r\n"
      "--XyZ--\r\n"s;
  for (size_t chunk : kChunks) {
    for (size_t read_size : {size_t{1}, size_t{4}, size_t{4096}}) {
      auto parts = ParseAll(body, "XyZ", chunk, read_size);
      ASSERT_TRUE(parts.ok()) << parts.status().ToString() << " chunk " << chunk;
      ASSERT_EQ(parts->size(), 2u);
      EXPECT_EQ((*parts)[0].name, "title");
      EXPECT_FALSE((*parts)[0].filename);
      EXPECT_EQ((*parts)[0].content_type, "text/plain");
      EXPECT_EQ((*parts)[0].data, "Hello");
      EXPECT_EQ((*parts)[1].name, "file");
      EXPECT_EQ((*parts)[1].filename, "song.mp3");
      EXPECT_EQ((*parts)[1].content_type, "audio/mpeg");
      // CRLFs and near-delimiters inside the data are content.
      EXPECT_EQ((*parts)[1].data, "ID3\x00\x01\r\n\r\n--XyNOT\r\n-XyZ\r--XyZ\n--Xy"s)
          << "chunk " << chunk << " read " << read_size;
    }
  }
}

TEST(MultipartTest, PreambleEpilogueAndPadding) {
  const std::string body =
      "This is the preamble. --b is not a delimiter here\r\n"
      "--b  \t\r\n"  // transport padding after the boundary
      "content-disposition: form-data; name=a\r\n"
      "\r\n"
      "1\r\n"
      "--b\r\n"
      "Content-Disposition: form-data; name=\"b\"\r\n"
      "\r\n"
      "\r\n"  // the part's content: one CRLF
      "\r\n--b--"
      "\r\nthis is the epilogue --b\r\n";
  for (size_t chunk : kChunks) {
    auto parts = ParseAll(body, "b", chunk);
    ASSERT_TRUE(parts.ok()) << parts.status().ToString() << " chunk " << chunk;
    ASSERT_EQ(parts->size(), 2u);
    EXPECT_EQ((*parts)[0].name, "a");
    EXPECT_EQ((*parts)[0].data, "1");
    EXPECT_EQ((*parts)[1].name, "b");
    EXPECT_EQ((*parts)[1].data, "\r\n");
  }
}

TEST(MultipartTest, EmptyPartAndNoHeaders) {
  const std::string body = "--b\r\n\r\n\r\n--b\r\nContent-Disposition: form-data; name=e\r\n\r\n\r\n--b--";
  for (size_t chunk : kChunks) {
    auto parts = ParseAll(body, "b", chunk);
    ASSERT_TRUE(parts.ok()) << parts.status().ToString();
    ASSERT_EQ(parts->size(), 2u);
    EXPECT_EQ((*parts)[0].name, "");
    EXPECT_EQ((*parts)[0].data, "");
    EXPECT_EQ((*parts)[1].name, "e");
    EXPECT_EQ((*parts)[1].data, "");
  }
}

TEST(MultipartTest, SkippingAPartUnread) {
  std::string big(300 * 1024, 'x');  // larger than the parser's buffer
  const std::string body = "--b\r\nContent-Disposition: form-data; name=skip\r\n\r\n" + big +
                           "\r\n--b\r\nContent-Disposition: form-data; name=keep\r\n\r\nkept\r\n--b--\r\n";
  for (size_t chunk : {size_t{1000}, size_t{1} << 20}) {
    auto parts = ParseAll(body, "b", chunk, 5, "skip");
    ASSERT_TRUE(parts.ok()) << parts.status().ToString();
    ASSERT_EQ(parts->size(), 2u);
    EXPECT_EQ((*parts)[1].data, "kept");
  }
  auto parts = ParseAll(body, "b", 4096, 70000);
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ((*parts)[0].data, big);
}

TEST(MultipartTest, LargePartIsStreamedWithBoundedMemory) {
  std::string data;
  for (int i = 0; i < 200000; ++i) data += static_cast<char>('a' + i % 26);
  data += "\r\n--bound";  // a prefix of the delimiter inside the content
  data += std::string(1000, '-');
  const std::string body = "--boundary\r\nContent-Disposition: form-data; name=f; filename=x.bin\r\n\r\n" +
                           data + "\r\n--boundary--";
  auto parts = ParseAll(body, "boundary", 777, 65536);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].data, data);
}

TEST(MultipartTest, FilenameVariants) {
  const std::string body =
      "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a \\\"q\\\";x.mp3\"\r\n\r\n1\r\n"
      "--b\r\nContent-Disposition: form-data; name=\"g\"; filename=\"plain.mp3\"; "
      "filename*=UTF-8''%C3%A9t%C3%A9.flac\r\n\r\n2\r\n"
      "--b\r\nContent-Disposition: form-data; name=h; filename=\"\"\r\n\r\n3\r\n--b--";
  auto parts = ParseAll(body, "b", 3);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0].filename, "a \"q\";x.mp3");
  EXPECT_EQ((*parts)[1].filename, "\xC3\xA9t\xC3\xA9.flac");
  EXPECT_EQ((*parts)[2].filename, "");
}

TEST(MultipartTest, BrokenFraming) {
  struct Case {
    const char* what;
    std::string body;
  };
  const Case cases[] = {
      {"no delimiter at all", "just some bytes without a boundary"},
      {"empty body", ""},
      {"missing final boundary", "--b\r\nContent-Disposition: form-data; name=a\r\n\r\ndata"},
      {"missing final boundary after CRLF", "--b\r\nContent-Disposition: form-data; name=a\r\n\r\ndata\r\n"},
      {"truncated inside the delimiter", "--b\r\nContent-Disposition: form-data; name=a\r\n\r\ndata\r\n--"},
      {"ends after a delimiter", "--b\r\nContent-Disposition: form-data; name=a\r\n\r\ndata\r\n--b"},
      {"ends after a delimiter line", "--b\r\nContent-Disposition: form-data; name=a\r\n\r\ndata\r\n--b\r\n"},
      {"truncated in headers", "--b\r\nContent-Disposition: form-da"},
      {"header without colon", "--b\r\nnot a header\r\n\r\nx\r\n--b--"},
      {"obsolete folding", "--b\r\nContent-Type: a\r\n  folded\r\n\r\nx\r\n--b--"},
      {"junk after boundary", "--bjunk\r\n\r\nx\r\n--b--"},
      {"oversized part headers", "--b\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\nx\r\n--b--"},
      {"oversized headers without CRLF", "--b\r\nX-Big: " + std::string(100000, 'h')},
  };
  for (const Case& c : cases) {
    for (size_t chunk : {size_t{1}, size_t{5}, size_t{1} << 20}) {
      auto parts = ParseAll(c.body, "b", chunk);
      EXPECT_FALSE(parts.ok()) << c.what << " chunk " << chunk;
      if (!parts.ok()) {
        EXPECT_EQ(parts.status().code(), StatusCode::kInvalidArgument) << c.what;
      }
    }
  }
}

TEST(MultipartTest, ReaderErrorsPropagateAndStick) {
  const std::string body = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\npartial data";
  StringBodyReader reader(body, 4, Status::Timeout("client too slow"));
  MultipartReader mp(reader, "b");
  Result<bool> next = mp.NextPart();
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(*next);
  char buf[64];
  Status err;
  for (;;) {
    Result<size_t> n = mp.Read(buf, sizeof(buf));
    if (!n.ok()) {
      err = n.status();
      break;
    }
    ASSERT_GT(*n, 0u);
  }
  EXPECT_EQ(err.code(), StatusCode::kTimeout);
  EXPECT_EQ(mp.Read(buf, sizeof(buf)).status().code(), StatusCode::kTimeout);
  EXPECT_EQ(mp.NextPart().status().code(), StatusCode::kTimeout);
}

}  // namespace
}  // namespace dispotify::api::http
