// The state the locks of base/lock.h share: who runs the fork handlers, and how deep.
#include "base/lock.h"

namespace pg {

std::atomic<pthread_t> g_fork_owner{0};
__thread int t_fork_depth __attribute__((tls_model("initial-exec"))) = 0;

}  // namespace pg
