// The quarantine: freed guarded blocks wait here, oldest first out, before their memory can be
// reused, so that a write after free lands in a block nobody owns (redzone mode: it changes the
// kFreedByte fill, checked when the block leaves) or faults (page mode: the pages are
// inaccessible). Bounded by the bytes the blocks hold (Block::raw_size: a redzone block's glibc
// allocation, a page block's whole span). A FIFO of record indices linked through Block::next,
// under the guard lock.
#include "guard/internal.h"

namespace pg::guard {

namespace {
uint32_t g_head = 0, g_tail = 0;
uint64_t g_bytes = 0;
uint64_t g_limit = 16ull << 20;
}  // namespace

void quarantine_set_limit(uint64_t bytes) {
  g_limit = bytes;
}

void quarantine_push(uint32_t i) {
  Block* b = record(i);
  b->next = 0;
  if (g_tail != 0) {
    record(g_tail)->next = i;
  } else {
    g_head = i;
  }
  g_tail = i;
  g_bytes += b->raw_size;
}

uint32_t quarantine_pop_over() {
  if (g_bytes <= g_limit || g_head == 0) return 0;
  uint32_t i = g_head;
  Block* b = record(i);
  g_head = b->next;
  if (g_head == 0) g_tail = 0;
  b->next = 0;
  g_bytes -= b->raw_size;
  return i;
}

uint64_t quarantine_bytes() {
  return g_bytes;
}

}  // namespace pg::guard
