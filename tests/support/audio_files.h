#pragma once
// Small, real audio files written byte by byte (no encoder is installed here), for tests of tag
// reading and of uploads: WAV with LIST/INFO, MP3 with an ID3v2.4 tag and silent frames, FLAC
// with STREAMINFO + VORBIS_COMMENT, Ogg Opus with correct page CRCs.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dispotify::testing_audio {

// 16-bit PCM silence; tags: "Wave Title", "Wave Artist", "Wave Album", track 4, year 2001.
std::string MakeWav(uint32_t sample_rate, uint16_t channels, uint32_t milliseconds);
// Each silent MPEG-1 Layer III frame (128 kbit/s, 44.1 kHz) is kMp3FrameBytes; 26.12 ms of audio.
inline constexpr uint32_t kMp3FrameBytes = 417;
// ID3v2.4 tags: `title`, "MP3 Artist", "MP3 Album", track 7/12, year 2019.
std::string MakeMp3(const std::string& title, int frames);
// `mp3` (from MakeMp3) with more ID3v2.4 text frames, e.g. {{"TPE2", "Various Artists"}, {"TCMP", "1"}}.
std::string WithId3Frames(std::string mp3, const std::vector<std::pair<std::string, std::string>>& frames);
std::string MakeFlac(uint32_t sample_rate, uint32_t channels, uint64_t total_samples);
std::string OggPage(uint8_t flags, uint64_t granule, uint32_t sequence, const std::string& packet);
std::string MakeOpus(uint32_t milliseconds);

}  // namespace dispotify::testing_audio
