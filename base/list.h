// Intrusive doubly linked lists, the one implementation behind every list of pools and arenas.
// The node type T holds `T* next; T* prev;`; a node is on at most one list at a time, and both
// links are null while it is on none. Nothing here allocates or locks: the list's owner guards it.
#pragma once

#include <cstdint>

namespace pg {

// A null-terminated list with both ends: push at either end, remove from anywhere, in O(1).
template <class T>
struct List {
  T* head = nullptr;
  T* tail = nullptr;
  uint32_t count = 0;

  bool empty() const { return head == nullptr; }

  void push_back(T* n) {
    n->prev = tail;
    n->next = nullptr;
    if (tail) {
      tail->next = n;
    } else {
      head = n;
    }
    tail = n;
    ++count;
  }

  void push_front(T* n) {
    n->prev = nullptr;
    n->next = head;
    if (head) {
      head->prev = n;
    } else {
      tail = n;
    }
    head = n;
    ++count;
  }

  void remove(T* n) {
    if (n->prev) {
      n->prev->next = n->next;
    } else {
      head = n->next;
    }
    if (n->next) {
      n->next->prev = n->prev;
    } else {
      tail = n->prev;
    }
    n->next = n->prev = nullptr;
    --count;
  }
};

// A circular list walked from `head`, a cursor: the ring turns by moving `head` alone, touching no
// node. insert() places a node last, just before `head`.
template <class T>
struct Ring {
  T* head = nullptr;
  uint32_t count = 0;

  bool empty() const { return head == nullptr; }

  void insert(T* n) {
    if (head == nullptr) {
      n->next = n->prev = n;
      head = n;
    } else {
      T* last = head->prev;
      n->next = head;
      n->prev = last;
      last->next = n;
      head->prev = n;
    }
    ++count;
  }

  void remove(T* n) {
    if (n->next == n) {
      head = nullptr;
    } else {
      n->prev->next = n->next;
      n->next->prev = n->prev;
      if (head == n) head = n->next;
    }
    n->next = n->prev = nullptr;
    --count;
  }
};

}  // namespace pg
