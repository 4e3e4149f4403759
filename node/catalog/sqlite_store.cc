#include "node/catalog/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "common/assert.h"
#include "common/logging.h"
#include "common/utf8.h"
#include "node/catalog/dump_format.h"
#include "node/catalog/library.h"
#include "node/catalog/sqlite_internal.h"
#include "node/catalog/sqlite_library.h"

namespace dispotify::catalog {

// --- Folding -------------------------------------------------------------------------------------

namespace search {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// Decodes the code point at text[*i] and advances *i; an invalid sequence yields U+FFFD and
// advances by one byte.
char32_t NextCodePoint(std::string_view text, size_t* i) {
  const auto b0 = static_cast<uint8_t>(text[*i]);
  if (b0 < 0x80) {
    ++*i;
    return b0;
  }
  int len = 0;
  char32_t cp = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    ++*i;
    return kReplacement;
  }
  if (*i + static_cast<size_t>(len) > text.size()) {
    ++*i;
    return kReplacement;
  }
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(text[*i + static_cast<size_t>(k)]);
    if ((b & 0xC0) != 0x80) {
      ++*i;
      return kReplacement;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid.
  static constexpr char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    ++*i;
    return kReplacement;
  }
  *i += static_cast<size_t>(len);
  return cp;
}

void AppendUtf8(std::string* out, char32_t cp) {
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
}

// U+00C0..U+017F (Latin-1 letters and Latin Extended-A) folded to ASCII; nullptr separates words
// (the two signs U+00D7 and U+00F7).
// clang-format off
constexpr const char* kLatinFold[0x180 - 0xC0] = {
    /* U+00C0 */ "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    /* U+00D0 */ "d", "n", "o", "o", "o", "o", "o", nullptr, "o", "u", "u", "u", "u", "y", "th", "ss",
    /* U+00E0 */ "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    /* U+00F0 */ "d", "n", "o", "o", "o", "o", "o", nullptr, "o", "u", "u", "u", "u", "y", "th", "y",
    /* U+0100 */ "a", "a", "a", "a", "a", "a", "c", "c", "c", "c", "c", "c", "c", "c", "d", "d",
    /* U+0110 */ "d", "d", "e", "e", "e", "e", "e", "e", "e", "e", "e", "e", "g", "g", "g", "g",
    /* U+0120 */ "g", "g", "g", "g", "h", "h", "h", "h", "i", "i", "i", "i", "i", "i", "i", "i",
    /* U+0130 */ "i", "i", "ij", "ij", "j", "j", "k", "k", "k", "l", "l", "l", "l", "l", "l", "l",
    /* U+0140 */ "l", "l", "l", "n", "n", "n", "n", "n", "n", "n", "n", "n", "o", "o", "o", "o",
    /* U+0150 */ "o", "o", "oe", "oe", "r", "r", "r", "r", "r", "r", "s", "s", "s", "s", "s", "s",
    /* U+0160 */ "s", "s", "t", "t", "t", "t", "t", "t", "u", "u", "u", "u", "u", "u", "u", "u",
    /* U+0170 */ "u", "u", "u", "u", "w", "w", "y", "y", "y", "z", "z", "z", "z", "z", "z", "s",
};
// clang-format on

bool IsSeparator(char32_t c) {
  return (c >= 0x80 && c <= 0xBF) || (c >= 0x2000 && c <= 0x206F) || (c >= 0x2E00 && c <= 0x2E7F) ||
         (c >= 0x3000 && c <= 0x3004) || (c >= 0x3008 && c <= 0x3020) || (c >= 0xFE30 && c <= 0xFE4F) ||
         (c >= 0xFF5F && c <= 0xFF65) || c == kReplacement;
}

bool IsDropped(char32_t c) {
  return c == '\'' || c == '`' || c == 0xB4 || c == 0x2018 || c == 0x2019 || c == 0x02BC ||
         (c >= 0x0300 && c <= 0x036F);
}

// Appends the folded form of `c` to `word`, or returns false when `c` ends the word.
bool FoldInto(char32_t c, std::string* word) {
  if (c >= 0xFF01 && c <= 0xFF5E) c = c - 0xFF01 + 0x21;  // fullwidth ASCII
  if (IsDropped(c)) return true;
  if (c < 0x80) {
    if (c >= 'A' && c <= 'Z') {
      word->push_back(static_cast<char>(c - 'A' + 'a'));
      return true;
    }
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      word->push_back(static_cast<char>(c));
      return true;
    }
    return false;
  }
  if (IsSeparator(c)) return false;
  if (c >= 0xC0 && c < 0x180) {
    const char* f = kLatinFold[c - 0xC0];
    if (f == nullptr) return false;
    word->append(f);
    return true;
  }
  switch (c) {  // a few of Latin Extended-B
    case 0x0192: word->push_back('f'); return true;
    case 0x0218:
    case 0x0219: word->push_back('s'); return true;
    case 0x021A:
    case 0x021B: word->push_back('t'); return true;
    default: break;
  }
  if (c >= 0x0391 && c <= 0x03A9 && c != 0x03A2) c += 0x20;  // Greek capitals
  if (c >= 0x0410 && c <= 0x042F) c += 0x20;                 // Cyrillic capitals
  if (c >= 0x0400 && c <= 0x040F) c += 0x50;
  AppendUtf8(word, c);
  return true;
}

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  for (char ch : s) {
    if ((static_cast<uint8_t>(ch) & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace

std::u32string DecodeUtf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) out.push_back(NextCodePoint(text, &i));
  return out;
}

bool IsValidUtf8(std::string_view text) {
  return dispotify::IsValidUtf8(text);
}

std::vector<std::string> FoldWords(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (size_t i = 0; i < text.size();) {
    const char32_t c = NextCodePoint(text, &i);
    if (!FoldInto(c, &word) && !word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

std::string FoldField(std::string_view text) {
  const std::vector<std::string> words = FoldWords(text);
  if (words.empty()) return {};
  std::string out = "\x02";
  for (const auto& w : words) {
    out.push_back(' ');
    out += w;
  }
  out += " \x03";
  return out;
}

namespace {

template <typename S>
int EditDistance(S a, S b, int bound) {
  const auto n = static_cast<int>(a.size());
  const auto m = static_cast<int>(b.size());
  if (std::abs(n - m) > bound) return bound + 1;
  // Three rows of the optimal-string-alignment table (on the stack for short strings).
  constexpr size_t kStack = 64;
  std::array<int, kStack> s0{}, s1{}, s2{};
  std::vector<int> h0, h1, h2;
  int* prev2 = s0.data();
  int* prev = s1.data();
  int* cur = s2.data();
  if (static_cast<size_t>(m) + 1 > kStack) {
    h0.resize(static_cast<size_t>(m) + 1);
    h1.resize(static_cast<size_t>(m) + 1);
    h2.resize(static_cast<size_t>(m) + 1);
    prev2 = h0.data();
    prev = h1.data();
    cur = h2.data();
  }
  for (int j = 0; j <= m; ++j) prev[static_cast<size_t>(j)] = j;
  for (int i = 1; i <= n; ++i) {
    cur[0] = i;
    int row_min = cur[0];
    for (int j = 1; j <= m; ++j) {
      const auto uj = static_cast<size_t>(j);
      const int cost = a[static_cast<size_t>(i - 1)] == b[uj - 1] ? 0 : 1;
      int v = std::min({prev[uj] + 1, cur[uj - 1] + 1, prev[uj - 1] + cost});
      if (i > 1 && j > 1 && a[static_cast<size_t>(i - 1)] == b[uj - 2] &&
          a[static_cast<size_t>(i - 2)] == b[uj - 1]) {
        v = std::min(v, prev2[uj - 2] + 1);
      }
      cur[uj] = v;
      row_min = std::min(row_min, v);
    }
    if (row_min > bound) return bound + 1;
    int* const old2 = prev2;
    prev2 = prev;
    prev = cur;
    cur = old2;
  }
  return std::min(prev[static_cast<size_t>(m)], bound + 1);
}

}  // namespace

int BoundedEditDistance(std::u32string_view a, std::u32string_view b, int bound) {
  return EditDistance(a, b, bound);
}

int BoundedEditDistanceBytes(std::string_view a, std::string_view b, int bound) {
  return EditDistance(a, b, bound);
}

}  // namespace search

namespace {

using search::FoldField;
using search::FoldWords;

using sqlite::Conn;
using sqlite::SqlError;
using sqlite::Stmt;

// --- Schema and statements -------------------------------------------------------------------------

constexpr int64_t kSchemaVersion = 4;

// The vocabulary as of schema version 2 (version 1 had only words of 3+ characters that are not
// all digits, keyed by word, with indexes on (c0, len) and (cl, len)).
#define DISPOTIFY_CREATE_VOCAB                                                                  \
  "CREATE TABLE vocab(id INTEGER PRIMARY KEY, word TEXT NOT NULL UNIQUE, n INTEGER NOT NULL,\n" \
  "                   len INTEGER NOT NULL, c0 INTEGER NOT NULL, cl INTEGER NOT NULL);\n"       \
  "CREATE INDEX vocab_c0 ON vocab(c0, len, word);\n"                                            \
  "CREATE INDEX vocab_cl ON vocab(cl, len, word);\n"

constexpr char kCreateSchema[] = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema_version', 4), ('applied_index', 0), ('songs', 0), ('bytes', 0),
                        ('replicas_healthy', 0), ('replicas_other', 0);
CREATE TABLE songs(
  id INTEGER PRIMARY KEY, file_id TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL, artist TEXT NOT NULL, album TEXT NOT NULL, file_name TEXT NOT NULL,
  content_type TEXT NOT NULL, track INTEGER NOT NULL, year INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL, size_bytes INTEGER NOT NULL, sha256 TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  ftitle TEXT NOT NULL, fartist TEXT NOT NULL, falbum TEXT NOT NULL, ffile TEXT NOT NULL,
  album_artist TEXT NOT NULL DEFAULT '', disc INTEGER NOT NULL DEFAULT 0, genre TEXT NOT NULL DEFAULT '',
  compilation INTEGER NOT NULL DEFAULT 0, album_id TEXT NOT NULL DEFAULT '');
CREATE INDEX songs_ftitle ON songs(ftitle);
CREATE INDEX songs_fartist ON songs(fartist);
CREATE INDEX songs_falbum ON songs(falbum);
CREATE INDEX songs_ffile ON songs(ffile);
CREATE TABLE replicas(file_id TEXT NOT NULL, node INTEGER NOT NULL, state INTEGER NOT NULL,
                      updated_at_ms INTEGER NOT NULL, PRIMARY KEY(file_id, node)) WITHOUT ROWID;
CREATE INDEX replicas_node ON replicas(node, file_id);
CREATE TABLE locks(name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at_ms INTEGER NOT NULL,
                   token INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
)sql" DISPOTIFY_CREATE_VOCAB;

// The full-text indexes (Load drops and rebuilds them around a bulk insert): songs_fts (trigrams
// of the folded fields), songs_words (their words: the ascii tokenizer splits exactly where
// folding separates words, as folded words hold only a-z, 0-9 and non-ASCII characters) and
// vocab_fts (trigrams of the vocabulary words).
constexpr char kCreateTrigramFts[] = R"sql(
CREATE VIRTUAL TABLE songs_fts USING fts5(ftitle, fartist, falbum, ffile, content='songs',
    content_rowid='id', tokenize='trigram case_sensitive 1', detail=none);
)sql";
constexpr char kCreateWordFts[] = R"sql(
CREATE VIRTUAL TABLE songs_words USING fts5(ftitle, fartist, falbum, ffile, content='songs',
    content_rowid='id', tokenize='ascii', detail=none);
CREATE VIRTUAL TABLE vocab_fts USING fts5(word, content='vocab', content_rowid='id',
    tokenize='trigram case_sensitive 1');
)sql";
// The triggers that keep them in step with songs and vocab (vocab.word never changes).
constexpr char kCreateFtsTriggers[] = R"sql(
CREATE TRIGGER songs_fts_ai AFTER INSERT ON songs BEGIN
  INSERT INTO songs_fts(rowid, ftitle, fartist, falbum, ffile)
    VALUES (new.id, new.ftitle, new.fartist, new.falbum, new.ffile);
  INSERT INTO songs_words(rowid, ftitle, fartist, falbum, ffile)
    VALUES (new.id, new.ftitle, new.fartist, new.falbum, new.ffile);
END;
CREATE TRIGGER songs_fts_ad AFTER DELETE ON songs BEGIN
  INSERT INTO songs_fts(songs_fts, rowid, ftitle, fartist, falbum, ffile)
    VALUES ('delete', old.id, old.ftitle, old.fartist, old.falbum, old.ffile);
  INSERT INTO songs_words(songs_words, rowid, ftitle, fartist, falbum, ffile)
    VALUES ('delete', old.id, old.ftitle, old.fartist, old.falbum, old.ffile);
END;
CREATE TRIGGER songs_fts_au AFTER UPDATE OF id, ftitle, fartist, falbum, ffile ON songs BEGIN
  INSERT INTO songs_fts(songs_fts, rowid, ftitle, fartist, falbum, ffile)
    VALUES ('delete', old.id, old.ftitle, old.fartist, old.falbum, old.ffile);
  INSERT INTO songs_fts(rowid, ftitle, fartist, falbum, ffile)
    VALUES (new.id, new.ftitle, new.fartist, new.falbum, new.ffile);
  INSERT INTO songs_words(songs_words, rowid, ftitle, fartist, falbum, ffile)
    VALUES ('delete', old.id, old.ftitle, old.fartist, old.falbum, old.ffile);
  INSERT INTO songs_words(rowid, ftitle, fartist, falbum, ffile)
    VALUES (new.id, new.ftitle, new.fartist, new.falbum, new.ffile);
END;
CREATE TRIGGER vocab_fts_ai AFTER INSERT ON vocab BEGIN
  INSERT INTO vocab_fts(rowid, word) VALUES (new.id, new.word);
END;
CREATE TRIGGER vocab_fts_ad AFTER DELETE ON vocab BEGIN
  INSERT INTO vocab_fts(vocab_fts, rowid, word) VALUES ('delete', old.id, old.word);
END;
)sql";

constexpr char kDropFtsAndClear[] = R"sql(
DROP TRIGGER songs_fts_ai; DROP TRIGGER songs_fts_ad; DROP TRIGGER songs_fts_au;
DROP TRIGGER vocab_fts_ai; DROP TRIGGER vocab_fts_ad;
DROP TABLE songs_fts; DROP TABLE songs_words; DROP TABLE vocab_fts;
DELETE FROM songs; DELETE FROM replicas; DELETE FROM locks; DELETE FROM settings; DELETE FROM vocab;
DELETE FROM albums;
UPDATE meta SET value = 0 WHERE key <> 'schema_version';
)sql";

constexpr char kRebuildFts[] = "INSERT INTO songs_fts(songs_fts) VALUES ('rebuild')";
constexpr char kRebuildWordFts[] =
    "INSERT INTO songs_words(songs_words) VALUES ('rebuild'); INSERT INTO vocab_fts(vocab_fts) VALUES "
    "('rebuild')";

// From schema version 1: the vocabulary gets every word and an id, the word indexes are added;
// songs_fts is kept as it is (MigrateFromV1 refills vocab and rebuilds the word indexes).
constexpr char kMigrateV1[] = R"sql(
DROP TRIGGER songs_fts_ai; DROP TRIGGER songs_fts_ad; DROP TRIGGER songs_fts_au;
DROP TABLE vocab;
)sql" DISPOTIFY_CREATE_VOCAB;
#undef DISPOTIFY_CREATE_VOCAB
constexpr char kAllFolded[] = "SELECT ftitle, fartist, falbum, ffile FROM songs";

constexpr char kHasSchema[] = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'";
constexpr char kMetaGet[] = "SELECT value FROM meta WHERE key = ?1";
constexpr char kMetaSet[] = "UPDATE meta SET value = ?2 WHERE key = ?1";
constexpr char kMetaAdd[] = "UPDATE meta SET value = value + ?2 WHERE key = ?1";
constexpr char kMetaAll[] = "SELECT key, value FROM meta";

#define SONG_COLUMNS DISPOTIFY_SQLITE_SONG_COLUMNS
constexpr char kGetSong[] = "SELECT " SONG_COLUMNS " FROM songs WHERE file_id = ?1";
constexpr char kGetSongById[] = "SELECT " SONG_COLUMNS " FROM songs WHERE id = ?1";
constexpr char kListSongs[] =
    "SELECT " SONG_COLUMNS " FROM songs WHERE file_id > ?1 ORDER BY file_id LIMIT ?2";
constexpr char kDumpSongs[] = "SELECT " SONG_COLUMNS " FROM songs ORDER BY id";
constexpr char kSongForWrite[] =
    "SELECT id, size_bytes, ftitle, fartist, falbum, ffile, album_id FROM songs WHERE file_id = ?1";
constexpr char kInsertSong[] = "INSERT INTO songs(id, " SONG_COLUMNS
                               ", ftitle, fartist, falbum, ffile) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                               "?9, ?10, ?11, ?12, ?13, ?18, ?19, ?20, ?21, ?22, ?23, ?14, ?15, "
                               "?16, ?17)";
constexpr char kUpdateSong[] =
    "UPDATE songs SET title = ?3, artist = ?4, album = ?5, file_name = ?6, content_type = ?7, track = ?8, "
    "year = ?9, duration_ms = ?10, size_bytes = ?11, sha256 = ?12, created_at_ms = ?13, ftitle = ?14, "
    "fartist = ?15, falbum = ?16, ffile = ?17, album_artist = ?18, disc = ?19, genre = ?20, "
    "compilation = ?21, album_id = ?22, cover = ?23 WHERE id = ?1 AND file_id = ?2";
constexpr char kUpdateSongDisplay[] =
    "UPDATE songs SET title = ?3, artist = ?4, album = ?5, file_name = ?6, content_type = ?7, track = ?8, "
    "year = ?9, duration_ms = ?10, size_bytes = ?11, sha256 = ?12, created_at_ms = ?13, album_artist = ?18, "
    "disc = ?19, genre = ?20, compilation = ?21, album_id = ?22, cover = ?23 WHERE id = ?1 AND file_id = ?2";
constexpr char kDeleteSong[] = "DELETE FROM songs WHERE id = ?1";
#undef SONG_COLUMNS

constexpr char kPredecessor[] = "SELECT id FROM songs WHERE file_id < ?1 ORDER BY file_id DESC LIMIT 1";
constexpr char kSuccessor[] = "SELECT id FROM songs WHERE file_id > ?1 ORDER BY file_id LIMIT 1";
constexpr char kIdsAtOrBelow[] = "SELECT id FROM songs WHERE id <= ?1 AND id > 0 ORDER BY id DESC LIMIT ?2";
constexpr char kIdsAtOrAbove[] = "SELECT id FROM songs WHERE id >= ?1 ORDER BY id LIMIT ?2";
constexpr char kSetId[] = "UPDATE songs SET id = ?2 WHERE id = ?1";

constexpr char kVocabInc[] =
    "INSERT INTO vocab(word, n, len, c0, cl) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT(word) DO UPDATE SET n = n + excluded.n";
constexpr char kVocabDec[] = "UPDATE vocab SET n = n - 1 WHERE word = ?1";
constexpr char kVocabGc[] = "DELETE FROM vocab WHERE word = ?1 AND n <= 0";
// (Covering indexes; the words of the second part that also start with ?1 are skipped by the caller.)
constexpr char kVocabNear[] =
    "SELECT word, 0 FROM vocab WHERE c0 = ?1 AND len BETWEEN ?2 AND ?3 "
    "UNION ALL SELECT word, 1 FROM vocab WHERE cl = ?4 AND len BETWEEN ?2 AND ?3";
constexpr char kVocabCount[] = "SELECT n FROM vocab WHERE word = ?1";
// Vocabulary words starting with ?1 (?2 is ?1 followed by a byte above any in UTF-8).
constexpr char kVocabPrefix[] = "SELECT word, n FROM vocab WHERE word >= ?1 AND word < ?2 LIMIT ?3";
// Vocabulary words containing the phrase ?1 (trigrams in a row: a substring).
constexpr char kVocabSubstring[] =
    "SELECT v.word, v.n FROM vocab_fts CROSS JOIN vocab AS v ON v.id = vocab_fts.rowid "
    "WHERE vocab_fts MATCH ?1 LIMIT ?2";

constexpr char kReplicaState[] = "SELECT state FROM replicas WHERE file_id = ?1 AND node = ?2";
constexpr char kUpsertReplica[] =
    "INSERT INTO replicas(file_id, node, state, updated_at_ms) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(file_id, node) DO UPDATE SET state = excluded.state, updated_at_ms = excluded.updated_at_ms";
constexpr char kDeleteReplica[] = "DELETE FROM replicas WHERE file_id = ?1 AND node = ?2";
constexpr char kReplicaStatesOfFile[] =
    "SELECT state, count(*) FROM replicas WHERE file_id = ?1 GROUP BY state";
constexpr char kDeleteReplicasOfFile[] = "DELETE FROM replicas WHERE file_id = ?1";
constexpr char kGetReplicas[] = "SELECT file_id, node, state, updated_at_ms FROM replicas WHERE file_id = ?1";
constexpr char kReplicasOnNode[] =
    "SELECT file_id, node, state, updated_at_ms FROM replicas WHERE node = ?1 AND file_id > ?2 "
    "ORDER BY file_id LIMIT ?3";
constexpr char kDumpReplicas[] =
    "SELECT file_id, node, state, updated_at_ms FROM replicas ORDER BY file_id, node";

constexpr char kUpsertLock[] =
    "INSERT OR REPLACE INTO locks(name, owner, expires_at_ms, token) VALUES (?1, ?2, ?3, ?4)";
constexpr char kDeleteLock[] = "DELETE FROM locks WHERE name = ?1";
constexpr char kGetLock[] = "SELECT name, owner, expires_at_ms, token FROM locks WHERE name = ?1";
constexpr char kDumpLocks[] = "SELECT name, owner, expires_at_ms, token FROM locks ORDER BY name";

constexpr char kUpsertSetting[] = "INSERT OR REPLACE INTO settings(key, value) VALUES (?1, ?2)";
constexpr char kGetSetting[] = "SELECT value FROM settings WHERE key = ?1";
constexpr char kDeleteSetting[] = "DELETE FROM settings WHERE key = ?1";
// `key > ?1` with ?1 = max(after, prefix): every key starting with the prefix sorts at or after it.
constexpr char kListSettings[] =
    "SELECT key, value FROM settings WHERE key > ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key LIMIT "
    "?3";
constexpr char kDumpSettings[] = "SELECT key, value FROM settings ORDER BY key";

constexpr char kCursorId[] = "SELECT id FROM songs WHERE file_id <= ?1 ORDER BY file_id DESC LIMIT 1";
constexpr const char* kExactByColumn[4] = {
    "SELECT id FROM songs WHERE ftitle = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    "SELECT id FROM songs WHERE fartist = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    "SELECT id FROM songs WHERE falbum = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    "SELECT id FROM songs WHERE ffile = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
};
constexpr char kVocabHas[] = "SELECT 1 FROM vocab WHERE word = ?1";
// Candidates of an FTS expression in rowid (= file_id) order, with the folded fields to verify.
constexpr char kWalkWords[] =
    "SELECT s.id, s.ftitle, s.fartist, s.falbum, s.ffile FROM songs_words CROSS JOIN songs AS s "
    "ON s.id = songs_words.rowid WHERE songs_words MATCH ?1 AND songs_words.rowid > ?2 "
    "ORDER BY songs_words.rowid";
constexpr char kWalkWordIds[] =
    "SELECT rowid FROM songs_words WHERE songs_words MATCH ?1 AND rowid > ?2 ORDER BY rowid";
constexpr char kWalk[] =
    "SELECT s.id, s.ftitle, s.fartist, s.falbum, s.ffile FROM songs_fts CROSS JOIN songs AS s "
    "ON s.id = songs_fts.rowid WHERE songs_fts MATCH ?1 AND songs_fts.rowid > ?2 ORDER BY songs_fts.rowid";
constexpr char kScanTerms[] = "SELECT term, doc FROM temp.songs_fts_terms WHERE doc >= ?1";
constexpr char kCountFts[] =
    "SELECT count(*) FROM (SELECT rowid FROM songs_fts WHERE songs_fts MATCH ?1 LIMIT ?2)";

// --- Order keys -------------------------------------------------------------------------------------

// songs.id lies in (0, kIdLimit) and grows with file_id (see the header).
constexpr int64_t kIdLimit = int64_t{1} << 62;
constexpr int64_t kIdFirst = int64_t{1} << 40;
constexpr int64_t kIdGap = int64_t{1} << 24;      // room left after an appended (or before a prepended) id
constexpr int64_t kIdMinSlot = int64_t{1} << 16;  // spacing a renumbered window gets at least

// --- Validation -----------------------------------------------------------------------------------

// The words of a stored folded field ("\x02 w1 w2 \x03").
void AddVocabWords(std::string_view folded, std::set<std::string>* out) {
  if (folded.size() < 4) return;
  folded = folded.substr(2, folded.size() - 4);
  size_t start = 0;
  while (start <= folded.size()) {
    size_t end = folded.find(' ', start);
    if (end == std::string_view::npos) end = folded.size();
    if (end > start) out->emplace(folded.substr(start, end - start));
    start = end + 1;
  }
}

// Words that typo tolerance may propose or accept as known: 3+ characters, not all digits.
bool IsFuzzyWord(std::string_view w) {
  return search::CodePointCount(w) >= 3 &&
         !std::all_of(w.begin(), w.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct FoldedSong {
  std::string f[4];
  std::set<std::string> Vocab() const {
    std::set<std::string> words;
    for (const auto& x : f) AddVocabWords(x, &words);
    return words;
  }
};

FoldedSong Fold(const Song& s) {
  if (IsPicture(s)) return FoldedSong{};  // not searchable: a picture is not a song
  return FoldedSong{{FoldField(s.title), FoldField(s.artist), FoldField(s.album), FoldField(s.file_name)}};
}

Song ReadSong(const Stmt& st) {
  return sqlite::ReadSongRow(st);
}

Replica ReadReplica(const Stmt& st) {
  return Replica{st.Text(0), NodeId(static_cast<uint64_t>(st.Int(1))), static_cast<ReplicaState>(st.Int(2)),
                 st.Int(3)};
}

Lock ReadLock(const Stmt& st) {
  return Lock{st.Text(0), st.Text(1), st.Int(2), static_cast<uint64_t>(st.Int(3))};
}

// --- Search plan -------------------------------------------------------------------------------------

// (Built with append: GCC 12 at -O3 reports a false -Wrestrict on chains of operator+.)
std::string Phrase(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
  std::string out;
  out.reserve(a.size() + b.size() + c.size() + 2);
  out.push_back('"');
  out.append(a).append(b).append(c);
  out.push_back('"');
  return out;
}

// A condition on a song's folded fields: every group must have a literal that occurs in one of
// the fields. Satisfied decides it exactly; the full-text index only proposes candidates (see
// SqliteStore::CandidateExpr), so what a search finds never depends on the tokenizer.
using Cond = std::vector<std::vector<std::string>>;

// The literals by which word `w` starts a word of a field (1-character words: a whole word, or
// the first word of a field, so that every literal has a trigram).
std::vector<std::string> PrefixLiterals(const std::string& w) {
  if (search::CodePointCount(w) == 1) return {" " + w + " ", "\x02 " + w};
  return {" " + w};
}

std::vector<std::string> SubstringLiterals(const std::string& w) {
  return search::CodePointCount(w) >= 3 ? std::vector<std::string>{w} : PrefixLiterals(w);
}

// The distinct trigrams (3 code points) of a literal, with the code point position of each.
std::vector<std::pair<size_t, std::string>> Trigrams(std::string_view literal) {
  std::vector<size_t> starts;  // byte offset of every code point, and the end
  for (size_t i = 0; i < literal.size(); ++i) {
    if ((static_cast<uint8_t>(literal[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  starts.push_back(literal.size());
  std::vector<std::pair<size_t, std::string>> out;
  for (size_t i = 0; i + 3 < starts.size(); ++i) {
    std::string t(literal.substr(starts[i], starts[i + 3] - starts[i]));
    if (std::none_of(out.begin(), out.end(), [&t](const auto& p) { return p.second == t; })) {
      out.emplace_back(i, std::move(t));
    }
  }
  return out;
}

using Fields = std::array<std::string_view, 4>;

bool Satisfied(const Cond& cond, const Fields& fields) {
  for (const auto& group : cond) {
    bool any = false;
    for (const auto& literal : group) {
      for (const auto& f : fields) any = any || f.find(literal) != std::string::npos;
      if (any) break;
    }
    if (!any) return false;
  }
  return true;
}

// What a query matches, bucket by bucket (see the header): 0 exact, 1 prefix, 2 substring
// (empty when the words are all 1-2 characters: then it equals 1), 3 fuzzy (empty when unused).
struct SearchPlan {
  std::string exact;
  Cond cond[4];  // cond[0] unused
  // With fuzzy matching (cond[3] set): every song of buckets 0-2 with its bucket, so that a song
  // satisfying cond[3] and not listed here is in bucket 3.
  std::unordered_map<int64_t, int> below_fuzzy;
  // The first bucket whose condition the song's fields satisfy, or -1.
  int BucketOf(const Fields& fields) const {
    if (std::find(fields.begin(), fields.end(), exact) != fields.end()) return 0;
    for (int b = 1; b < 4; ++b) {
      if (!cond[b].empty() && Satisfied(cond[b], fields)) return b;
    }
    return -1;
  }
  const Cond& Widest() const {
    for (int b = 3; b > 1; --b) {
      if (!cond[b].empty()) return cond[b];
    }
    return cond[1];
  }
};

std::string EncodeCursor(int bucket, std::string_view file_id) {
  return "v1." + std::to_string(bucket) + "." + std::string(file_id);
}

bool DecodeCursor(std::string_view cursor, int* bucket, std::string* file_id) {
  if (cursor.size() < 6 || cursor.substr(0, 3) != "v1." || cursor[4] != '.') return false;
  if (cursor[3] < '0' || cursor[3] > '3') return false;
  *bucket = cursor[3] - '0';
  *file_id = std::string(cursor.substr(5));
  return IsValidFileId(*file_id);
}

struct Hit {
  int bucket;
  int64_t id;
};

// --- The store ------------------------------------------------------------------------------------

class SqliteStore final : public MetadataStore {
 public:
  SqliteStore(std::string path, SqliteStoreOptions options) : path_(std::move(path)), options_(options) {}
  ~SqliteStore() override {
    stop_stats_.store(true);
    if (stats_thread_.joinable()) stats_thread_.join();
  }
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Status Open();
  // Brings a version 1 database to version 2 (inside Open's transaction; Open goes on to 3).
  Status MigrateFromV1();

  Result<LogIndex> AppliedIndex() override { return LogIndex(applied_.load()); }
  Status Apply(LogIndex index, const std::vector<Mutation>& mutations) override;
  Result<std::optional<Song>> GetSong(std::string_view file_id) override;
  Result<SongPage> ListSongs(const ListRequest& request) override;
  Result<SearchPage> Search(const SearchRequest& request) override;
  Result<ArtistPage> ListArtists(const ArtistListRequest& request) override {
    auto reader = AcquireReader();
    if (!reader.ok()) return reader.status();
    return sqlite::ListArtists((*reader)->conn(), request);
  }
  Result<AlbumPage> ListAlbums(const AlbumListRequest& request) override {
    auto reader = AcquireReader();
    if (!reader.ok()) return reader.status();
    return sqlite::ListAlbums((*reader)->conn(), request);
  }
  Result<std::optional<AlbumDetail>> GetAlbum(std::string_view album_id) override {
    auto reader = AcquireReader();
    if (!reader.ok()) return reader.status();
    DISPOTIFY_RETURN_IF_ERROR((*reader)->Begin());  // the summary and the songs of one snapshot
    return sqlite::GetAlbum((*reader)->conn(), album_id);
  }
  Result<std::optional<Song>> SongWithCover(std::string_view cover) override {
    auto reader = AcquireReader();
    if (!reader.ok()) return reader.status();
    return sqlite::SongWithCover((*reader)->conn(), cover);
  }
  Result<std::vector<Replica>> GetReplicas(std::string_view file_id) override;
  Result<std::vector<Replica>> ReplicasOnNode(NodeId node, std::string_view after_file_id,
                                              uint32_t limit) override;
  Result<std::optional<Lock>> GetLock(std::string_view name) override;
  Result<std::optional<std::string>> GetSetting(std::string_view key) override;
  Result<std::vector<std::pair<std::string, std::string>>> ListSettings(std::string_view prefix,
                                                                        std::string_view after,
                                                                        uint32_t limit) override;
  Result<CatalogStats> Stats() override;
  Status Dump(const std::function<Status(std::string_view)>& sink) override;
  Status Load(const std::string& path) override;

 private:
  // A reader connection borrowed from the pool, returned when destroyed.
  class Reader {
   public:
    Reader(SqliteStore* store, std::unique_ptr<Conn> conn) : store_(store), conn_(std::move(conn)) {}
    ~Reader() {
      if (in_txn_) (void)conn_->Exec("COMMIT");
      store_->ReleaseReader(std::move(conn_));
    }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    Conn& conn() { return *conn_; }
    // Starts a read transaction: every later statement sees the same snapshot.
    Status Begin() {
      DISPOTIFY_RETURN_IF_ERROR(conn_->Exec("BEGIN"));
      in_txn_ = true;
      return Status::Ok();
    }

   private:
    SqliteStore* store_;
    std::unique_ptr<Conn> conn_;
    bool in_txn_ = false;
  };

  Result<std::unique_ptr<Reader>> AcquireReader();
  void ReleaseReader(std::unique_ptr<Conn> conn);

  // --- must hold write_mu_ ---
  Status ApplyLocked(LogIndex index, const std::vector<Mutation>& mutations);
  Status ApplyOne(const Mutation& m);
  Status PutSong(const Song& song, bool maintain_vocab);
  Status DeleteSong(std::string_view file_id);
  Status PutReplica(const Replica& replica);
  Status DeleteReplica(std::string_view file_id, NodeId node);
  Status ChangeVocab(const std::set<std::string>& words, int64_t delta);
  Result<int64_t> AssignId(std::string_view file_id);
  Result<int64_t> Renumber(int64_t lo, int64_t hi);

  // --- search, on a reader inside a read transaction ---
  Status FetchBucket(Conn& c, int bucket, const SearchPlan& plan, int64_t after_id, size_t want,
                     std::vector<Hit>* out);
  // Calls visit(id, bucket) for the songs satisfying `cond`, in file_id order after after_id,
  // until it returns false.
  Status Walk(Conn& c, const SearchPlan& plan, const Cond& cond, int64_t after_id,
              const std::function<bool(int64_t, int)>& visit);
  // An FTS expression (over songs_fts or songs_words) whose matches include every song satisfying
  // a condition, with the estimated number of songs it lets through and the cost of reading them.
  struct Candidates {
    std::string expr;
    double songs = 0;
    double cost = 0;     // microseconds, estimated
    bool exact = false;  // the matches are exactly the songs satisfying the condition
  };
  Result<Candidates> CandidateExpr(Conn& c, const Cond& cond);
  struct WordGroup {
    std::vector<std::string> words;
    double songs = 0;  // sum of the songs of each word
    bool too_many = false;
  };
  static constexpr size_t kMaxGroupWords = 128;
  Result<WordGroup> GroupWords(Conn& c, const std::vector<std::string>& group);
  // verify: whether its candidates will be read and checked (else only their ids are read).
  Result<std::optional<Candidates>> WordExpr(Conn& c, const Cond& cond, bool verify);
  // Songs holding `trigram`, exact or (above kTrigramFrequencyCap) an estimate.
  Result<double> TrigramFrequency(Conn& c, const std::string& trigram);
  // Fills the trigram statistics from one scan of the index (run on a thread after Open).
  void WarmTrigramStats();
  Result<std::vector<std::string>> FuzzyAlternatives(Conn& c, const std::string& word);

  const std::string path_;
  const SqliteStoreOptions options_;
  std::atomic<uint64_t> applied_{0};

  std::mutex write_mu_;
  std::unique_ptr<Conn> writer_;  // guarded by write_mu_
  // Counter deltas of the transaction in progress (guarded by write_mu_).
  int64_t d_songs_ = 0, d_bytes_ = 0, d_healthy_ = 0, d_other_ = 0;

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Conn>> idle_readers_;  // guarded by readers_mu_

  // Songs in the store (kept beside the meta counter for the trigram statistics).
  std::atomic<uint64_t> songs_{0};
  // Songs per trigram: from the scan of WarmTrigramStats, or probed on first use (counted up to
  // kTrigramFrequencyCap), again when the number of songs has changed by more than half. Only a
  // hint for choosing which trigrams narrow a search, never a reason for a result.
  struct TrigramStat {
    double docs;
    uint64_t songs;
  };
  std::mutex trigram_mu_;
  std::unordered_map<std::string, TrigramStat> trigram_stats_;  // guarded by trigram_mu_
  std::atomic<bool> stop_stats_{false};
  std::thread stats_thread_;
};

Status SqliteStore::Open() {
  auto writer = Conn::Open(path_, options_, /*create=*/true);
  if (!writer.ok()) return writer.status();
  writer_ = std::move(writer).value();
  DISPOTIFY_RETURN_IF_ERROR(writer_->Exec("BEGIN IMMEDIATE"));
  Status st = [&]() -> Status {
    int64_t tables = 0;
    {
      DISPOTIFY_ASSIGN_STMT(has, *writer_, kHasSchema);
      auto row = has.Step();
      if (!row.ok()) return row.status();
      tables = has.Int(0);
    }
    if (tables == 0) {
      DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kCreateSchema));
      DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kCreateTrigramFts));
      DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kCreateWordFts));
      DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kCreateFtsTriggers));
      DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(sqlite::kCreateLibrarySchema));
      // A new database has the songs and albums tables of version 3: the covers' columns are
      // added the way the migration adds them, so that both paths make the same schema.
      return writer_->Exec(sqlite::kAddCoverColumns);
    }
    int64_t version = 0;
    {
      DISPOTIFY_ASSIGN_STMT(get, *writer_, kMetaGet);
      get.Bind(1, "schema_version");
      auto found = get.Step();
      if (!found.ok()) return found.status();
      if (!*found) return Status::Corruption(path_ + ": no schema_version in meta");
      version = get.Int(0);
    }
    if (version == 1) {
      DISPOTIFY_RETURN_IF_ERROR(MigrateFromV1());
      version = 2;
    }
    const bool rebuild_albums = version == 2;
    if (version == 2) {
      DLOG_INFO << "catalog store " << path_ << ": migrating from schema version 2 (albums)";
      DISPOTIFY_RETURN_IF_ERROR(sqlite::MigrateToV3(*writer_));
      version = 3;
    }
    if (version == 3) {
      DLOG_INFO << "catalog store " << path_ << ": migrating from schema version 3 (covers)";
      DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(sqlite::kAddCoverColumns));
      // Songs written before version 4 have no cover, so their albums' rows stay right; a
      // database coming from version 2 has none yet.
      if (rebuild_albums) DISPOTIFY_RETURN_IF_ERROR(sqlite::RebuildAlbums(*writer_));
      DISPOTIFY_ASSIGN_STMT(set, *writer_, kMetaSet);
      DISPOTIFY_RETURN_IF_ERROR(set.Bind(1, "schema_version").Bind(2, kSchemaVersion).Run());
      version = kSchemaVersion;
    }
    if (version != kSchemaVersion) {
      return Status::FailedPrecondition(path_ + ": catalog schema version " + std::to_string(version) +
                                        " is not supported (expected " + std::to_string(kSchemaVersion) +
                                        ")");
    }
    return Status::Ok();
  }();
  if (st.ok()) st = writer_->Exec("COMMIT");
  if (!st.ok()) {
    (void)writer_->Exec("ROLLBACK");
    return st;
  }
  for (const char* key : {"applied_index", "songs"}) {
    DISPOTIFY_ASSIGN_STMT(get, *writer_, kMetaGet);
    auto found = get.Bind(1, key).Step();
    if (!found.ok()) return found.status();
    if (!*found) return Status::Corruption(path_ + ": no " + key + " in meta");
    (std::string_view(key) == "songs" ? songs_ : applied_).store(static_cast<uint64_t>(get.Int(0)));
  }
  DLOG_INFO << "catalog store " << path_ << " opened at applied index " << applied_.load();
  if (options_.warm_search_statistics && songs_.load() > 0)
    stats_thread_ = std::thread([this] { WarmTrigramStats(); });
  return Status::Ok();
}

Status SqliteStore::MigrateFromV1() {
  DLOG_INFO << "catalog store " << path_ << ": migrating from schema version 1 (word index)";
  DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kMigrateV1));
  std::unordered_map<std::string, int64_t> vocab;
  {
    DISPOTIFY_ASSIGN_STMT(st, *writer_, kAllFolded);
    while (true) {
      auto row = st.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      const FoldedSong f{{st.Text(0), st.Text(1), st.Text(2), st.Text(3)}};
      for (const auto& w : f.Vocab()) ++vocab[w];
    }
  }
  for (const auto& [word, n] : vocab) DISPOTIFY_RETURN_IF_ERROR(ChangeVocab({word}, n));
  DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kCreateWordFts));
  DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kCreateFtsTriggers));
  DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kRebuildWordFts));
  DISPOTIFY_ASSIGN_STMT(set, *writer_, kMetaSet);
  return set.Bind(1, "schema_version").Bind(2, int64_t{2}).Run();
}

Result<std::unique_ptr<SqliteStore::Reader>> SqliteStore::AcquireReader() {
  std::unique_ptr<Conn> conn;
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    if (!idle_readers_.empty()) {
      conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
    }
  }
  if (conn == nullptr) {
    auto opened = Conn::Open(path_, options_, /*create=*/false);
    if (!opened.ok()) return opened.status();
    conn = std::move(opened).value();
    DISPOTIFY_RETURN_IF_ERROR(conn->Exec("PRAGMA query_only=1"));
  }
  return std::make_unique<Reader>(this, std::move(conn));
}

void SqliteStore::ReleaseReader(std::unique_ptr<Conn> conn) {
  std::lock_guard<std::mutex> lock(readers_mu_);
  if (idle_readers_.size() < options_.max_idle_readers) idle_readers_.push_back(std::move(conn));
}

// --- Writes ---------------------------------------------------------------------------------------

Status SqliteStore::Apply(LogIndex index, const std::vector<Mutation>& mutations) {
  std::lock_guard<std::mutex> lock(write_mu_);
  if (index.value() <= applied_.load()) return Status::Ok();  // replay of an applied entry
  if (index.value() > static_cast<uint64_t>(INT64_MAX)) return Status::InvalidArgument("index out of range");
  for (const Mutation& m : mutations) DISPOTIFY_RETURN_IF_ERROR(ValidateMutation(m));
  DISPOTIFY_RETURN_IF_ERROR(writer_->Exec("BEGIN IMMEDIATE"));
  Status st = ApplyLocked(index, mutations);
  if (st.ok()) st = writer_->Exec("COMMIT");
  if (!st.ok()) {
    (void)writer_->Exec("ROLLBACK");
    return st;
  }
  applied_.store(index.value());
  songs_.fetch_add(static_cast<uint64_t>(d_songs_));
  return Status::Ok();
}

Status SqliteStore::ApplyOne(const Mutation& m) {
  switch (m.kind) {
    case Mutation::Kind::kPutSong: return PutSong(m.song, /*maintain_vocab=*/true);
    case Mutation::Kind::kDeleteSong: return DeleteSong(m.key);
    case Mutation::Kind::kPutReplica: return PutReplica(m.replica);
    case Mutation::Kind::kDeleteReplica: return DeleteReplica(m.replica.file_id, m.replica.node);
    case Mutation::Kind::kPutLock: {
      DISPOTIFY_ASSIGN_STMT(st, *writer_, kUpsertLock);
      return st.Bind(1, m.lock.name)
          .Bind(2, m.lock.owner)
          .Bind(3, m.lock.expires_at_ms)
          .Bind(4, static_cast<int64_t>(m.lock.token))
          .Run();
    }
    case Mutation::Kind::kDeleteLock: {
      DISPOTIFY_ASSIGN_STMT(st, *writer_, kDeleteLock);
      return st.Bind(1, m.key).Run();
    }
    case Mutation::Kind::kPutSetting: {
      DISPOTIFY_ASSIGN_STMT(st, *writer_, kUpsertSetting);
      return st.Bind(1, m.key).Bind(2, m.value).Run();
    }
    case Mutation::Kind::kDeleteSetting: {
      DISPOTIFY_ASSIGN_STMT(st, *writer_, kDeleteSetting);
      return st.Bind(1, m.key).Run();
    }
  }
  return Status::InvalidArgument("unknown mutation kind");
}

Status SqliteStore::ApplyLocked(LogIndex index, const std::vector<Mutation>& mutations) {
  d_songs_ = d_bytes_ = d_healthy_ = d_other_ = 0;
  for (const Mutation& m : mutations) DISPOTIFY_RETURN_IF_ERROR(ApplyOne(m));
  const std::pair<const char*, int64_t> deltas[] = {{"songs", d_songs_},
                                                    {"bytes", d_bytes_},
                                                    {"replicas_healthy", d_healthy_},
                                                    {"replicas_other", d_other_}};
  for (const auto& [key, delta] : deltas) {
    if (delta == 0) continue;
    DISPOTIFY_ASSIGN_STMT(add, *writer_, kMetaAdd);
    DISPOTIFY_RETURN_IF_ERROR(add.Bind(1, key).Bind(2, delta).Run());
  }
  DISPOTIFY_ASSIGN_STMT(set, *writer_, kMetaSet);
  return set.Bind(1, "applied_index").Bind(2, static_cast<int64_t>(index.value())).Run();
}

Status SqliteStore::ChangeVocab(const std::set<std::string>& words, int64_t delta) {
  for (const std::string& w : words) {
    if (delta > 0) {
      const std::u32string cps = search::DecodeUtf8(w);
      DISPOTIFY_ASSIGN_STMT(inc, *writer_, kVocabInc);
      DISPOTIFY_RETURN_IF_ERROR(inc.Bind(1, w)
                                    .Bind(2, delta)
                                    .Bind(3, static_cast<int64_t>(cps.size()))
                                    .Bind(4, static_cast<int64_t>(cps.front()))
                                    .Bind(5, static_cast<int64_t>(cps.back()))
                                    .Run());
    } else {
      {
        DISPOTIFY_ASSIGN_STMT(dec, *writer_, kVocabDec);
        DISPOTIFY_RETURN_IF_ERROR(dec.Bind(1, w).Run());
      }
      DISPOTIFY_ASSIGN_STMT(gc, *writer_, kVocabGc);
      DISPOTIFY_RETURN_IF_ERROR(gc.Bind(1, w).Run());
    }
  }
  return Status::Ok();
}

Status SqliteStore::PutSong(const Song& song, bool maintain_vocab) {
  Song completed = song;
  CompleteSong(&completed);
  const Song& s = completed;
  const FoldedSong folded = Fold(s);
  int64_t id = 0;
  bool exists = false;
  FoldedSong before;
  std::string old_album;
  {
    DISPOTIFY_ASSIGN_STMT(old, *writer_, kSongForWrite);
    old.Bind(1, s.file_id);
    auto row = old.Step();
    if (!row.ok()) return row.status();
    if (*row) {
      exists = true;
      id = old.Int(0);
      d_bytes_ -= old.Int(1);
      before = FoldedSong{{old.Text(2), old.Text(3), old.Text(4), old.Text(5)}};
      old_album = old.Text(6);
    }
  }
  const bool same_text = exists && std::equal(std::begin(before.f), std::end(before.f), std::begin(folded.f));
  if (exists && maintain_vocab && !same_text) {
    std::set<std::string> gone, added;
    const std::set<std::string> a = before.Vocab(), b = folded.Vocab();
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(gone, gone.end()));
    std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::inserter(added, added.end()));
    DISPOTIFY_RETURN_IF_ERROR(ChangeVocab(gone, -1));
    DISPOTIFY_RETURN_IF_ERROR(ChangeVocab(added, +1));
  }
  if (!exists) {
    auto assigned = AssignId(s.file_id);
    if (!assigned.ok()) return assigned.status();
    id = *assigned;
    ++d_songs_;
    if (maintain_vocab) DISPOTIFY_RETURN_IF_ERROR(ChangeVocab(folded.Vocab(), +1));
  }
  d_bytes_ += static_cast<int64_t>(s.size_bytes);
  const char* sql = !exists ? kInsertSong : same_text ? kUpdateSongDisplay : kUpdateSong;
  DISPOTIFY_ASSIGN_STMT(put, *writer_, sql);
  put.Bind(1, id)
      .Bind(2, s.file_id)
      .Bind(3, s.title)
      .Bind(4, s.artist)
      .Bind(5, s.album)
      .Bind(6, s.file_name)
      .Bind(7, s.content_type)
      .Bind(8, static_cast<int64_t>(s.track))
      .Bind(9, static_cast<int64_t>(s.year))
      .Bind(10, static_cast<int64_t>(s.duration_ms))
      .Bind(11, static_cast<int64_t>(s.size_bytes))
      .Bind(12, s.sha256)
      .Bind(13, s.created_at_ms)
      .Bind(18, s.album_artist)
      .Bind(19, static_cast<int64_t>(s.disc))
      .Bind(20, s.genre)
      .Bind(21, int64_t{s.compilation ? 1 : 0})
      .Bind(22, s.album_id)
      .Bind(23, s.cover);
  if (sql != kUpdateSongDisplay) {
    for (int i = 0; i < 4; ++i) put.Bind(14 + i, folded.f[i]);
  }
  DISPOTIFY_RETURN_IF_ERROR(put.Run());
  // Load rebuilds every album once at the end instead (maintain_vocab is false there).
  if (!maintain_vocab) return Status::Ok();
  if (exists && old_album != s.album_id) DISPOTIFY_RETURN_IF_ERROR(sqlite::RefreshAlbum(*writer_, old_album));
  return sqlite::RefreshAlbum(*writer_, s.album_id);
}

Status SqliteStore::DeleteSong(std::string_view file_id) {
  int64_t id = 0;
  FoldedSong before;
  std::string album;
  {
    DISPOTIFY_ASSIGN_STMT(old, *writer_, kSongForWrite);
    old.Bind(1, file_id);
    auto row = old.Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
    id = old.Int(0);
    d_bytes_ -= old.Int(1);
    before = FoldedSong{{old.Text(2), old.Text(3), old.Text(4), old.Text(5)}};
    album = old.Text(6);
  }
  --d_songs_;
  DISPOTIFY_RETURN_IF_ERROR(ChangeVocab(before.Vocab(), -1));
  {
    DISPOTIFY_ASSIGN_STMT(del, *writer_, kDeleteSong);
    DISPOTIFY_RETURN_IF_ERROR(del.Bind(1, id).Run());
  }
  DISPOTIFY_RETURN_IF_ERROR(sqlite::RefreshAlbum(*writer_, album));
  {
    DISPOTIFY_ASSIGN_STMT(states, *writer_, kReplicaStatesOfFile);
    states.Bind(1, file_id);
    while (true) {
      auto row = states.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      (states.Int(0) == static_cast<int64_t>(ReplicaState::kHealthy) ? d_healthy_ : d_other_) -=
          states.Int(1);
    }
  }
  DISPOTIFY_ASSIGN_STMT(del, *writer_, kDeleteReplicasOfFile);
  return del.Bind(1, file_id).Run();
}

Status SqliteStore::PutReplica(const Replica& r) {
  {
    DISPOTIFY_ASSIGN_STMT(old, *writer_, kReplicaState);
    old.Bind(1, r.file_id).Bind(2, static_cast<int64_t>(r.node.value()));
    auto row = old.Step();
    if (!row.ok()) return row.status();
    if (*row) (old.Int(0) == static_cast<int64_t>(ReplicaState::kHealthy) ? d_healthy_ : d_other_) -= 1;
  }
  (r.state == ReplicaState::kHealthy ? d_healthy_ : d_other_) += 1;
  DISPOTIFY_ASSIGN_STMT(put, *writer_, kUpsertReplica);
  return put.Bind(1, r.file_id)
      .Bind(2, static_cast<int64_t>(r.node.value()))
      .Bind(3, static_cast<int64_t>(r.state))
      .Bind(4, r.updated_at_ms)
      .Run();
}

Status SqliteStore::DeleteReplica(std::string_view file_id, NodeId node) {
  {
    DISPOTIFY_ASSIGN_STMT(old, *writer_, kReplicaState);
    old.Bind(1, file_id).Bind(2, static_cast<int64_t>(node.value()));
    auto row = old.Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
    (old.Int(0) == static_cast<int64_t>(ReplicaState::kHealthy) ? d_healthy_ : d_other_) -= 1;
  }
  DISPOTIFY_ASSIGN_STMT(del, *writer_, kDeleteReplica);
  return del.Bind(1, file_id).Bind(2, static_cast<int64_t>(node.value())).Run();
}

Result<int64_t> SqliteStore::AssignId(std::string_view file_id) {
  int64_t lo = 0, hi = kIdLimit;
  bool has_lo = false, has_hi = false;
  {
    DISPOTIFY_ASSIGN_STMT(pred, *writer_, kPredecessor);
    auto row = pred.Bind(1, file_id).Step();
    if (!row.ok()) return row.status();
    if (*row) {
      lo = pred.Int(0);
      has_lo = true;
    }
  }
  {
    DISPOTIFY_ASSIGN_STMT(succ, *writer_, kSuccessor);
    auto row = succ.Bind(1, file_id).Step();
    if (!row.ok()) return row.status();
    if (*row) {
      hi = succ.Int(0);
      has_hi = true;
    }
  }
  if (hi - lo >= 2) {
    if (!has_lo && !has_hi) return kIdFirst;
    if (!has_hi) return lo + std::min(kIdGap, (hi - lo) / 2);
    if (!has_lo) return hi - std::min(kIdGap, (hi - lo) / 2);
    return lo + (hi - lo) / 2;
  }
  return Renumber(lo, hi);
}

// No id is free between neighbours `lo` and `hi` (0 / kIdLimit when missing): spreads a window of
// songs around the gap evenly over a wider range, doubling the window until its ids can be at
// least kIdMinSlot apart, and returns the id left for the new song in the middle.
Result<int64_t> SqliteStore::Renumber(int64_t lo, int64_t hi) {
  for (int64_t half = 4;; half *= 2) {
    std::vector<int64_t> below, above;  // below: descending from lo; above: ascending from hi
    {
      DISPOTIFY_ASSIGN_STMT(st, *writer_, kIdsAtOrBelow);
      st.Bind(1, lo).Bind(2, half + 1);
      while (true) {
        auto row = st.Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        below.push_back(st.Int(0));
      }
    }
    {
      DISPOTIFY_ASSIGN_STMT(st, *writer_, kIdsAtOrAbove);
      st.Bind(1, hi).Bind(2, half + 1);
      while (true) {
        auto row = st.Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        above.push_back(st.Int(0));
      }
    }
    int64_t range_lo = 0, range_hi = kIdLimit;
    if (static_cast<int64_t>(below.size()) > half) {
      range_lo = below.back();
      below.pop_back();
    }
    if (static_cast<int64_t>(above.size()) > half) {
      range_hi = above.back();
      above.pop_back();
    }
    const auto count = static_cast<int64_t>(below.size() + 1 + above.size());
    const int64_t slot = (range_hi - range_lo) / (count + 1);
    if (slot < kIdMinSlot && !(range_lo == 0 && range_hi == kIdLimit)) continue;
    DISPOTIFY_CHECK(slot >= 1, "catalog order keys exhausted");
    std::vector<int64_t> window(below.rbegin(), below.rend());
    const size_t new_pos = window.size();
    window.push_back(0);  // the new song
    window.insert(window.end(), above.begin(), above.end());
    // Move the window out of the way first (negative ids are free), then to the new ids, so that
    // no intermediate state breaks the uniqueness of id.
    for (int64_t id : window) {
      if (id == 0) continue;
      DISPOTIFY_ASSIGN_STMT(set, *writer_, kSetId);
      DISPOTIFY_RETURN_IF_ERROR(set.Bind(1, id).Bind(2, -id).Run());
    }
    for (size_t i = 0; i < window.size(); ++i) {
      if (i == new_pos) continue;
      DISPOTIFY_ASSIGN_STMT(set, *writer_, kSetId);
      const int64_t new_id = range_lo + slot * static_cast<int64_t>(i + 1);
      DISPOTIFY_RETURN_IF_ERROR(set.Bind(1, -window[i]).Bind(2, new_id).Run());
    }
    DLOG_DEBUG << "catalog: renumbered " << window.size() - 1 << " order keys";
    return range_lo + slot * static_cast<int64_t>(new_pos + 1);
  }
}

// --- Reads ------------------------------------------------------------------------------------------

Result<std::optional<Song>> SqliteStore::GetSong(std::string_view file_id) {
  if (!IsValidFileId(file_id)) return Status::InvalidArgument("invalid file_id");
  auto reader = AcquireReader();
  if (!reader.ok()) return reader.status();
  DISPOTIFY_ASSIGN_STMT(st, (*reader)->conn(), kGetSong);
  auto row = st.Bind(1, file_id).Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<Song>();
  return std::optional<Song>(ReadSong(st));
}

Result<SongPage> SqliteStore::ListSongs(const ListRequest& request) {
  if (request.limit < 1 || request.limit > 1000) return Status::InvalidArgument("limit must be 1..1000");
  if (!request.after_file_id.empty() && !IsValidFileId(request.after_file_id)) {
    return Status::InvalidArgument("invalid after_file_id");
  }
  auto reader = AcquireReader();
  if (!reader.ok()) return reader.status();
  DISPOTIFY_ASSIGN_STMT(st, (*reader)->conn(), kListSongs);
  st.Bind(1, request.after_file_id).Bind(2, static_cast<int64_t>(request.limit) + 1);
  SongPage page;
  while (true) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (page.items.size() == request.limit) {
      page.next_after = page.items.back().file_id;
      break;
    }
    page.items.push_back(ReadSong(st));
  }
  return page;
}

Result<std::vector<Replica>> SqliteStore::GetReplicas(std::string_view file_id) {
  if (!IsValidFileId(file_id)) return Status::InvalidArgument("invalid file_id");
  auto reader = AcquireReader();
  if (!reader.ok()) return reader.status();
  DISPOTIFY_ASSIGN_STMT(st, (*reader)->conn(), kGetReplicas);
  st.Bind(1, file_id);
  std::vector<Replica> out;
  while (true) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadReplica(st));
  }
  std::sort(out.begin(), out.end(), [](const Replica& a, const Replica& b) { return a.node < b.node; });
  return out;
}

Result<std::vector<Replica>> SqliteStore::ReplicasOnNode(NodeId node, std::string_view after_file_id,
                                                         uint32_t limit) {
  if (limit < 1 || limit > 10000) return Status::InvalidArgument("limit must be 1..10000");
  if (!after_file_id.empty() && !IsValidFileId(after_file_id)) {
    return Status::InvalidArgument("invalid after_file_id");
  }
  auto reader = AcquireReader();
  if (!reader.ok()) return reader.status();
  DISPOTIFY_ASSIGN_STMT(st, (*reader)->conn(), kReplicasOnNode);
  st.Bind(1, static_cast<int64_t>(node.value())).Bind(2, after_file_id).Bind(3, static_cast<int64_t>(limit));
  std::vector<Replica> out;
  while (true) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadReplica(st));
  }
  return out;
}

Result<std::optional<Lock>> SqliteStore::GetLock(std::string_view name) {
  auto reader = AcquireReader();
  if (!reader.ok()) return reader.status();
  DISPOTIFY_ASSIGN_STMT(st, (*reader)->conn(), kGetLock);
  auto row = st.Bind(1, name).Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<Lock>();
  return std::optional<Lock>(ReadLock(st));
}

Result<std::optional<std::string>> SqliteStore::GetSetting(std::string_view key) {
  auto reader = AcquireReader();
  if (!reader.ok()) return reader.status();
  DISPOTIFY_ASSIGN_STMT(st, (*reader)->conn(), kGetSetting);
  auto row = st.Bind(1, key).Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(st.Text(0));
}

Result<std::vector<std::pair<std::string, std::string>>> SqliteStore::ListSettings(std::string_view prefix,
                                                                                   std::string_view after,
                                                                                   uint32_t limit) {
  if (limit == 0 || limit > 1000) return Status::InvalidArgument("limit must be 1..1000");
  auto reader = AcquireReader();
  if (!reader.ok()) return reader.status();
  DISPOTIFY_ASSIGN_STMT(st, (*reader)->conn(), kListSettings);
  st.Bind(1, std::max(after, prefix)).Bind(2, prefix).Bind(3, static_cast<int64_t>(limit));
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.emplace_back(st.Text(0), st.Text(1));
  }
  return out;
}

Result<CatalogStats> SqliteStore::Stats() {
  auto reader = AcquireReader();
  if (!reader.ok()) return reader.status();
  DISPOTIFY_ASSIGN_STMT(st, (*reader)->conn(), kMetaAll);
  CatalogStats stats;
  while (true) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const std::string key = st.Text(0);
    const auto v = static_cast<uint64_t>(st.Int(1));
    if (key == "songs") stats.songs = v;
    if (key == "bytes") stats.bytes = v;
    if (key == "replicas_healthy") stats.replicas_healthy = v;
    if (key == "replicas_other") stats.replicas_other = v;
  }
  return stats;
}

// --- Search -----------------------------------------------------------------------------------------

constexpr uint32_t kTrigramFrequencyCap = 65536;
constexpr size_t kTrigramStatsMax = 1 << 18;

Result<double> SqliteStore::TrigramFrequency(Conn& c, const std::string& trigram) {
  const uint64_t songs = songs_.load();
  {
    std::lock_guard<std::mutex> lock(trigram_mu_);
    auto it = trigram_stats_.find(trigram);
    if (it != trigram_stats_.end() && it->second.songs <= 2 * songs + 1000 &&
        songs <= 2 * it->second.songs + 1000) {
      return it->second.docs;
    }
  }
  DISPOTIFY_ASSIGN_STMT(st, c, kCountFts);
  auto row = st.Bind(1, Phrase(trigram)).Bind(2, static_cast<int64_t>(kTrigramFrequencyCap)).Step();
  if (!row.ok()) return row.status();
  double docs = static_cast<double>(st.Int(0));
  if (docs >= kTrigramFrequencyCap) docs = std::max(docs, static_cast<double>(songs) / 4);  // a guess
  std::lock_guard<std::mutex> lock(trigram_mu_);
  if (trigram_stats_.size() >= kTrigramStatsMax) trigram_stats_.clear();
  trigram_stats_[trigram] = TrigramStat{docs, songs};
  return docs;
}

// One pass over the index's term list (fts5vocab) gives the exact document count of every
// trigram; rare ones are left to be probed on demand (cheap), to bound the memory.
void SqliteStore::WarmTrigramStats() {
  constexpr int64_t kMinDocs = 64;
  auto opened = Conn::Open(path_, options_, /*create=*/false);
  if (!opened.ok()) return;
  Conn& c = **opened;
  if (!c.Exec("CREATE VIRTUAL TABLE temp.songs_fts_terms USING fts5vocab(main, songs_fts, row)").ok()) return;
  const uint64_t songs = songs_.load();
  std::unordered_map<std::string, TrigramStat> found;
  {
    auto prepared = c.Prepare(kScanTerms);
    if (!prepared.ok()) return;
    Stmt st(*prepared);
    st.Bind(1, kMinDocs);
    while (!stop_stats_.load()) {
      auto row = st.Step();
      if (!row.ok() || !*row) break;
      if (found.size() < kTrigramStatsMax)
        found[st.Text(0)] = TrigramStat{static_cast<double>(st.Int(1)), songs};
    }
  }
  if (stop_stats_.load()) return;
  std::lock_guard<std::mutex> lock(trigram_mu_);
  for (auto& [t, stat] : found) trigram_stats_.insert_or_assign(t, stat);
  DLOG_INFO << "catalog store " << path_ << ": statistics of " << found.size() << " trigrams";
}

// An FTS expression whose matches include every song satisfying `cond` (a song holding a
// literal holds all its trigrams), made of single-trigram terms. Walk verifies every candidate,
// so this only decides how many songs are read, never what matches. A small cost model picks
// the terms: reading a candidate costs about kVerifyMicros (a random row), AND-ing a term about
// kPostingMicros per song in its list (the list is stepped through). Starting from the rarest
// trigram, each next one (rarest first) is added when the candidates it should remove cost more
// than its list. Trigrams of different words are taken as independent; of one word, a trigram
// is assumed to remove at most 3/4 of the candidates (1/2 when it overlaps one already chosen),
// as they mostly come together. A word with alternatives (fuzzy matching: an OR of literals) is
// added as a whole, each literal with its own terms chosen the same way.
// Single trigrams, not phrases: the index keeps no positions (detail=none); checking positions
// of common trigrams made phrase queries 10-40x slower on 1M songs.
Result<SqliteStore::Candidates> SqliteStore::CandidateExpr(Conn& c, const Cond& cond) {
  constexpr double kVerifyMicros = 4.0;
  constexpr double kPostingMicros = 0.02;
  constexpr size_t kMaxTerms = 8;
  const double n = std::max<double>(1, static_cast<double>(songs_.load()));
  struct Term {
    double docs;  // a saturated probe stands for "very common"
    size_t group;
    size_t pos;
    std::string trigram;
  };
  auto terms_of = [&](const std::string& literal, size_t group) -> Result<std::vector<Term>> {
    std::vector<Term> terms;
    for (auto& [pos, t] : Trigrams(literal)) {
      auto docs = TrigramFrequency(c, t);
      if (!docs.ok()) return docs.status();
      terms.push_back(Term{*docs, group, pos, std::move(t)});
    }
    if (terms.empty()) return Status::InvalidArgument("search literal without a trigram");
    return terms;
  };
  // Chooses among `terms` (one AND), starting from `candidates` songs; returns the expression.
  auto choose = [&](std::vector<Term> terms, double* candidates, double* cost) {
    std::stable_sort(terms.begin(), terms.end(),
                     [](const Term& a, const Term& b) { return a.docs < b.docs; });
    std::vector<const Term*> chosen;
    for (const Term& t : terms) {
      if (chosen.size() == kMaxTerms) break;
      double keep = t.docs / n;
      bool same_word = false, overlaps = false;
      for (const Term* o : chosen) {
        if (o->group != t.group) continue;
        same_word = true;
        overlaps = overlaps || (t.pos > o->pos ? t.pos - o->pos : o->pos - t.pos) < 3;
      }
      if (same_word) keep = std::max(keep, overlaps ? 0.5 : 0.25);
      if (!chosen.empty() && *candidates * (1 - keep) * kVerifyMicros <= t.docs * kPostingMicros) continue;
      chosen.push_back(&t);
      *candidates = chosen.size() == 1 ? t.docs : *candidates * keep;
      *cost += t.docs * kPostingMicros;
    }
    std::string expr = "(";
    for (size_t k = 0; k < chosen.size(); ++k) {
      if (k > 0) expr += " AND ";
      expr += Phrase(chosen[k]->trigram);
    }
    return expr + ")";
  };

  const bool alternatives = std::any_of(cond.begin(), cond.end(), [](const auto& g) { return g.size() > 1; });
  if (!alternatives) {
    std::vector<Term> all;
    for (size_t g = 0; g < cond.size(); ++g) {
      auto terms = terms_of(cond[g][0], g);
      if (!terms.ok()) return terms.status();
      all.insert(all.end(), terms->begin(), terms->end());
    }
    Candidates out;
    out.songs = n;
    out.expr = choose(std::move(all), &out.songs, &out.cost);
    out.cost += out.songs * kVerifyMicros;
    return out;
  }
  struct Group {
    double estimate = 0;  // songs it lets through
    double cost = 0;      // of stepping through the lists of its terms
    std::string expr;
  };
  std::vector<Group> groups;
  for (size_t gi = 0; gi < cond.size(); ++gi) {
    Group g;
    for (size_t i = 0; i < cond[gi].size(); ++i) {
      auto terms = terms_of(cond[gi][i], gi);
      if (!terms.ok()) return terms.status();
      double candidates = n;
      g.expr += (i > 0 ? " OR " : "(") + choose(std::move(*terms), &candidates, &g.cost);
      g.estimate = std::min(n, g.estimate + candidates);
    }
    g.expr += ")";
    groups.push_back(std::move(g));
  }
  std::stable_sort(groups.begin(), groups.end(),
                   [](const Group& a, const Group& b) { return a.estimate < b.estimate; });
  Candidates out;
  out.expr = groups[0].expr;
  out.songs = groups[0].estimate;
  out.cost = groups[0].cost;
  for (size_t i = 1; i < groups.size(); ++i) {
    const double keep = groups[i].estimate / n;
    if (out.songs * (1 - keep) * kVerifyMicros <= groups[i].cost) continue;
    out.expr += " AND " + groups[i].expr;
    out.songs *= keep;
    out.cost += groups[i].cost;
  }
  out.cost += out.songs * kVerifyMicros;
  return out;
}

// The vocabulary words in which the literals of one group of a condition can occur: a literal
// never holds a space, so it lies within one word of a field; " w" (and "\x02 w", " w ") needs a
// word starting with w, a bare literal a word containing it. Stops at kMaxGroupWords + 1 words.
Result<SqliteStore::WordGroup> SqliteStore::GroupWords(Conn& c, const std::vector<std::string>& group) {
  WordGroup out;
  std::set<std::string> seen;
  auto add = [&](Stmt& st) -> Status {
    while (seen.size() <= kMaxGroupWords) {
      auto row = st.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      if (seen.insert(st.Text(0)).second) out.songs += static_cast<double>(st.Int(1));
    }
    return Status::Ok();
  };
  for (const std::string& literal : group) {
    if (seen.size() > kMaxGroupWords) break;
    std::string_view w = literal;
    const bool prefix = w.front() == ' ' || w.front() == '\x02';
    if (prefix) {
      w.remove_prefix(w.front() == ' ' ? 1 : 2);
      if (!w.empty() && w.back() == ' ') w.remove_suffix(1);
      std::string above(w);
      above.push_back('\xFF');
      DISPOTIFY_ASSIGN_STMT(st, c, kVocabPrefix);
      st.Bind(1, w).Bind(2, above).Bind(3, static_cast<int64_t>(kMaxGroupWords + 1));
      DISPOTIFY_RETURN_IF_ERROR(add(st));
    } else {
      DISPOTIFY_ASSIGN_STMT(st, c, kVocabSubstring);
      st.Bind(1, Phrase(w)).Bind(2, static_cast<int64_t>(kMaxGroupWords + 1));
      DISPOTIFY_RETURN_IF_ERROR(add(st));
    }
  }
  out.too_many = seen.size() > kMaxGroupWords;
  if (!out.too_many) out.words.assign(seen.begin(), seen.end());
  return out;
}

// An expression over songs_words whose matches include every song satisfying `cond` (with
// songs = 0 and an empty expression when no group can use the word index), or nullopt when no
// song can satisfy it (a group whose literals occur in no vocabulary word). Groups matching at
// most kMaxGroupWords words are ANDed, rarest (fewest songs) first, each next one when the
// candidates it should remove cost more to verify than its lists to step through. An OR of k
// words costs about kOrMicros * k per song it yields (FTS5 compares every list at each step).
Result<std::optional<SqliteStore::Candidates>> SqliteStore::WordExpr(Conn& c, const Cond& cond, bool verify) {
  const double kVerifyMicros = verify ? 4.0 : 0.3;  // reading a row and checking it, or an id
  constexpr double kPostingMicros = 0.02;
  constexpr double kWordMicros = 5.0;
  constexpr double kOrMicros = 0.08;
  const double n = std::max<double>(1, static_cast<double>(songs_.load()));
  std::vector<WordGroup> groups;
  Candidates out;
  // A 1-character word's literals (" w ", "\x02 w") are only approached by its word prefix.
  out.exact = std::all_of(cond.begin(), cond.end(), [](const auto& group) {
    return std::none_of(group.begin(), group.end(), [](const std::string& l) { return l.front() == '\x02'; });
  });
  for (const auto& group : cond) {
    auto g = GroupWords(c, group);
    if (!g.ok()) return g.status();
    if (!g->too_many && g->words.empty()) return std::optional<Candidates>();
    if (!g->too_many) groups.push_back(std::move(g).value());
  }
  out.exact = out.exact && groups.size() == cond.size();
  if (groups.empty()) return std::optional<Candidates>(std::move(out));
  std::stable_sort(groups.begin(), groups.end(),
                   [](const WordGroup& a, const WordGroup& b) { return a.songs < b.songs; });
  auto expr_of = [](const WordGroup& g) {
    std::string e = "(";
    for (size_t i = 0; i < g.words.size(); ++i) {
      if (i > 0) e += " OR ";
      e += Phrase(g.words[i]);
    }
    return e + ")";
  };
  auto words_of = [](const WordGroup& g) { return static_cast<double>(g.words.size()); };
  out.expr = expr_of(groups[0]);
  out.songs = std::min(n, groups[0].songs);
  double width = words_of(groups[0]);
  out.cost = width * kWordMicros + groups[0].songs * kPostingMicros;
  for (size_t i = 1; i < groups.size(); ++i) {
    const double keep = std::min(1.0, groups[i].songs / n);
    const double cost = groups[i].songs * kPostingMicros + words_of(groups[i]) * kWordMicros;
    if (out.songs * (1 - keep) * kVerifyMicros <= cost) {
      out.exact = false;
      continue;
    }
    out.expr += " AND " + expr_of(groups[i]);
    out.songs *= keep;
    out.cost += cost;
    width += words_of(groups[i]);
  }
  out.cost += out.songs * (kVerifyMicros + kOrMicros * width);
  return std::optional<Candidates>(std::move(out));
}

Status SqliteStore::Walk(Conn& c, const SearchPlan& plan, const Cond& cond, int64_t after_id,
                         const std::function<bool(int64_t, int)>& visit) {
  // The fuzzy bucket's songs need not be read when the word index gives them exactly: the songs
  // of the earlier buckets are known.
  const bool fuzzy = &cond == &plan.cond[3];
  auto words = WordExpr(c, cond, /*verify=*/!fuzzy);
  if (!words.ok()) return words.status();
  if (!words->has_value()) return Status::Ok();  // no song can match
  if (fuzzy && (*words)->exact) {
    DISPOTIFY_ASSIGN_STMT(st, c, kWalkWordIds);
    st.Bind(1, (*words)->expr).Bind(2, after_id);
    while (true) {
      auto row = st.Step();
      if (!row.ok()) return row.status();
      if (!*row) return Status::Ok();
      const int64_t id = st.Int(0);
      auto it = plan.below_fuzzy.find(id);
      if (!visit(id, it == plan.below_fuzzy.end() ? 3 : it->second)) return Status::Ok();
    }
  }
  if (fuzzy) (*words)->cost += (*words)->songs * 3.7;  // they are read and verified after all
  auto trigrams = CandidateExpr(c, cond);
  if (!trigrams.ok()) return trigrams.status();
  const bool by_words = !(*words)->expr.empty() && (*words)->cost < trigrams->cost;
  const std::string expr = by_words ? (*words)->expr : trigrams->expr;
  DISPOTIFY_ASSIGN_STMT(st, c, by_words ? kWalkWords : kWalk);
  st.Bind(1, expr).Bind(2, after_id);
  Fields fields;
  while (true) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
    for (int i = 0; i < 4; ++i) fields[static_cast<size_t>(i)] = st.View(i + 1);
    if (!Satisfied(cond, fields)) continue;  // a candidate only
    if (!visit(st.Int(0), plan.BucketOf(fields))) return Status::Ok();
  }
}

// Vocabulary words close to `word`, best first: none when `word` is itself a known word (it is
// then taken as meant) or shorter than 4 characters; those at distance 1 when there are any,
// otherwise those at distance 2 (for words of 7+ characters); more frequent words first.
Result<std::vector<std::string>> SqliteStore::FuzzyAlternatives(Conn& c, const std::string& word) {
  const std::u32string w = search::DecodeUtf8(word);
  const int n = static_cast<int>(w.size());
  if (n < 4) return std::vector<std::string>();
  if (IsFuzzyWord(word)) {
    DISPOTIFY_ASSIGN_STMT(has, c, kVocabHas);
    auto row = has.Bind(1, word).Step();
    if (!row.ok()) return row.status();
    if (*row) return std::vector<std::string>();
  }
  const int bound = n >= 7 ? 2 : 1;
  DISPOTIFY_ASSIGN_STMT(st, c, kVocabNear);
  st.Bind(1, static_cast<int64_t>(w.front()))
      .Bind(2, static_cast<int64_t>(n - bound))
      .Bind(3, static_cast<int64_t>(n + bound))
      .Bind(4, static_cast<int64_t>(w.back()));
  std::vector<std::tuple<int, int64_t, std::string>> found;  // (distance, -count, word)
  const bool ascii = std::all_of(word.begin(), word.end(), [](char ch) { return (ch & 0x80) == 0; });
  while (true) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const std::string_view candidate = st.View(0);
    if (!IsFuzzyWord(candidate)) continue;
    int d = 0;
    if (ascii && std::all_of(candidate.begin(), candidate.end(), [](char ch) { return (ch & 0x80) == 0; })) {
      if (st.Int(1) == 1 && candidate.front() == word.front()) continue;  // listed by the first part
      d = search::BoundedEditDistanceBytes(word, candidate, bound);
    } else {
      const std::u32string cps = search::DecodeUtf8(candidate);
      if (st.Int(1) == 1 && cps.front() == w.front()) continue;
      d = search::BoundedEditDistance(w, cps, bound);
    }
    if (d == 0 || d > bound) continue;
    found.emplace_back(d, 0, std::string(candidate));
  }
  for (auto& [d, neg_count, candidate] : found) {
    DISPOTIFY_ASSIGN_STMT(count, c, kVocabCount);
    auto row = count.Bind(1, candidate).Step();
    if (!row.ok()) return row.status();
    if (*row) neg_count = -count.Int(0);
  }
  std::sort(found.begin(), found.end());
  constexpr size_t kMaxAlternatives = 3;
  std::vector<std::string> out;
  for (const auto& [d, neg_count, candidate] : found) {
    if (out.size() == kMaxAlternatives || d > std::get<0>(found.front())) break;
    out.push_back(candidate);
  }
  return out;
}

Status SqliteStore::FetchBucket(Conn& c, int bucket, const SearchPlan& plan, int64_t after_id, size_t want,
                                std::vector<Hit>* out) {
  if (bucket == 0) {
    // Exact whole-field matches through the B-tree indexes of the four folded columns, merged.
    std::vector<int64_t> ids;
    for (const char* sql : kExactByColumn) {
      DISPOTIFY_ASSIGN_STMT(st, c, sql);
      st.Bind(1, plan.exact).Bind(2, after_id).Bind(3, static_cast<int64_t>(want));
      while (true) {
        auto row = st.Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        ids.push_back(st.Int(0));
      }
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (size_t i = 0; i < ids.size() && i < want; ++i) out->push_back(Hit{0, ids[i]});
    return Status::Ok();
  }
  if (plan.cond[bucket].empty()) return Status::Ok();
  size_t found = 0;
  return Walk(c, plan, plan.cond[bucket], after_id, [&](int64_t id, int b) {
    if (b != bucket) return true;  // ranked in an earlier bucket
    out->push_back(Hit{bucket, id});
    return ++found < want;
  });
}

Result<SearchPage> SqliteStore::Search(const SearchRequest& request) {
  if (request.limit < 1 || request.limit > 100) return Status::InvalidArgument("limit must be 1..100");
  if (request.offset > kSearchMaxOffset) {
    return Status::InvalidArgument("offset above 1000: use the cursor for deep pages");
  }
  if (request.query.size() > kSearchMaxQueryBytes) {
    return Status::InvalidArgument("query longer than 256 bytes");
  }
  if (!search::IsValidUtf8(request.query)) return Status::InvalidArgument("query is not valid UTF-8");
  if (request.query.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::InvalidArgument("empty query");
  }
  int cursor_bucket = 0;
  std::string cursor_file_id;
  if (!request.cursor.empty()) {
    if (request.offset != 0) return Status::InvalidArgument("offset and cursor are exclusive");
    if (!DecodeCursor(request.cursor, &cursor_bucket, &cursor_file_id)) {
      return Status::InvalidArgument("malformed cursor");
    }
  }
  const std::vector<std::string> words = FoldWords(request.query);
  if (words.size() > kSearchMaxWords) return Status::InvalidArgument("query has more than 16 words");
  SearchPage page;
  if (words.empty()) return page;  // nothing searchable, e.g. punctuation only

  SearchPlan plan;
  plan.exact = "\x02";
  for (const auto& w : words) {
    plan.exact += " " + w;
    plan.cond[1].push_back(PrefixLiterals(w));
    plan.cond[2].push_back(SubstringLiterals(w));
  }
  plan.exact += " \x03";
  if (plan.cond[2] == plan.cond[1]) plan.cond[2].clear();  // only 1-2 character words

  auto reader = AcquireReader();
  if (!reader.ok()) return reader.status();
  DISPOTIFY_RETURN_IF_ERROR((*reader)->Begin());
  Conn& c = (*reader)->conn();

  // All matches, up to the cap, with their buckets: small result sets are ranked in memory.
  std::vector<Hit> all;
  std::vector<Hit> base;  // with fuzzy matching: all the matches of buckets 0-2 (fewer than limit)
  auto collect = [&all](int64_t id, int bucket) {
    all.push_back(Hit{bucket, id});
    return all.size() < kSearchTotalCap;
  };
  DISPOTIFY_RETURN_IF_ERROR(Walk(c, plan, plan.Widest(), 0, collect));
  if (all.size() < request.limit) {
    Cond fuzzy = plan.Widest();
    bool any = false;
    for (size_t i = 0; i < words.size(); ++i) {
      auto alternatives = FuzzyAlternatives(c, words[i]);
      if (!alternatives.ok()) return alternatives.status();
      any = any || !alternatives->empty();
      fuzzy[i].insert(fuzzy[i].end(), alternatives->begin(), alternatives->end());
    }
    if (any) {
      plan.cond[3] = std::move(fuzzy);
      for (const Hit& h : all) plan.below_fuzzy.emplace(h.id, h.bucket);
      base = std::move(all);
      all.clear();
      DISPOTIFY_RETURN_IF_ERROR(Walk(c, plan, plan.cond[3], 0, collect));
    }
  }
  page.total = all.size();
  auto by_rank = [](const Hit& a, const Hit& b) {
    return std::tie(a.bucket, a.id) < std::tie(b.bucket, b.id);
  };

  int64_t after_id = 0;
  if (!request.cursor.empty()) {
    DISPOTIFY_ASSIGN_STMT(st, c, kCursorId);
    auto row = st.Bind(1, cursor_file_id).Step();
    if (!row.ok()) return row.status();
    if (*row) after_id = st.Int(0);
  }
  const size_t need = static_cast<size_t>(request.offset) + request.limit + 1;
  std::vector<Hit> hits;
  auto take_after_cursor = [&](std::vector<Hit>& ranked) {
    std::sort(ranked.begin(), ranked.end(), by_rank);
    for (const Hit& h : ranked) {
      if (hits.size() == need) break;
      if (std::tie(h.bucket, h.id) > std::tie(cursor_bucket, after_id)) hits.push_back(h);
    }
  };
  if (all.size() < kSearchTotalCap) {
    take_after_cursor(all);
  } else if (plan.cond[3].empty() == false) {
    // Many fuzzy matches: the earlier buckets are known in full, the fuzzy one is walked.
    take_after_cursor(base);
    if (hits.size() < need) {
      DISPOTIFY_RETURN_IF_ERROR(
          FetchBucket(c, 3, plan, cursor_bucket == 3 ? after_id : 0, need - hits.size(), &hits));
    }
  } else {
    // Too many to rank in memory: each bucket in turn, in file_id order, from the cursor.
    for (int b = cursor_bucket; b < 4 && hits.size() < need; ++b) {
      DISPOTIFY_RETURN_IF_ERROR(
          FetchBucket(c, b, plan, b == cursor_bucket ? after_id : 0, need - hits.size(), &hits));
    }
  }
  const size_t end = std::min(hits.size(), static_cast<size_t>(request.offset) + request.limit);
  for (size_t i = request.offset; i < end; ++i) {
    DISPOTIFY_ASSIGN_STMT(st, c, kGetSongById);
    auto row = st.Bind(1, hits[i].id).Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Corruption("search index names a missing song");
    page.items.push_back(ReadSong(st));
  }
  if (hits.size() > end && !page.items.empty()) {
    page.next_cursor = EncodeCursor(hits[end - 1].bucket, page.items.back().file_id);
  }
  return page;
}

// --- Dump / Load ------------------------------------------------------------------------------------

Status SqliteStore::Dump(const std::function<Status(std::string_view)>& sink) {
  auto reader = AcquireReader();
  if (!reader.ok()) return reader.status();
  DISPOTIFY_RETURN_IF_ERROR((*reader)->Begin());
  Conn& c = (*reader)->conn();
  int64_t applied = 0;
  {
    DISPOTIFY_ASSIGN_STMT(st, c, kMetaGet);
    auto row = st.Bind(1, "applied_index").Step();
    if (!row.ok()) return row.status();
    if (*row) applied = st.Int(0);
  }
  DumpWriter writer(sink);
  DISPOTIFY_RETURN_IF_ERROR(writer.Begin(LogIndex(static_cast<uint64_t>(applied))));
  // Every row of `sql`, handed to `add` in order.
  auto each_row = [&c](const char* sql, const auto& add) -> Status {
    DISPOTIFY_ASSIGN_STMT(st, c, sql);
    while (true) {
      auto row = st.Step();
      if (!row.ok()) return row.status();
      if (!*row) return Status::Ok();
      DISPOTIFY_RETURN_IF_ERROR(add(st));
    }
  };
  DISPOTIFY_RETURN_IF_ERROR(each_row(kDumpSongs, [&](Stmt& st) { return writer.Add(ReadSong(st)); }));
  DISPOTIFY_RETURN_IF_ERROR(each_row(kDumpReplicas, [&](Stmt& st) { return writer.Add(ReadReplica(st)); }));
  DISPOTIFY_RETURN_IF_ERROR(each_row(kDumpLocks, [&](Stmt& st) { return writer.Add(ReadLock(st)); }));
  DISPOTIFY_RETURN_IF_ERROR(
      each_row(kDumpSettings, [&](Stmt& st) { return writer.AddSetting(st.Text(0), st.Text(1)); }));
  return writer.Finish();
}

Status SqliteStore::Load(const std::string& path) {
  auto reader = DumpReader::Open(path);
  if (!reader.ok()) return reader.status();
  if ((*reader)->applied_index().value() > static_cast<uint64_t>(INT64_MAX)) {
    return Status::Corruption("dump " + path + ": applied index out of range");
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  DISPOTIFY_RETURN_IF_ERROR(writer_->Exec("BEGIN IMMEDIATE"));
  d_songs_ = d_bytes_ = d_healthy_ = d_other_ = 0;
  Status st = [&]() -> Status {
    // The full-text index is rebuilt once at the end rather than row by row.
    DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kDropFtsAndClear));
    std::unordered_map<std::string, int64_t> vocab;
    while (true) {
      auto next = (*reader)->Next();
      if (!next.ok()) return next.status();
      if (!next->has_value()) break;
      DumpRecord& record = **next;
      Mutation m;
      if (auto* s = std::get_if<Song>(&record)) {
        m.kind = Mutation::Kind::kPutSong;
        m.song = std::move(*s);
      } else if (auto* r = std::get_if<Replica>(&record)) {
        m.kind = Mutation::Kind::kPutReplica;
        m.replica = std::move(*r);
      } else if (auto* l = std::get_if<Lock>(&record)) {
        m.kind = Mutation::Kind::kPutLock;
        m.lock = std::move(*l);
      } else {
        auto& kv = std::get<DumpSetting>(record);
        m.kind = Mutation::Kind::kPutSetting;
        m.key = std::move(kv.key);
        m.value = std::move(kv.value);
      }
      Status valid = ValidateMutation(m);
      if (!valid.ok())
        return Status::Corruption("dump " + path + " holds an invalid record: " + valid.message());
      switch (m.kind) {
        case Mutation::Kind::kPutSong:
          for (const auto& w : Fold(m.song).Vocab()) ++vocab[w];
          DISPOTIFY_RETURN_IF_ERROR(PutSong(m.song, /*maintain_vocab=*/false));
          break;
        case Mutation::Kind::kPutReplica: DISPOTIFY_RETURN_IF_ERROR(PutReplica(m.replica)); break;
        default: DISPOTIFY_RETURN_IF_ERROR(ApplyOne(m)); break;
      }
    }
    for (const auto& [word, n] : vocab) DISPOTIFY_RETURN_IF_ERROR(ChangeVocab({word}, n));
    DISPOTIFY_RETURN_IF_ERROR(sqlite::RebuildAlbums(*writer_));
    DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kCreateTrigramFts));
    DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kCreateWordFts));
    DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kCreateFtsTriggers));
    DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kRebuildFts));
    DISPOTIFY_RETURN_IF_ERROR(writer_->Exec(kRebuildWordFts));
    const std::pair<const char*, int64_t> values[] = {
        {"songs", d_songs_},
        {"bytes", d_bytes_},
        {"replicas_healthy", d_healthy_},
        {"replicas_other", d_other_},
        {"applied_index", static_cast<int64_t>((*reader)->applied_index().value())}};
    for (const auto& [key, value] : values) {
      DISPOTIFY_ASSIGN_STMT(set, *writer_, kMetaSet);
      DISPOTIFY_RETURN_IF_ERROR(set.Bind(1, key).Bind(2, value).Run());
    }
    return Status::Ok();
  }();
  if (st.ok()) st = writer_->Exec("COMMIT");
  if (!st.ok()) {
    (void)writer_->Exec("ROLLBACK");
    return st;
  }
  applied_.store((*reader)->applied_index().value());
  songs_.store(static_cast<uint64_t>(d_songs_));
  {
    std::lock_guard<std::mutex> stats_lock(trigram_mu_);
    trigram_stats_.clear();
  }
  DLOG_INFO << "catalog store " << path_ << " loaded " << path << " at applied index " << applied_.load();
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<MetadataStore>> OpenSqliteStore(const std::string& path,
                                                       const SqliteStoreOptions& options) {
  auto store = std::make_unique<SqliteStore>(path, options);
  DISPOTIFY_RETURN_IF_ERROR(store->Open());
  return std::unique_ptr<MetadataStore>(std::move(store));
}

Result<std::unique_ptr<MetadataStore>> OpenSqliteStore(const std::string& path) {
  return OpenSqliteStore(path, SqliteStoreOptions{});
}

}  // namespace dispotify::catalog
