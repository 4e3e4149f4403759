#pragma once
// The embedded metadata store: one SQLite database file (Debian's libsqlite3, WAL mode, FTS5 with
// the trigram tokenizer). OpenSqliteStore (metadata_store.h) opens it with default options.
//
// Durability. journal_mode=WAL, synchronous=NORMAL: a commit survives the process being killed
// (kill -9) at any point; after a power loss the last few commits may be lost, never torn. That
// is enough because the Raft log is the durable record and the applied index is written in the
// same transaction as the effects of its entry, so the driver replays exactly the missing tail.
//
// Connections. One writer connection, used only under the write mutex (Apply, Load); readers take
// a connection from a small pool (opened on demand, up to `max_idle_readers` kept). Every
// multi-statement read runs in one read transaction, so it sees one committed snapshot; in WAL
// mode readers never block the writer and the writer never blocks readers. Prepared statements
// are cached per connection.
//
// Schema (version 3; `meta` holds schema_version, applied_index and the Stats counters; the
// library columns and the albums table of version 3 are in sqlite_library.h):
//   meta(key PRIMARY KEY, value INTEGER)
//   songs(id INTEGER PRIMARY KEY, file_id TEXT UNIQUE, <Song fields>,
//         ftitle, fartist, falbum, ffile)     -- folded fields (see "Folding"), each indexed
//   songs_fts  fts5(ftitle, fartist, falbum, ffile; content=songs, content_rowid=id,
//              tokenize='trigram case_sensitive 1', detail=none): external content, kept in
//              step by triggers on songs (Load drops it and rebuilds it once); no positions:
//              it only proposes candidates
//   replicas(file_id, node, state, updated_at_ms; PRIMARY KEY(file_id, node)) + index (node, file_id)
//   locks(name PRIMARY KEY, owner, expires_at_ms, token)
//   settings(key PRIMARY KEY, value)
//   songs_words fts5(ftitle, fartist, falbum, ffile; content=songs, content_rowid=id,
//              tokenize='ascii', detail=none): the word index (the ascii tokenizer splits exactly
//              where folding does: folded words hold only a-z, 0-9 and non-ASCII characters);
//              kept by the same triggers
//   vocab(id INTEGER PRIMARY KEY, word UNIQUE, n, len, c0, cl) + indexes (c0, len, word),
//         (cl, len, word): every distinct folded word of all songs with the number of songs
//         holding it, maintained by Apply; typo tolerance uses those of 3+ characters that are
//         not all digits
//   vocab_fts  fts5(word; content=vocab, content_rowid=id, tokenize='trigram case_sensitive 1'):
//              finds the vocabulary words containing a string; kept by triggers on vocab
// u64 values (node ids, tokens, sizes) are stored as their two's-complement int64.
// Versions. Open refuses a database of an unknown version (kFailedPrecondition) and migrates older
// ones in place, in Open's one transaction: version 1 (no word index; vocab keyed by word, 3+
// character words only) to 2 by refilling vocab from the folded fields and building songs_words /
// vocab_fts (about 15 s for 1M songs; songs_fts is kept), then version 2 to 3 (the library
// columns and albums; sqlite_library.h).
//
// Order keys. songs.id (the FTS rowid) is not an insertion counter: it is kept in file_id order
// (a new song takes an id between its neighbours' ids; when there is no room, a window of
// neighbours is renumbered, the way order-maintenance lists do). So the FTS index returns its
// candidates already in file_id order, and a keyset page is read from the cursor onwards
// ("rowid > after") instead of sorting all matches.
//
// Folding. Text is lowercased (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic), Latin
// diacritics are removed through a table (é->e, ö->o, ß->ss, æ->ae, ł->l, combining marks
// dropped), fullwidth ASCII becomes ASCII, apostrophes vanish ("don't" -> "dont"), punctuation
// and spaces separate words, and other scripts are kept as they are. A folded field is stored as
// "\x02 w1 w2 ... wn \x03" (empty field: ""), so that word starts and whole fields are plain
// substrings: " beat" starts a word, "\x02 the the \x03" is a whole field.
//
// Search. The query is folded into words w1..wn; a song falls in the first bucket it meets:
//   0 exact      a whole field equals the query                (B-tree indexes on f*)
//   1 prefix     every wi starts a word of some field          (" wi" is a substring)
//   2 substring  every wi occurs in some field                 ("wi"; words of 1-2 characters
//                keep the prefix meaning, and a 1-character word must be a whole word or
//                start a field, as a trigram needs 3 characters)
//   3 fuzzy      only when buckets 0-2 hold fewer than `limit` songs: as 2, but a word may
//                also be replaced by a close vocabulary word: edit distance 1 (2 for words of
//                7+ characters; a transposition counts 1), distance-1 words preferred, at most
//                3, none when the word is itself in the vocabulary; candidates come from the
//                vocab rows with the same first or last character and a close length.
// Matching is decided by substring tests on the folded fields, never by a tokenizer; the
// indexes only narrow the songs to check. A literal holds no space, so it lies within one word:
// " w" needs a word starting with w, "w" a word containing w. Two ways to narrow, the cheaper by
// a cost model is taken for each condition:
//   words     for each word of the query, the vocabulary words its literals can lie in (a range
//             of vocab for a prefix, vocab_fts for a substring; at most 128, else that word is
//             left to verification); songs_words is asked for an AND, rarest word first, of the
//             ORs of those words. A query word found in no vocabulary word matches nothing, so
//             a misspelled word costs a few index probes. The ORs are exact (except for the
//             literals of 1-character words), so the fuzzy bucket reads only song ids: the
//             songs of buckets 0-2 are known by then.
//   trigrams  an AND of single trigrams of songs_fts (each necessary for its literal) chosen
//             from each trigram's document count (read for all trigrams by a background scan
//             after open, else probed once and cached). Phrase queries are not used: checking
//             positions of common trigrams made them 10-40x slower on 1M songs.
// Common substrings (in hundreds of vocabulary words) go by trigrams, rare words by words.
// Ranking is (bucket, file_id). Up to kSearchTotalCap matches are collected in file_id order
// and ranked in memory; when there are more, each bucket is walked in file_id order from the
// cursor. `total` is exact below kSearchTotalCap and equals it when there are at least that
// many. The cursor is "v1.<bucket>.<file_id of the last item>". No stemming, no stop words.
// Limits (kInvalidArgument): limit 1..100, offset <= 1000 and not with a cursor, query of at most
// 256 bytes of valid UTF-8 and 16 words, not blank. A query with nothing searchable in it (e.g.
// "!!!") gives an empty page.
//
// Cost. Reads are bounded by the cap and the page, but not by a constant: a query whose words
// are common substrings steps through long document lists, or verifies many candidates (see
// bench/search_bench.cc for measured figures).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "node/catalog/metadata_store.h"

namespace dispotify::catalog {

inline constexpr uint64_t kSearchTotalCap = 1000;
inline constexpr uint32_t kSearchMaxOffset = 1000;
inline constexpr size_t kSearchMaxQueryBytes = 256;
inline constexpr size_t kSearchMaxWords = 16;

struct SqliteStoreOptions {
  // Page cache per connection, in KiB. Pages read through mmap (below) bypass it, and every
  // connection has its own: a large one costs memory once per reader (10 readers at 64 MiB held
  // 670 MB after a search load at 100,000 songs).
  int64_t cache_kib = 8 * 1024;
  // Bytes of the database file read through mmap(2) rather than read(2) (0: none). Searches
  // verify candidates by reading their rows at random; mapped pages make that several times
  // cheaper once the file is in the page cache.
  int64_t mmap_bytes = int64_t{1} << 32;
  // On open, read the document count of every trigram from the index on a background thread
  // (a few seconds for 1M songs), so that searches choose their trigrams from the start
  // rather than probe each new one.
  bool warm_search_statistics = true;
  // Idle reader connections kept open for reuse.
  size_t max_idle_readers = 8;
  // How long a statement waits for a lock held by another connection.
  int busy_timeout_ms = 5000;
};

Result<std::unique_ptr<MetadataStore>> OpenSqliteStore(const std::string& path,
                                                       const SqliteStoreOptions& options);

// The text folding and the distance used by search (exposed for tests, and so that another store
// can fold exactly the same way).
namespace search {

// The folded words of `text`, in order (see "Folding" above).
std::vector<std::string> FoldWords(std::string_view text);
// The stored form of a field: "\x02 " + words joined by ' ' + " \x03", or "" without words.
std::string FoldField(std::string_view text);
// Optimal-string-alignment distance between two code point strings (insertions, deletions,
// substitutions and adjacent transpositions cost 1), or bound + 1 when it exceeds `bound`.
int BoundedEditDistance(std::u32string_view a, std::u32string_view b, int bound);
// The same over bytes: for ASCII strings, whose bytes are their code points.
int BoundedEditDistanceBytes(std::string_view a, std::string_view b, int bound);
// The code points of valid UTF-8 `text` (invalid bytes become U+FFFD).
std::u32string DecodeUtf8(std::string_view text);
bool IsValidUtf8(std::string_view text);

}  // namespace search
}  // namespace dispotify::catalog
