#include "tests/support/audio_files.h"

#include <array>
#include <cstring>
#include <vector>

namespace dispotify::testing_audio {
namespace {

void PutLe16(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v & 0xFF));
  out.push_back(static_cast<char>((v >> 8) & 0xFF));
}
void PutLe32(std::string& out, uint32_t v) {
  PutLe16(out, v & 0xFFFF);
  PutLe16(out, v >> 16);
}
void PutLe64(std::string& out, uint64_t v) {
  PutLe32(out, static_cast<uint32_t>(v));
  PutLe32(out, static_cast<uint32_t>(v >> 32));
}
void PutBe(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

}  // namespace

// RIFF/WAVE, 16-bit PCM of silence, with a LIST/INFO chunk (INAM title, IART artist, IPRD album,
// IPRT track, ICRD year).
std::string MakeWav(uint32_t sample_rate, uint16_t channels, uint32_t milliseconds) {
  auto info = [](const char* id, const std::string& text) {
    std::string chunk(id, 4);
    std::string body = text + '\0';
    PutLe32(chunk, static_cast<uint32_t>(body.size()));
    chunk += body;
    if (body.size() % 2 == 1) chunk.push_back('\0');
    return chunk;
  };
  std::string list = "INFO" + info("INAM", "Wave Title") + info("IART", "Wave Artist") +
                     info("IPRD", "Wave Album") + info("IPRT", "4") + info("ICRD", "2001");
  const uint32_t block_align = channels * 2;
  const uint32_t data_bytes =
      static_cast<uint32_t>(uint64_t{sample_rate} * milliseconds / 1000) * block_align;

  std::string body = "WAVE";
  body += "fmt ";
  PutLe32(body, 16);
  PutLe16(body, 1);  // PCM
  PutLe16(body, channels);
  PutLe32(body, sample_rate);
  PutLe32(body, sample_rate * block_align);
  PutLe16(body, block_align);
  PutLe16(body, 16);
  body += "LIST";
  PutLe32(body, static_cast<uint32_t>(list.size()));
  body += list;
  body += "data";
  PutLe32(body, data_bytes);
  body += std::string(data_bytes, '\0');

  std::string out = "RIFF";
  PutLe32(out, static_cast<uint32_t>(body.size()));
  return out + body;
}

// An ID3v2.4 tag (UTF-8 text frames) followed by `frames` silent MPEG-1 Layer III frames,
// 128 kbit/s, 44.1 kHz, joint... plain stereo, no CRC: 417 bytes each, no Xing header.
std::string MakeMp3(const std::string& title, int frames) {
  auto frame = [](const char* id, const std::string& text) {
    std::string body = "\x03" + text;  // encoding 3: UTF-8
    std::string f(id, 4);
    const auto n = static_cast<uint32_t>(body.size());
    // ID3v2.4 frame sizes are synchsafe: 7 bits per byte.
    f.push_back(static_cast<char>((n >> 21) & 0x7F));
    f.push_back(static_cast<char>((n >> 14) & 0x7F));
    f.push_back(static_cast<char>((n >> 7) & 0x7F));
    f.push_back(static_cast<char>(n & 0x7F));
    f += std::string(2, '\0');  // flags
    return f + body;
  };
  std::string frames_data = frame("TIT2", title) + frame("TPE1", "MP3 Artist") + frame("TALB", "MP3 Album") +
                            frame("TRCK", "7/12") + frame("TDRC", "2019");
  const auto n = static_cast<uint32_t>(frames_data.size());
  std::string out = "ID3";
  out += std::string("\x04\x00\x00", 3);  // v2.4.0, no flags
  out.push_back(static_cast<char>((n >> 21) & 0x7F));
  out.push_back(static_cast<char>((n >> 14) & 0x7F));
  out.push_back(static_cast<char>((n >> 7) & 0x7F));
  out.push_back(static_cast<char>(n & 0x7F));
  out += frames_data;
  std::string audio_frame("\xFF\xFB\x90\x00", 4);  // sync, MPEG-1 L3 no CRC; 128k, 44.1k; stereo
  audio_frame.resize(kMp3FrameBytes, '\0');
  for (int i = 0; i < frames; ++i) out += audio_frame;
  return out;
}

// MakeMp3's tag has no padding: the frames go at its end, and the header's size grows.
std::string WithId3Frames(std::string mp3, const std::vector<std::pair<std::string, std::string>>& frames) {
  auto synchsafe = [](uint32_t n) {
    std::string out;
    for (int shift : {21, 14, 7, 0}) out.push_back(static_cast<char>((n >> shift) & 0x7F));
    return out;
  };
  std::string extra;
  for (const auto& [id, text] : frames) {
    const std::string body = "\x03" + text;  // UTF-8
    extra += id + synchsafe(static_cast<uint32_t>(body.size())) + std::string(2, '\0') + body;
  }
  uint32_t size = 0;
  for (int i = 6; i < 10; ++i) size = (size << 7) | static_cast<uint32_t>(mp3[static_cast<size_t>(i)] & 0x7F);
  mp3.insert(10 + size, extra);
  return mp3.replace(6, 4, synchsafe(size + static_cast<uint32_t>(extra.size())));
}

// fLaC, STREAMINFO and VORBIS_COMMENT blocks, then bytes standing in for frames (TagLib reads the
// length from STREAMINFO and does not decode).
std::string MakeFlac(uint32_t sample_rate, uint32_t channels, uint64_t total_samples) {
  std::string out = "fLaC";
  std::string info;
  PutBe(info, 4096, 2);  // min block size
  PutBe(info, 4096, 2);  // max block size
  PutBe(info, 0, 3);     // min frame size: unknown
  PutBe(info, 0, 3);     // max frame size: unknown
  PutBe(info,
        (uint64_t{sample_rate} << 44) | (uint64_t{channels - 1} << 41) | (uint64_t{16 - 1} << 36) |
            total_samples,
        8);
  info += std::string(16, '\0');  // MD5
  out.push_back('\x00');          // STREAMINFO, not last
  PutBe(out, info.size(), 3);
  out += info;

  std::string comments;
  const std::string vendor = "dispotify test";
  PutLe32(comments, static_cast<uint32_t>(vendor.size()));
  comments += vendor;
  const std::vector<std::string> fields = {"TITLE=Sn\xC3\xB8 \xE2\x98\x83", "ARTIST=Flac Artist",
                                           "ALBUM=Flac Album", "TRACKNUMBER=3", "DATE=1999"};
  PutLe32(comments, static_cast<uint32_t>(fields.size()));
  for (const std::string& f : fields) {
    PutLe32(comments, static_cast<uint32_t>(f.size()));
    comments += f;
  }
  out.push_back('\x84');  // VORBIS_COMMENT, last block
  PutBe(out, comments.size(), 3);
  out += comments;
  out += std::string(2000, '\0');
  return out;
}

uint32_t OggCrc(const std::string& page) {
  uint32_t crc = 0;
  for (char c : page) {
    crc ^= static_cast<uint32_t>(static_cast<unsigned char>(c)) << 24;
    for (int i = 0; i < 8; ++i) crc = (crc & 0x80000000U) != 0 ? (crc << 1) ^ 0x04C11DB7U : crc << 1;
  }
  return crc;
}

std::string OggPage(uint8_t flags, uint64_t granule, uint32_t sequence, const std::string& packet) {
  std::string page = "OggS";
  page.push_back('\0');  // version
  page.push_back(static_cast<char>(flags));
  PutLe64(page, granule);
  PutLe32(page, 0x5EED);  // serial
  PutLe32(page, sequence);
  PutLe32(page, 0);  // checksum, filled below
  std::string lacing;
  size_t left = packet.size();
  while (left >= 255) {
    lacing.push_back('\xFF');
    left -= 255;
  }
  lacing.push_back(static_cast<char>(left));
  page.push_back(static_cast<char>(lacing.size()));
  page += lacing + packet;
  const uint32_t crc = OggCrc(page);
  for (int i = 0; i < 4; ++i) page[22 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  return page;
}

// Ogg Opus: OpusHead, OpusTags, one audio page whose granule position gives the length.
std::string MakeOpus(uint32_t milliseconds) {
  constexpr uint16_t kPreSkip = 312;
  std::string head = "OpusHead";
  head.push_back('\x01');  // version
  head.push_back('\x02');  // channels
  PutLe16(head, kPreSkip);
  PutLe32(head, 48000);
  PutLe16(head, 0);        // gain
  head.push_back('\x00');  // mapping family
  std::string tags = "OpusTags";
  const std::string vendor = "dispotify test";
  PutLe32(tags, static_cast<uint32_t>(vendor.size()));
  tags += vendor;
  const std::vector<std::string> fields = {"TITLE=Opus Title", "ARTIST=Opus Artist", "ALBUM=Opus Album",
                                           "TRACKNUMBER=9", "DATE=2023"};
  PutLe32(tags, static_cast<uint32_t>(fields.size()));
  for (const std::string& f : fields) {
    PutLe32(tags, static_cast<uint32_t>(f.size()));
    tags += f;
  }
  std::string audio(200, '\0');
  audio[0] = '\xFC';  // TOC: CELT fullband 20 ms, stereo, one frame
  return OggPage(0x02, 0, 0, head) + OggPage(0x00, 0, 1, tags) +
         OggPage(0x04, kPreSkip + uint64_t{milliseconds} * 48, 2, audio);
}

// Deterministic pseudo-random bytes (xorshift64).
}  // namespace dispotify::testing_audio
