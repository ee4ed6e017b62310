// The writer side of the profile segment (stats/profile_segment.h): the live heap profile of a
// process that samples (POOLGUARD_PROFILE) or tracks everything (POOLGUARD_LEAKS), published by the
// stats publisher thread (stats/publish.cpp) next to the stats segment and at the same moments.
#pragma once

#include <cstdint>

namespace pg {

// Creates /dev/shm/poolguard.<pid>.profile (0600, O_EXCL, replacing a leftover of this user) when
// the tracker is on. Publisher thread only. False when there is nothing to publish or it failed.
bool profile_segment_create(int pid);
// Rewrites the profile under its seqlock. Publisher thread only; nothing when not created.
void profile_segment_publish();
// Writes "/dev/shm/poolguard.<pid>.profile" into path (size >= 64).
void profile_segment_path(int pid, char* path, unsigned size);

}  // namespace pg
