#pragma once
// Invariant checks. DISPOTIFY_CHECK is always on: a broken invariant stops the process loudly,
// because continuing could break Raft safety. DISPOTIFY_DCHECK is for expensive checks that run
// in debug builds only (and in every test of the simulation, which builds the core with them).

#include <cstdio>
#include <cstdlib>

#define DISPOTIFY_CHECK(cond, msg)                                                                \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      std::fprintf(stderr, "%s:%d: invariant failed: %s (%s)\n", __FILE__, __LINE__, #cond, msg); \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)

#ifdef NDEBUG
#define DISPOTIFY_DCHECK(cond, msg) \
  do {                              \
  } while (0)
#else
#define DISPOTIFY_DCHECK(cond, msg) DISPOTIFY_CHECK(cond, msg)
#endif
