// Search latency of a metadata store over generated songs.
//
// Generates N songs from a fixed seed (titles, artists and albums drawn with a long-tailed
// distribution from real title words and generated words, with accented Latin names and some
// Cyrillic and Japanese ones), loads them through Apply in batches (one batch = one log entry),
// then runs a fixed mix of queries picked from the generated songs:
//   exact     a whole title or artist name
//   prefix    the first 3-5 characters of a word
//   typo      a word of 5+ letters with one edit (transposition, substitution or deletion)
//   short     the first 2 characters of an artist's word ("U2"-like)
//   deep      pages 2..50 of a common word, through the keyset cursor (limit 20)
// and prints, per class and over all queries:
//   search: store=<embedded|postgres> songs=<n> p50_ms=<x> p99_ms=<y>
//
// Usage: dispotify-search-bench [--store embedded|postgres] [--conninfo STR] [--songs N]
//          [--batch N] [--db PATH] [--reuse] [--seed N] [--slow-ms X]
// --db: the embedded store's file (default: a temp dir, removed at the end); with --reuse an
// existing file holding N songs is searched without loading it again.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "node/catalog/metadata_store.h"
#include "node/catalog/sqlite_store.h"

namespace {

using dispotify::LogIndex;
using dispotify::Result;
using dispotify::Status;
using dispotify::catalog::MetadataStore;
using dispotify::catalog::Mutation;
using dispotify::catalog::SearchRequest;
using dispotify::catalog::Song;
using Clock = std::chrono::steady_clock;

struct Config {
  std::string store = "embedded";
  std::string conninfo;
  uint64_t songs = 1000000;
  uint64_t batch = 1000;
  std::string db;
  bool reuse = false;
  uint64_t seed = 20240601;
  double slow_ms = 0;  // > 0: print the queries slower than this
};

// --- Generator ---------------------------------------------------------------------------------------

const char* const kTitleWords[] = {
    "love",    "night",    "heart",     "baby",     "dance",     "fire",     "time",       "dream",
    "rain",    "blue",     "home",      "girl",     "world",     "light",    "summer",     "rock",
    "soul",    "city",     "song",      "life",     "way",       "day",      "road",       "moon",
    "star",    "sun",      "sky",       "river",    "ocean",     "wild",     "free",       "young",
    "forever", "goodbye",  "hello",     "tonight",  "yesterday", "tomorrow", "morning",    "midnight",
    "golden",  "silver",   "black",     "white",    "red",       "green",    "crazy",      "sweet",
    "lonely",  "broken",   "beautiful", "dark",     "cold",      "hot",      "little",     "lost",
    "last",    "first",    "back",      "down",     "run",       "fall",     "rise",       "shine",
    "burn",    "cry",      "smile",     "kiss",     "touch",     "feel",     "need",       "want",
    "hold",    "stay",     "go",        "come",     "take",      "give",     "make",       "break",
    "walk",    "talk",     "sing",      "play",     "fly",       "die",      "live",       "remember",
    "believe", "angel",    "devil",     "heaven",   "paradise",  "highway",  "street",     "town",
    "country", "party",    "radio",     "money",    "gold",      "diamond",  "rose",       "garden",
    "window",  "door",     "room",      "mirror",   "shadow",    "ghost",    "spirit",     "magic",
    "fever",   "thunder",  "storm",     "wind",     "snow",      "ice",      "water",      "blood",
    "tears",   "eyes",     "hands",     "lips",     "voice",     "name",     "face",       "mind",
    "lights",  "stars",    "nights",    "days",     "boys",      "girls",    "friends",    "lovers",
    "people",  "children", "king",      "queen",    "man",       "woman",    "brother",    "sister",
    "mother",  "father",   "paris",     "london",   "tokyo",     "berlin",   "california", "blues",
    "jazz",    "funk",     "disco",     "you",      "me",        "my",       "your",       "the",
    "in",      "of",       "on",        "to",       "and",       "for",      "with",       "all",
    "no",      "don't",    "I'm",       "it's",     "never",     "always",   "again",      "now",
    "here",    "there",    "away",      "together", "alone",     "inside",   "over",       "under",
    "café",    "señorita", "amour",     "corazón",  "mañana",    "über",     "fiancé",     "naïve",
};
const char* const kFirstNames[] = {
    "John",   "Paul",  "Maria",   "José",   "Zoë",      "Chloé", "Renée",  "Björk", "Sinéad",
    "Andrés", "Ramón", "Łukasz",  "Jürgen", "François", "Søren", "Céline", "Agnès", "Noël",
    "Anna",   "David", "Michael", "Sarah",  "Laura",    "James", "Emma",   "Lucas", "Sofia",
    "Ólafur", "Dóra",  "Ines",    "Mateo",  "Nina",     "Oskar", "Petra",  "Raúl",  "Tomás",
};
const char* const kLastNames[] = {
    "Smith",  "Müller",   "García",   "Núñez", "Dvořák",  "Gonçalves", "Jones",     "Brown",     "Martin",
    "Dubois", "Rossi",    "Kowalski", "Novák", "Öztürk",  "Håkansson", "Lindqvist", "Fernández", "Weiß",
    "Taylor", "Anderson", "Moreau",   "Ricci", "Schmidt", "Nielsen",   "Sánchez",   "Łęcki",     "Ibáñez",
};
const char* const kSyllables[] = {"ka",  "lo",  "ve",  "mi",  "ra",  "to",  "sa",  "ne",  "li",
                                  "do",  "re",  "ba",  "tu",  "chi", "gro", "sta", "ly",  "on",
                                  "er",  "an",  "el",  "is",  "ar",  "vo",  "ze",  "qua", "pho",
                                  "dri", "mun", "sel", "tor", "ix",  "um",  "ek",  "ya",  "zu"};
const char* const kCyrillic[] = {"ка", "ло", "ви", "но", "ра", "ми", "ст", "ро", "па", "зе",
                                 "ки", "лю", "бо", "ве", "ны", "да", "ре", "жи", "та", "го"};
const char* const kJapanese[] = {"東", "京", "事", "変", "宇", "多", "田", "光", "夜",
                                 "空", "花", "月", "雪", "風", "海", "星", "愛", "恋",
                                 "桜", "青", "赤", "の", "ヒ", "カ", "ル", "ア"};

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {
    for (const char* w : kTitleWords) words_.emplace_back(w);
    while (words_.size() < 30000) words_.push_back(PseudoWord(2, 4));
    for (int i = 0; i < 60000; ++i) artists_.push_back(MakeArtist());
  }

  Song Next(uint64_t n) {
    Song s;
    char id[32];
    std::snprintf(id, sizeof(id), "%016llx", static_cast<unsigned long long>(rng_()));
    s.file_id = id;
    const std::string& artist = artists_[LongTail(artists_.size(), 5)];
    s.artist = artist;
    const bool cyrillic =
        (static_cast<unsigned char>(artist[0]) == 0xD0 || static_cast<unsigned char>(artist[0]) == 0xD1);
    const bool japanese = static_cast<unsigned char>(artist[0]) >= 0xE3;
    if ((cyrillic || japanese) && Coin(0.5)) {
      s.title = cyrillic ? Capitalized(Script(kCyrillic, std::size(kCyrillic), 2, 4)) + " " +
                               Script(kCyrillic, std::size(kCyrillic), 2, 3)
                         : Script(kJapanese, std::size(kJapanese), 2, 5);
      s.album = cyrillic ? Capitalized(Script(kCyrillic, std::size(kCyrillic), 2, 4))
                         : Script(kJapanese, std::size(kJapanese), 2, 3);
    } else {
      s.title = Phrase(1 + Uniform(5));
      s.album = Phrase(1 + Uniform(3));
    }
    s.track = static_cast<uint32_t>(1 + n % 14);
    char file_name[64];
    std::snprintf(file_name, sizeof(file_name), "%02u - ", s.track);
    s.file_name = file_name + s.title + ".mp3";
    s.content_type = "audio/mpeg";
    s.year = static_cast<uint32_t>(1960 + Uniform(65));
    s.duration_ms = 120000 + Uniform(300000);
    s.size_bytes = s.duration_ms * 40;
    s.sha256 = std::string(64, 'a');
    s.created_at_ms = 1700000000000 + static_cast<int64_t>(n);
    return s;
  }

  uint64_t Uniform(uint64_t n) { return rng_() % n; }
  bool Coin(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  std::mt19937_64& rng() { return rng_; }
  const std::vector<std::string>& words() const { return words_; }

 private:
  // An index in [0, n) with P(i) roughly proportional to 1 / (i + c).
  size_t LongTail(size_t n, double c) {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    const double x = std::exp(u * std::log((static_cast<double>(n) + c) / c)) * c - c;
    return std::min(n - 1, static_cast<size_t>(x));
  }
  std::string PseudoWord(int min_syl, int max_syl) {
    std::string w;
    const int n = min_syl + static_cast<int>(Uniform(static_cast<uint64_t>(max_syl - min_syl + 1)));
    for (int i = 0; i < n; ++i) w += kSyllables[Uniform(std::size(kSyllables))];
    return w;
  }
  std::string Script(const char* const* pool, size_t size, int min_n, int max_n) {
    std::string w;
    const int n = min_n + static_cast<int>(Uniform(static_cast<uint64_t>(max_n - min_n + 1)));
    for (int i = 0; i < n; ++i) w += pool[Uniform(size)];
    return w;
  }
  static std::string Capitalized(std::string w) {
    if (!w.empty() && w[0] >= 'a' && w[0] <= 'z') w[0] = static_cast<char>(w[0] - 'a' + 'A');
    return w;
  }
  std::string Word() { return words_[LongTail(words_.size(), 20)]; }
  std::string Phrase(uint64_t n) {
    std::string out;
    for (uint64_t i = 0; i < n; ++i) {
      if (i > 0) out += ' ';
      out += i == 0 || Coin(0.5) ? Capitalized(Word()) : Word();
    }
    return out;
  }
  std::string MakeArtist() {
    const double r = std::uniform_real_distribution<double>(0, 1)(rng_);
    if (r < 0.35) {
      return std::string(kFirstNames[Uniform(std::size(kFirstNames))]) + " " +
             kLastNames[Uniform(std::size(kLastNames))];
    }
    if (r < 0.60) return "The " + Capitalized(Word()) + " " + Capitalized(PseudoWord(1, 3)) + "s";
    if (r < 0.90)
      return Capitalized(PseudoWord(2, 4)) + (Coin(0.4) ? " " + Capitalized(PseudoWord(1, 3)) : "");
    if (r < 0.95) return Capitalized(Script(kCyrillic, std::size(kCyrillic), 2, 4));
    return Script(kJapanese, std::size(kJapanese), 2, 4);
  }

  std::mt19937_64 rng_;
  std::vector<std::string> words_;
  std::vector<std::string> artists_;
};

// --- Queries ------------------------------------------------------------------------------------------

struct Query {
  std::string cls;
  std::string text;
  int deep_pages = 0;  // > 0: follow the cursor this many pages, timing pages 2..n
};

bool IsAsciiLetters(const std::string& w) {
  return !w.empty() && std::all_of(w.begin(), w.end(),
                                   [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); });
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find(' ', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::vector<Query> MakeQueries(const std::vector<Song>& sample, Generator& g) {
  std::vector<Query> queries;
  auto pick = [&]() -> const Song& { return sample[g.Uniform(sample.size())]; };
  auto ascii_word = [&](size_t min_len) {
    while (true) {
      const Song& s = pick();
      const auto words = Split(g.Coin(0.5) ? s.title : s.artist);
      if (words.empty()) continue;
      const std::string& w = words[g.Uniform(words.size())];
      if (w.size() >= min_len && IsAsciiLetters(w)) return w;
    }
  };
  for (int i = 0; i < 300; ++i) {
    const Song& s = pick();
    queries.push_back({"exact", g.Coin(0.5) ? s.title : s.artist});
  }
  for (int i = 0; i < 300; ++i) {
    const std::string w = ascii_word(4);
    queries.push_back({"prefix", w.substr(0, 3 + g.Uniform(std::min<size_t>(3, w.size() - 3)))});
  }
  for (int i = 0; i < 300; ++i) {
    std::string w = ascii_word(5);
    const size_t at = 1 + g.Uniform(w.size() - 2);  // an interior position
    switch (g.Uniform(3)) {
      case 0:
        if (w[at] != w[at + 1]) {
          std::swap(w[at], w[at + 1]);
          break;
        }
        [[fallthrough]];
      case 1: w[at] = w[at] == 'x' ? 'q' : 'x'; break;
      default: w.erase(at, 1); break;
    }
    queries.push_back({"typo", w});
  }
  for (int i = 0; i < 200; ++i) queries.push_back({"short", ascii_word(2).substr(0, 2)});
  for (const char* common : {"love", "night", "heart", "dream", "fire"})
    queries.push_back({"deep", common, 50});
  std::shuffle(queries.begin(), queries.end(), g.rng());
  return queries;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i =
      std::min(v.size() - 1, static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1);
  return v[i];
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

int Fail(const std::string& what, const Status& st) {
  std::fprintf(stderr, "search-bench: %s: %s\n", what.c_str(), st.ToString().c_str());
  return 1;
}

int Run(const Config& cfg) {
  std::string temp_dir;
  std::string db = cfg.db;
  Result<std::unique_ptr<MetadataStore>> opened = Status::InvalidArgument("unknown --store " + cfg.store);
  if (cfg.store == "embedded") {
    if (db.empty()) {
      std::string tmpl = (std::filesystem::temp_directory_path() / "dispotify-search-bench-XXXXXX").string();
      if (::mkdtemp(tmpl.data()) == nullptr) return Fail("mkdtemp", Status::IoError(tmpl));
      temp_dir = tmpl;
      db = temp_dir + "/catalog.db";
    } else if (!cfg.reuse) {
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
    }
    opened = dispotify::catalog::OpenSqliteStore(db);
  } else if (cfg.store == "postgres") {
    opened = dispotify::catalog::OpenPostgresStore(cfg.conninfo);
  }
  if (!opened.ok()) return Fail("open store", opened.status());
  std::unique_ptr<MetadataStore> store = std::move(opened).value();

  Generator gen(cfg.seed);
  std::vector<Song> sample;  // every 100th song, to pick queries from
  auto stats = store->Stats();
  if (!stats.ok()) return Fail("stats", stats.status());
  const bool load = !(cfg.reuse && stats->songs == cfg.songs);
  const auto load_start = Clock::now();
  std::vector<Mutation> batch;
  uint64_t index = store->AppliedIndex()->value();
  for (uint64_t n = 0; n < cfg.songs; ++n) {
    Song s = gen.Next(n);
    if (n % 100 == 0) sample.push_back(s);
    if (!load) continue;
    Mutation m;
    m.kind = Mutation::Kind::kPutSong;
    m.song = std::move(s);
    batch.push_back(std::move(m));
    if (batch.size() == cfg.batch || n + 1 == cfg.songs) {
      Status st = store->Apply(LogIndex(++index), batch);
      if (!st.ok()) return Fail("apply", st);
      batch.clear();
      if ((n + 1) % 100000 == 0) {
        std::fprintf(stderr, "loaded %llu songs (%.1f s)\n", static_cast<unsigned long long>(n + 1),
                     Ms(Clock::now() - load_start) / 1000);
      }
    }
  }
  if (load) {
    const double seconds = Ms(Clock::now() - load_start) / 1000;
    std::printf("load: store=%s songs=%llu batch=%llu seconds=%.1f songs_per_s=%.0f\n", cfg.store.c_str(),
                static_cast<unsigned long long>(cfg.songs), static_cast<unsigned long long>(cfg.batch),
                seconds, static_cast<double>(cfg.songs) / seconds);
  }
  if (!db.empty()) {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(db, ec);
    if (!ec) std::printf("size: store=%s db_mb=%.0f\n", cfg.store.c_str(), static_cast<double>(bytes) / 1e6);
  }

  // Warm-up with another draw of the same mix, unrecorded (page cache, prepared statements,
  // reader pool, trigram statistics), then the timed pass on queries not seen before.
  const std::vector<Query> warmup = MakeQueries(sample, gen);
  const std::vector<Query> timed = MakeQueries(sample, gen);
  for (int pass = 0; pass < 2; ++pass) {
    const std::vector<Query>& queries = pass == 0 ? warmup : timed;
    std::vector<double> all;
    std::vector<std::pair<std::string, double>> per_class;
    uint64_t results = 0;
    for (const Query& q : queries) {
      SearchRequest req;
      req.query = q.text;
      req.limit = 20;
      const int pages = std::max(1, q.deep_pages);
      for (int p = 1; p <= pages; ++p) {
        const auto start = Clock::now();
        auto page = store->Search(req);
        const double ms = Ms(Clock::now() - start);
        if (!page.ok()) return Fail("search '" + q.text + "'", page.status());
        results += page->items.size();
        if (pass == 1 && cfg.slow_ms > 0 && ms > cfg.slow_ms) {
          std::fprintf(stderr, "slow: class=%s page=%d ms=%.2f total=%llu query='%s'\n", q.cls.c_str(), p, ms,
                       static_cast<unsigned long long>(page->total), q.text.c_str());
        }
        if (q.deep_pages == 0 || p > 1) {
          all.push_back(ms);
          per_class.emplace_back(q.cls, ms);
        }
        if (page->next_cursor.empty()) break;
        req.cursor = page->next_cursor;
      }
    }
    if (pass == 0) continue;
    for (const char* cls : {"exact", "prefix", "typo", "short", "deep"}) {
      std::vector<double> v;
      for (const auto& [c, ms] : per_class) {
        if (c == cls) v.push_back(ms);
      }
      std::printf("search-class: store=%s class=%s queries=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
                  cfg.store.c_str(), cls, v.size(), Percentile(v, 0.5), Percentile(v, 0.99),
                  v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()));
    }
    std::printf("search: store=%s songs=%llu p50_ms=%.2f p99_ms=%.2f\n", cfg.store.c_str(),
                static_cast<unsigned long long>(cfg.songs), Percentile(all, 0.5), Percentile(all, 0.99));
    std::fprintf(stderr, "(%zu timed requests, %llu results)\n", all.size(),
                 static_cast<unsigned long long>(results));
  }
  store.reset();
  if (!temp_dir.empty()) std::filesystem::remove_all(temp_dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--store") {
      cfg.store = value();
    } else if (arg == "--conninfo") {
      cfg.conninfo = value();
    } else if (arg == "--songs") {
      cfg.songs = std::strtoull(value().c_str(), nullptr, 10);
    } else if (arg == "--batch") {
      cfg.batch = std::max<uint64_t>(1, std::strtoull(value().c_str(), nullptr, 10));
    } else if (arg == "--db") {
      cfg.db = value();
    } else if (arg == "--reuse") {
      cfg.reuse = true;
    } else if (arg == "--slow-ms") {
      cfg.slow_ms = std::strtod(value().c_str(), nullptr);
    } else if (arg == "--seed") {
      cfg.seed = std::strtoull(value().c_str(), nullptr, 10);
    } else {
      std::fprintf(
          stderr,
          "usage: %s [--store embedded|postgres] [--conninfo STR] [--songs N] [--batch N] [--db PATH] "
          "[--reuse] [--seed N] [--slow-ms X]\n",
          argv[0]);
      return 2;
    }
  }
  return Run(cfg);
}
