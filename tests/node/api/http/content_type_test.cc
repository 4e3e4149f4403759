#include "node/api/http/content_type.h"

#include <gtest/gtest.h>

namespace dispotify::api::http {
namespace {

TEST(ContentTypeTest, AudioExtensions) {
  EXPECT_EQ(ContentTypeForExtension("mp3"), "audio/mpeg");
  EXPECT_EQ(ContentTypeForExtension(".MP3"), "audio/mpeg");
  EXPECT_EQ(ContentTypeForExtension("flac"), "audio/flac");
  EXPECT_EQ(ContentTypeForExtension("ogg"), "audio/ogg");
  EXPECT_EQ(ContentTypeForExtension("opus"), "audio/ogg");
  EXPECT_EQ(ContentTypeForExtension("m4a"), "audio/mp4");
  EXPECT_EQ(ContentTypeForExtension("wav"), "audio/wav");
  EXPECT_EQ(ContentTypeForExtension("aac"), "audio/aac");
  EXPECT_EQ(ContentTypeForExtension("webm"), "audio/webm");
  EXPECT_TRUE(IsAudioExtension("Flac"));
  EXPECT_FALSE(IsAudioExtension("exe"));
}

TEST(ContentTypeTest, UnknownIsOctetStream) {
  EXPECT_EQ(ContentTypeForExtension("exe"), kOctetStream);
  EXPECT_EQ(ContentTypeForExtension(""), kOctetStream);
}

TEST(ContentTypeTest, FileNames) {
  EXPECT_EQ(ContentTypeForFileName("Song.FLAC"), "audio/flac");
  EXPECT_EQ(ContentTypeForFileName("dir.mp3/track.ogg"), "audio/ogg");
  EXPECT_EQ(ContentTypeForFileName("a.b.c.m4a"), "audio/mp4");
  EXPECT_EQ(ContentTypeForFileName("noext"), kOctetStream);
  EXPECT_EQ(ContentTypeForFileName(".mp3"), kOctetStream);  // a hidden file, no extension
  EXPECT_EQ(ContentTypeForFileName("dir.mp3/noext"), kOctetStream);
}

}  // namespace
}  // namespace dispotify::api::http
