// base/list.h: the intrusive List and Ring keep their links, ends and counts right through every
// kind of insertion and removal, checked against a plain model after each step.
#include "base/list.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <vector>

namespace {

struct Node {
  Node* next = nullptr;
  Node* prev = nullptr;
  int id = 0;
};

// Walks the list both ways and compares with the model.
void expect_list(const pg::List<Node>& l, const std::deque<Node*>& model) {
  ASSERT_EQ(l.count, model.size());
  ASSERT_EQ(l.empty(), model.empty());
  std::vector<Node*> forward;
  for (Node* n = l.head; n != nullptr; n = n->next) forward.push_back(n);
  ASSERT_EQ(forward, std::vector<Node*>(model.begin(), model.end()));
  std::vector<Node*> backward;
  for (Node* n = l.tail; n != nullptr; n = n->prev) backward.push_back(n);
  ASSERT_EQ(backward, std::vector<Node*>(model.rbegin(), model.rend()));
}

TEST(List, RandomOperationsMatchAModel) {
  std::vector<Node> nodes(64);
  for (size_t i = 0; i < nodes.size(); ++i) nodes[i].id = static_cast<int>(i);
  pg::List<Node> list;
  std::deque<Node*> model;
  std::mt19937 rng(7);
  for (int step = 0; step < 5000; ++step) {
    Node* n = &nodes[rng() % nodes.size()];
    auto at = std::find(model.begin(), model.end(), n);
    if (at != model.end()) {
      list.remove(n);
      model.erase(at);
      EXPECT_EQ(n->next, nullptr);
      EXPECT_EQ(n->prev, nullptr);
    } else if (rng() & 1) {
      list.push_back(n);
      model.push_back(n);
    } else {
      list.push_front(n);
      model.push_front(n);
    }
    expect_list(list, model);
  }
}

TEST(Ring, InsertGoesLastAndRemoveMovesTheHeadOn) {
  Node a, b, c;
  pg::Ring<Node> ring;
  EXPECT_TRUE(ring.empty());
  ring.insert(&a);
  EXPECT_EQ(ring.head, &a);
  EXPECT_EQ(a.next, &a);
  EXPECT_EQ(a.prev, &a);
  ring.insert(&b);
  ring.insert(&c);  // order from the head: a b c
  EXPECT_EQ(ring.count, 3u);
  EXPECT_EQ(a.next, &b);
  EXPECT_EQ(b.next, &c);
  EXPECT_EQ(c.next, &a);
  EXPECT_EQ(a.prev, &c);
  ring.head = &b;  // the ring turns: b c a
  Node d;
  ring.insert(&d);  // last, just before the head: b c a d
  EXPECT_EQ(a.next, &d);
  EXPECT_EQ(d.next, &b);
  EXPECT_EQ(b.prev, &d);
  ring.remove(&b);  // removing the head moves it on
  EXPECT_EQ(ring.head, &c);
  EXPECT_EQ(b.next, nullptr);
  EXPECT_EQ(d.next, &c);
  EXPECT_EQ(c.prev, &d);
  ring.remove(&c);
  ring.remove(&a);
  EXPECT_EQ(ring.head, &d);
  EXPECT_EQ(d.next, &d);
  ring.remove(&d);
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.count, 0u);
}

}  // namespace
