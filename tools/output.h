// The files the commands write (profile's flame graph, plot's chart, record's recording): opened
// only once there is something to write, never through another user's symbolic link.
#pragma once

#include <string>

namespace pg::tool {

// Opens `path` for writing from the start (created 0644, truncated), following a symbolic link
// only when it is the user's or root's (base/os.h open_without_foreign_link). On failure prints
// "poolguard: cannot write PATH: REASON" and returns -1.
int open_output(const std::string& path);

// Writes `content` to `path`, or to stdout when it is "-" or empty. On failure prints why and
// returns false.
bool write_output(const std::string& path, const std::string& content);

}  // namespace pg::tool
