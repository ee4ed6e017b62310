// The program's calls that close or replace descriptors (close, close_range, closefrom, dup2,
// dup3), watched so that libunwind's pipe is known gone before its numbers can name one of the
// program's files (base/unwind.h). Each tells the unwinder, then makes the call glibc would.
#pragma once

namespace pg {

int close_impl(int fd);
int close_range_impl(unsigned lo, unsigned hi, int flags);
void closefrom_impl(int lo);
int dup2_impl(int from, int to);
int dup3_impl(int from, int to, int flags);

}  // namespace pg
