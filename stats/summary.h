// The exit summary (POOLGUARD_STATS=exit): one line that is a JSON object, then a table per size
// class, written on stderr with write(2) and no allocation.
#pragma once

namespace pg {

void write_summary(int fd);

}  // namespace pg
