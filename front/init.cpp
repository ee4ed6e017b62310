// Initialisation of every component in one order, the route flags, and the fork handlers that
// take and release every lock in the central lock order (front/init.h).
#include "front/init.h"
#include "front/introspect.h"

#include <pthread.h>

#include <atomic>

#include "base/depot.h"
#include "base/lock.h"
#include "base/log.h"
#include "base/meta.h"
#include "base/options.h"
#include "base/os.h"
#include "base/report.h"
#include "base/unwind.h"
#include "guard/guard.h"
#include "large/large.h"
#include "pool/arena.h"
#include "pool/heap.h"
#include "pool/limit.h"
#include "pool/shared.h"
#include "track/profile_table.h"
#include "track/tracker.h"

namespace pg {

std::atomic<uint32_t> g_route_flags{kRouteNotReady};

namespace {

// 0: not started, 1: in progress, 2: done.
std::atomic<int> g_init_state{0};
std::atomic<pthread_t> g_init_thread{0};

// fork(): hold every lock across the fork, so that the child never inherits one held by a thread
// that does not exist there (base/lock.h has the cases of a fork from a signal handler).
//
// glibc's fork() runs the atfork prepare handlers first, then takes its stdio list lock, then its
// own malloc's locks, which it takes last because stdio calls malloc with the list lock or a
// FILE's lock held (getdelim, fflush's buffers). Our handler runs in the first step, so taking our
// locks there would invert that order: a thread in fflush(NULL) holds the list lock and waits
// for a FILE that a thread in getline holds, which waits in malloc for one of our locks, which
// the forking thread holds while it waits for the list lock. So the handler takes the stdio list
// lock itself first (it is recursive: glibc's own acquisition then just counts), exactly when
// glibc will (more than one thread), and lets go of it after our locks in the parent; in the
// child glibc resets it, and so do we, in case glibc judged the process single-threaded.
//
// Lock order: stdio list, tracker shards, profile table, guard registry, heap registry, abandoned
// pools, arenas, metadata, large-block statistics, log, stack depot.
extern "C" {
extern char __libc_single_threaded;
void _IO_list_lock();
void _IO_list_unlock();
void _IO_list_resetlock();
}

// Per fork depth (base/lock.h): whether that level's prepare handler took the stdio list lock.
constexpr int kMaxForkDepth = 8;
__thread bool t_fork_took_io[kMaxForkDepth + 1] __attribute__((tls_model("initial-exec")));

void before_fork() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return;
  int depth = ++t_fork_depth;
  bool io = __libc_single_threaded == 0 && depth <= kMaxForkDepth;
  if (depth <= kMaxForkDepth) t_fork_took_io[depth] = io;
  if (io) _IO_list_lock();
  tracker_lock_for_fork();
  profile_table_lock_for_fork();
  guard_lock_for_fork();
  heaps_lock_for_fork();
  arenas_lock_for_fork();
  meta_lock_for_fork();
  large_lock_for_fork();
  log_lock_for_fork();
  // The stack depot serves the guard, the leak tracker and the profile alike, and takes no lock
  // while it holds its own: it comes last.
  depot_lock_for_fork();
  g_fork_owner.store(pthread_self(), std::memory_order_relaxed);
  // Last: walks in flight hold none of the locks above (base/unwind.h).
  if (depth == 1) unwind_close_for_fork();
}

// After the fork, in the parent and in the child: the handler's depth done, and whether it took
// the stdio list lock.
bool end_fork_depth() {
  int depth = t_fork_depth--;
  if (depth == 1) {
    unwind_open_after_fork();
    g_fork_owner.store(0, std::memory_order_relaxed);
  }
  return depth <= kMaxForkDepth && t_fork_took_io[depth];
}

void after_fork_parent() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return;
  depot_unlock_after_fork();
  log_unlock_after_fork();
  large_unlock_after_fork_parent();
  meta_unlock_after_fork();
  arenas_unlock_after_fork();
  heaps_unlock_after_fork_parent();
  guard_unlock_after_fork(false);
  profile_table_unlock_after_fork();
  tracker_unlock_after_fork();
  if (end_fork_depth()) _IO_list_unlock();
}

void after_fork_child() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return;
  os::SavedErrno keep;
  // First: the child must stop counting into its parent's segment and profile.
  shared_after_fork_child();
  profile_table_after_fork_child();
  depot_unlock_after_fork();
  log_unlock_after_fork();
  large_after_fork_child();
  meta_unlock_after_fork();
  arenas_unlock_after_fork();
  heaps_after_fork_child();
  guard_unlock_after_fork(true);
  profile_table_unlock_after_fork();
  tracker_unlock_after_fork();
  if (end_fork_depth()) _IO_list_resetlock();
}

// Whether this process shares its figures with readers (POOLGUARD_SEGMENT; never when setuid).
bool publishing() {
  return options().SEGMENT == kSegmentOn && !os::secure_mode();
}

// POOLGUARD_GUARD, _GUARD_SAMPLE, _QUARANTINE, _GUARD_FILL. In redzone and page modes no thread
// heap is ever attached, so the malloc fast path always falls to malloc_slow, which hands every
// request to the guard; with sampling the heaps count down to each sampled allocation.
void init_guard() {
  GuardConfig config;
  static_assert(static_cast<uint64_t>(GuardMode::kOff) == kGuardOff &&
                    static_cast<uint64_t>(GuardMode::kRedzone) == kGuardRedzone &&
                    static_cast<uint64_t>(GuardMode::kPage) == kGuardPage,
                "GuardMode follows the values of POOLGUARD_GUARD");
  config.mode = static_cast<GuardMode>(options().GUARD);
  config.sample = options().GUARD_SAMPLE;
  config.quarantine = options().QUARANTINE;
  config.fill = options().GUARD_FILL == kGuardFillOn;
  guard_init(config);
  set_route_flag(kRouteGuard, guard_enabled());
}

// POOLGUARD_PROFILE and POOLGUARD_LEAKS (after the guard: a guarded block is never tracked). Leak
// mode tracks every allocation, so, as in the guard's redzone and page modes, no thread heap is
// ever attached; profile sampling shares the heaps' countdown with the guard's sampling.
void init_tracker() {
  TrackConfig config;
  config.profile_bytes = options().PROFILE;
  config.leaks = options().LEAKS == kLeaksOn;
  config.publish = publishing();
  if (guard_all() && (config.leaks || config.profile_bytes != 0)) {
    report_warning(config.leaks ? "POOLGUARD_LEAKS is off: POOLGUARD_GUARD guards every block"
                                : "POOLGUARD_PROFILE is off: POOLGUARD_GUARD guards every block");
    config = TrackConfig{};
  }
  tracker_init(config);
  set_route_flag(kRouteTrack, tracking());
  bool guard_sampling = guard_enabled() && !guard_all();
  heaps_configure(!guard_all() && !tracking_all(), guard_sampling ? guard_sample_interval : nullptr,
                  track_small_period() != 0 ? track_interval : nullptr);
}

}  // namespace

void set_error_mode(ErrorMode mode) {
  ensure_init();  // so that initialisation (which applies POOLGUARD_ON_ERROR) cannot undo this
  report_set_mode(mode);
}

bool ensure_init() {
  if (PG_LIKELY(g_init_state.load(std::memory_order_acquire) == 2)) return true;
  int expected = 0;
  if (g_init_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    g_init_thread.store(pthread_self(), std::memory_order_relaxed);
    os::secret();
    options_load();
    report_set_mode(options().ON_ERROR == kOnErrorReport ? ErrorMode::kReport : ErrorMode::kAbort);
    // First: every module below keeps its figures in the segment.
    shared_init(publishing());
    report_set_counters(&shared_globals().double_frees, &shared_globals().invalid_frees,
                        &shared_globals().corruptions);
    arena_set_purge_threshold(options().PURGE);
    limit_init();
    large_init();
    arenas_init(options().RESERVE, [] { set_route_flag(kRouteFallbackArenas, true); });
    heaps_init();
    init_guard();
    init_tracker();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    heaps_open();
    g_init_state.store(2, std::memory_order_release);
    if (!limit_enabled()) set_route_flag(kRouteNotReady, false);
    return true;
  }
  // Re-entered from inside initialisation on the initialising thread: let glibc serve it.
  if (g_init_thread.load(std::memory_order_relaxed) == pthread_self()) return false;
  while (g_init_state.load(std::memory_order_acquire) != 2) sched_yield();
  return true;
}

}  // namespace pg
