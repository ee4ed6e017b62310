// Global initialisation of the core: lazy, idempotent, allocation-free, callable from any thread
// at the first allocation (which may come before any constructor runs).
#pragma once

namespace pg {

// Returns true once the core is initialised. False only when called re-entrantly from inside
// initialisation on the same thread (the caller then serves the request from glibc).
bool ensure_init();

// Random secret for encodings that are not per pool (large-block headers).
unsigned long long global_secret();

}  // namespace pg
