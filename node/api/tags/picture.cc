#include "node/api/tags/picture.h"

#include <openssl/evp.h>
#include <taglib/attachedpictureframe.h>
#include <taglib/flacfile.h>
#include <taglib/flacpicture.h>
#include <taglib/id3v2tag.h>
#include <taglib/mp4file.h>
#include <taglib/mpegfile.h>
#include <taglib/opusfile.h>
#include <taglib/vorbisfile.h>
#include <taglib/wavfile.h>
#include <taglib/xiphcomment.h>
#include <vips/vips.h>
// After vips.h, which it needs and does not include.
#include <vips/vector.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

namespace dispotify::api::tags {
namespace {

// Larger images are refused before any pixel is decoded: a small file can declare a huge canvas
// (a "decompression bomb"), and libvips would allocate for it.
constexpr int kMaxImageSide = 16384;
constexpr uint64_t kMaxImagePixels = 50'000'000;

struct Candidate {
  TagLib::ByteVector bytes;  // shared with TagLib's copy, not duplicated
  bool front = false;
};

void AddId3v2Pictures(TagLib::ID3v2::Tag* tag, std::vector<Candidate>& out) {
  if (tag == nullptr) return;
  for (TagLib::ID3v2::Frame* frame : tag->frameList("APIC")) {
    if (const auto* apic = dynamic_cast<const TagLib::ID3v2::AttachedPictureFrame*>(frame)) {
      out.push_back({apic->picture(), apic->type() == TagLib::ID3v2::AttachedPictureFrame::FrontCover});
    }
  }
}

void AddFlacPictures(const TagLib::List<TagLib::FLAC::Picture*>& pictures, std::vector<Candidate>& out) {
  for (const TagLib::FLAC::Picture* picture : pictures) {
    out.push_back({picture->data(), picture->type() == TagLib::FLAC::Picture::FrontCover});
  }
}

// Every picture of the file, in the order the format stores them. TagLib 1.13 has no
// complexProperties("PICTURE") (that came with 2.0), hence one branch per format.
std::vector<Candidate> Candidates(TagLib::File& file) {
  std::vector<Candidate> out;
  if (auto* mpeg = dynamic_cast<TagLib::MPEG::File*>(&file)) {
    if (mpeg->hasID3v2Tag()) AddId3v2Pictures(mpeg->ID3v2Tag(), out);
  } else if (auto* wav = dynamic_cast<TagLib::RIFF::WAV::File*>(&file)) {
    if (wav->hasID3v2Tag()) AddId3v2Pictures(wav->ID3v2Tag(), out);
  } else if (auto* flac = dynamic_cast<TagLib::FLAC::File*>(&file)) {
    AddFlacPictures(flac->pictureList(), out);
    if (out.empty() && flac->hasID3v2Tag()) AddId3v2Pictures(flac->ID3v2Tag(), out);
  } else if (auto* vorbis = dynamic_cast<TagLib::Ogg::Vorbis::File*>(&file)) {
    if (vorbis->tag() != nullptr) AddFlacPictures(vorbis->tag()->pictureList(), out);
  } else if (auto* opus = dynamic_cast<TagLib::Ogg::Opus::File*>(&file)) {
    if (opus->tag() != nullptr) AddFlacPictures(opus->tag()->pictureList(), out);
  } else if (auto* mp4 = dynamic_cast<TagLib::MP4::File*>(&file)) {
    // An MP4 cover has no picture type: the first covr item is the cover by convention.
    if (mp4->tag() != nullptr && mp4->tag()->contains("covr")) {
      const TagLib::MP4::CoverArtList covers = mp4->tag()->item("covr").toCoverArtList();
      if (!covers.isEmpty()) out.push_back({covers.front().data(), true});
    }
  }
  return out;
}

struct GObjectUnref {
  void operator()(void* object) const { g_object_unref(object); }
};
using ImagePtr = std::unique_ptr<VipsImage, GObjectUnref>;

std::string VipsError(const char* what) {
  std::string message = std::string(what) + ": " + vips_error_buffer();
  vips_error_clear();
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return message;
}

// Done before the first decode. libvips only reads what it is given, but its loaders are large C
// code bases: the fewer of them that can be reached, the better.
bool StartVips(std::string& error) {
  // Modules (ImageMagick, libheif, poppler, libjxl, OpenSlide) are looked for below $VIPSHOME/lib:
  // a directory that does not exist keeps those libraries out of the process entirely. The images
  // do not ship the modules anyway (deploy/docker/collect-rootfs.sh copies ldd's list only), so
  // this makes a developer machine behave as production does.
  setenv("VIPSHOME", "/nonexistent", 1);  // NOLINT(concurrency-mt-unsafe): no thread exists yet
  if (VIPS_INIT("dispotify-tagger") != 0) {
    error = VipsError("cannot start libvips");
    return false;
  }
  vips_block_untrusted_set(TRUE);
  // Every loader blocked but the three formats that ImageTypeOf accepts: belt and braces, since
  // the caller already checked the magic bytes.
  vips_operation_block_set("VipsForeignLoad", TRUE);
  for (const char* loader :
       {"VipsForeignLoadJpegBuffer", "VipsForeignLoadPngBuffer", "VipsForeignLoadWebpBuffer"}) {
    vips_operation_block_set(loader, FALSE);
  }
  // No liborc: it compiles SIMD code at run time into an executable mapping of a file it creates
  // in $HOME or /tmp, which the child may not write (RLIMIT_FSIZE 0: SIGXFSZ) and should not
  // have (writable and executable memory). The plain C paths are fast enough for one thumbnail.
  vips_vector_set_enabled(FALSE);
  // One worker: the tagger's CPU-time limit counts all threads, and fewer threads reserve less
  // address space (stacks, malloc arenas) under the RLIMIT_AS.
  vips_concurrency_set(1);
  // The process renders one image and exits: a cache would only hold memory.
  vips_cache_set_max(0);
  return true;
}

}  // namespace

std::string_view ImageTypeOf(std::string_view bytes) {
  if (bytes.substr(0, 3) == "\xFF\xD8\xFF") return "image/jpeg";
  if (bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1A\n", 8)) return "image/png";
  if (bytes.size() >= 12 && bytes.substr(0, 4) == "RIFF" && bytes.substr(8, 4) == "WEBP") return "image/webp";
  return "";
}

Picture ChoosePicture(TagLib::File& file) {
  const std::vector<Candidate> candidates = Candidates(file);
  const Candidate* chosen = nullptr;
  for (const Candidate& c : candidates) {
    if (c.front) {
      chosen = &c;
      break;
    }
  }
  if (chosen == nullptr && !candidates.empty()) chosen = &candidates.front();
  if (chosen == nullptr || chosen->bytes.size() > kMaxPictureBytes) return {};
  Picture picture;
  picture.bytes.assign(chosen->bytes.data(), chosen->bytes.size());
  picture.type = ImageTypeOf(picture.bytes);
  if (picture.type.empty()) picture.bytes.clear();
  return picture;
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1 || length != 32) {
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0x0F]);
  }
  return out;
}

std::string RenderJpeg(std::string_view image, int size, std::string& error) {
  if (ImageTypeOf(image).empty()) {
    error = "not a JPEG, PNG or WebP image";
    return "";
  }
  if (!StartVips(error)) return "";

  // The header alone (libvips decodes lazily): the canvas size is checked before any pixel.
  VipsImage* raw =
      vips_image_new_from_buffer(image.data(), image.size(), "", "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
  if (raw == nullptr) {
    error = VipsError("cannot read the image header");
    return "";
  }
  const ImagePtr header(raw);
  const int width = vips_image_get_width(header.get());
  const int height = vips_image_get_height(header.get());
  if (width <= 0 || height <= 0 || width > kMaxImageSide || height > kMaxImageSide ||
      uint64_t{static_cast<uint32_t>(width)} * static_cast<uint32_t>(height) > kMaxImagePixels) {
    error = "image too large: " + std::to_string(width) + "x" + std::to_string(height);
    return "";
  }

  // fail_on=truncated: by default libvips fills a cut-off image with grey and calls it a success.
  // Passed as the loader's option string: 8.14's thumbnail_buffer does not forward its own fail_on
  // argument to the loader.
  VipsImage* thumb = nullptr;
  if (vips_thumbnail_buffer(const_cast<char*>(image.data()), image.size(), &thumb, size, "height", size,
                            "size", VIPS_SIZE_DOWN, "option_string", "fail_on=truncated", nullptr) != 0) {
    error = VipsError("cannot decode the image");
    return "";
  }
  const ImagePtr thumbnail(thumb);
  void* jpeg = nullptr;
  size_t jpeg_size = 0;
  // The pixels are decoded here, thumbnail_buffer only built the pipeline.
  if (vips_jpegsave_buffer(thumbnail.get(), &jpeg, &jpeg_size, "Q", 85, "strip", TRUE, nullptr) != 0) {
    error = VipsError("cannot decode the image");
    return "";
  }
  std::string out(static_cast<const char*>(jpeg), jpeg_size);
  g_free(jpeg);
  return out;
}

}  // namespace dispotify::api::tags
