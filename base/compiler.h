// Compiler hints shared by every layer: branch expectations and forced inlining. Nothing here
// changes what the code does, only how the compiler lays it out.
#pragma once

#define PG_LIKELY(x) __builtin_expect(!!(x), 1)
#define PG_UNLIKELY(x) __builtin_expect(!!(x), 0)
// For the fast paths, which must stay inside the exported malloc and free (no extra jump).
#define PG_ALWAYS_INLINE inline __attribute__((always_inline))
