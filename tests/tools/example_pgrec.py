#!/usr/bin/python3
"""Writes a recording in the format of docs/TIMELINE.md (version 1) for `poolguard plot`'s tests,
without the recorder: a program (pid 4242) ramping its small, medium and large bytes up to a peak
under a 96 MiB limit and back down, a child (pid 4251) alive for a second, guard, limit_refused and
error events, and the peak lines with three profile stacks for the program.

    example_pgrec.py [--ticks N] [--spike] > FILE

tests/tools/example.pgrec is its output with the default 61 ticks (0.1 s apart); the huge-recording
test asks for 100000 with --spike: 12 MiB more for one sample, halfway, the highest of all, which
downsampling must keep. Every figure follows the format's rules: in_use = size * live_blocks per
class, held = pools * pool_size, live_bytes = small + medium + large, counters only grow and each
event's count is the growth since the previous sample.
"""
import json
import math
import sys

POOL = 65536
ARENA = 4 << 20
SMALL = [16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256]
MEDIUM = [320, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768]
MIB = 1 << 20
T0_MS = 1796580000000  # 2026-12-06T18:00:00.000Z
LIMIT = 96 * MIB


def line(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")


def smooth(x):
    """0 before 0, 1 after 1, an S-curve between."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


class Proc:
    def __init__(self, pid, ppid, comm):
        self.pid, self.ppid, self.comm = pid, ppid, comm
        self.allocs = self.frees = self.guard = self.refused = self.errors = 0
        self.arenas_mapped = 0
        self.rss_floor = 0
        self.peak = None

    def sample(self, t, wall, small, medium, large, large_blocks, counters):
        """A sample line from target byte counts, spread over a few classes."""
        classes = []
        totals = {"small": [0, 0], "medium": [0, 0]}
        for tier, target, sizes in (("small", small, (32, 64, 128)),
                                    ("medium", medium, (1024, 4096, 16384))):
            for i, size in enumerate(sizes):
                share = (0.5, 0.3, 0.2)[i]
                blocks = int(target * share) // size
                if blocks == 0:
                    continue
                in_use = blocks * size
                pools = math.ceil(in_use * 1.18 / POOL)
                classes.append([size, blocks, in_use, pools * POOL])
                totals[tier][0] += in_use
                totals[tier][1] += pools * POOL
        classes.sort()
        pools = sum(c[3] for c in classes) // POOL
        arenas = math.ceil(pools * POOL / ARENA)
        self.arenas_mapped = max(self.arenas_mapped, arenas)
        held = totals["small"][1] + totals["medium"][1]
        # Resident: the pools and large blocks, the program's own 3 MiB, and freed pools that
        # stay resident a while (purged a few ticks later).
        self.rss_floor = max(held, int(self.rss_floor * 0.8))
        rss = self.rss_floor + large + 3 * MIB + 4096 * 37
        live = totals["small"][0] + totals["medium"][0] + large
        allocs, frees, guard, refused, errors = counters
        s = {
            "type": "sample", "t": round(t, 3), "time_unix_ms": wall, "pid": self.pid,
            "small_in_use": totals["small"][0], "small_held": totals["small"][1],
            "medium_in_use": totals["medium"][0], "medium_held": totals["medium"][1],
            "large_bytes": large, "large_blocks": large_blocks, "live_bytes": live,
            "pools_in_use": pools, "arenas_in_use": arenas, "arenas_mapped": self.arenas_mapped,
            "arena_bytes": self.arenas_mapped * ARENA, "rss_bytes": rss,
            "limit_bytes": LIMIT, "limit_in_use": pools * POOL + large,
            "allocs": allocs, "frees": frees, "guard_events": guard, "limit_refused": refused,
            "errors": errors, "classes": classes,
        }
        if self.peak is None or live > self.peak[2]:
            self.peak = (round(t, 3), wall, live)
        return s


def frame(pc, function, module, offset, file_line):
    return {"pc": pc, "function": function, "module": module, "offset": offset,
            "file_line": file_line}


def main():
    ticks, spike, args = 61, False, sys.argv[1:]
    while args:
        if args[0] == "--ticks" and len(args) >= 2:
            ticks = int(args[1])
            args = args[2:]
        elif args[0] == "--spike":
            spike = True
            args = args[1:]
        else:
            sys.exit("usage: example_pgrec.py [--ticks N] [--spike]")
    interval = 0.1
    span = (ticks - 1) * interval  # 6 s by default: the shape is stretched over the ticks
    prog = Proc(4242, 4200, "imgconv")
    child = Proc(4251, 4242, "imgconv-thumb")
    line({"type": "header", "format": "poolguard-record", "version": 1, "poolguard": "0.1.0",
          "time": "2026-12-06T18:00:00.000Z", "time_unix_ms": T0_MS, "interval_s": interval,
          "command": ["./imgconv", "--threads", "4", "photos/"], "pid": 4242,
          "profile_bytes": 524288})
    line({"type": "process", "t": 0.0, "time_unix_ms": T0_MS, "pid": 4242, "ppid": 4200,
          "comm": "imgconv", "small_max": 256, "pool_max": 32768, "pool_size": POOL,
          "arena_size": ARENA, "classes": SMALL + MEDIUM})
    line({"type": "event", "t": 0.0, "time_unix_ms": T0_MS, "pid": 4242, "kind": "start",
          "count": 1})
    samples = 0
    state = {prog.pid: [0, 0, 0, 0, 0], child.pid: [0, 0, 0, 0, 0]}
    # Incidents, at fractions of the span: (fraction, pid, kind, count).
    incidents = [(0.37, 4242, "guard", 1), (0.55, 4242, "limit_refused", 3),
                 (0.567, 4242, "limit_refused", 2), (0.78, 4242, "error", 1),
                 (0.40, 4251, "guard", 2)]
    child_from, child_to = round(0.25 * (ticks - 1)), round(0.43 * (ticks - 1))
    for i in range(ticks):
        t = round(i * interval, 3)
        wall = T0_MS + round(t * 1000)
        x = i / max(ticks - 1, 1)  # 0 .. 1 over the recording
        # The program: small objects first, then medium, large images up to x = 0.567, most of
        # them freed by 0.67 and the rest by 0.92.
        small = int(6.5 * MIB * smooth(x / 0.33) + 0.4 * MIB * math.sin(40 * x))
        medium = int(12 * MIB * smooth((x - 0.1) / 0.4) - 5 * MIB * smooth((x - 0.6) / 0.3))
        large = int(62 * MIB * smooth((x - 0.08) / 0.49) - 40 * MIB * smooth((x - 0.567) / 0.1)
                    - 17 * MIB * smooth((x - 0.75) / 0.17))
        large = max(large, 0) // 4096 * 4096
        if spike and i == (ticks - 1) // 2:
            large += 12 * MIB  # a burst one sample long: the highest of the recording
        c = state[prog.pid]
        c[0] += 900 + i * 37
        c[1] += 850 + i * 35
        events = []
        for frac, pid, kind, count in incidents:
            if pid == prog.pid and round(frac * (ticks - 1)) == i:
                events.append((kind, count))
        for kind, count in events:
            c[{"guard": 2, "limit_refused": 3, "error": 4}[kind]] += count
        line(prog.sample(t, wall, max(small, 0), max(medium, 0), large, -(-large // (2 * MIB)),
                         c))
        samples += 1
        for kind, count in events:
            line({"type": "event", "t": t, "time_unix_ms": wall, "pid": prog.pid, "kind": kind,
                  "count": count})
        # The child: a thumbnailer that holds a few MiB for a while.
        if i == child_from:
            line({"type": "process", "t": t, "time_unix_ms": wall, "pid": 4251, "ppid": 4242,
                  "comm": "imgconv-thumb", "small_max": 256, "pool_max": 32768,
                  "pool_size": POOL, "arena_size": ARENA, "classes": SMALL + MEDIUM})
            line({"type": "event", "t": t, "time_unix_ms": wall, "pid": 4251, "kind": "start",
                  "count": 1})
        if child_from <= i < child_to:
            y = (i - child_from) / max(child_to - child_from, 1)
            cc = state[child.pid]
            cc[0] += 300
            cc[1] += 280
            grew = 0
            for frac, pid, kind, count in incidents:
                if pid == child.pid and round(frac * (ticks - 1)) == i:
                    cc[2] += count
                    grew = count
            line(child.sample(t, wall, int(1.5 * MIB * smooth(y * 3)), int(2 * MIB * smooth(y * 2)),
                              *((8 * MIB, 1) if 0.3 < y < 0.8 else (0, 0)), cc))
            samples += 1
            if grew:
                line({"type": "event", "t": t, "time_unix_ms": wall, "pid": child.pid,
                      "kind": "guard", "count": grew})
        if i == child_to:
            line({"type": "event", "t": t, "time_unix_ms": wall, "pid": 4251, "kind": "exit",
                  "count": 1})
    t_end = round(ticks * interval, 3)
    wall_end = T0_MS + round(t_end * 1000)
    line({"type": "event", "t": t_end, "time_unix_ms": wall_end, "pid": 4242, "kind": "exit",
          "count": 1})

    # The peaks, with the heap profile copied at each one's sample.
    pt, pwall, plive = prog.peak
    exe, libc, libpng = "/opt/imgconv/bin/imgconv", "/usr/lib/x86_64-linux-gnu/libc.so.6", \
        "/usr/lib/x86_64-linux-gnu/libpng16.so.16"
    stacks = [
        {"bytes": 35651584, "blocks": 17, "samples": 68, "frames": [
            frame("0x55d4f3a0b1c9", "img::Buffer<unsigned char>::Buffer(unsigned long, "
                  "std::allocator<unsigned char> const&)", exe, "0x31c9", "buffer.h:88"),
            frame("0x55d4f3a0c210", "img::decode_png(std::basic_string_view<char, "
                  "std::char_traits<char> >, img::Options const&)", exe, "0x4210",
                  "decode.cpp:141"),
            frame("0x55d4f3a0d5e2", "convert_one(Job&)", exe, "0x55e2", "main.cpp:77"),
            frame("0x55d4f3a0d8aa", "worker_main(void*)", exe, "0x58aa", "main.cpp:120"),
            frame("0x7f0e1c294ac3", "start_thread", libc, "0x94ac3", ""),
        ]},
        {"bytes": 12582912, "blocks": 2210, "samples": 24, "frames": [
            frame("0x7f0e1d0a1b2c", "", libpng, "0x1eb2c", ""),
            frame("0x7f0e1d0a3f00", "png_read_row", libpng, "0x20f00", ""),
            frame("0x55d4f3a0c388", "img::decode_png(std::basic_string_view<char, "
                  "std::char_traits<char> >, img::Options const&)", exe, "0x4388",
                  "decode.cpp:160"),
            frame("0x55d4f3a0d5e2", "convert_one(Job&)", exe, "0x55e2", "main.cpp:77"),
        ]},
        {"bytes": 3145728, "blocks": 41377, "samples": 6, "frames": [
            frame("0x55d4f3a09e10", "std::vector<std::pair<std::string, Tag*>, "
                  "std::allocator<std::pair<std::string, Tag*> > >::_M_realloc_insert<"
                  "std::pair<std::string, Tag*> >(__gnu_cxx::__normal_iterator<...>, "
                  "std::pair<std::string, Tag*>&&)", exe, "0x1e10", "stl_vector.h:1287"),
            frame("0x55d4f3a0a004", "Exif::parse<Tags & \"Flags\">(char const*, unsigned long)",
                  exe, "0x2004", "exif.cpp:52"),
            frame("0x55d4f3a0d5a0", "convert_one(Job&)", exe, "0x55a0", "main.cpp:71"),
        ]},
    ]
    profile_bytes = sum(s["bytes"] for s in stacks) + 1048576
    line({"type": "peak", "t": pt, "time_unix_ms": pwall, "pid": 4242, "live_bytes": plive,
          "profile": {"sample_bytes": 524288, "bytes": profile_bytes, "blocks": 43611,
                      "live_samples": profile_bytes // 524288, "stacks_total": 4},
          "stacks": stacks})
    ct, cwall, clive = child.peak
    line({"type": "peak", "t": ct, "time_unix_ms": cwall, "pid": 4251, "live_bytes": clive,
          "profile": {"sample_bytes": 524288, "bytes": 8388608, "blocks": 1,
                      "live_samples": 16, "stacks_total": 1},
          "stacks": [{"bytes": 8388608, "blocks": 1, "samples": 16, "frames": [
              frame("0x55d4f3a0e100", "thumb::scale(img::View const&, int)", exe, "0x6100",
                    "thumb.cpp:33")]}]})
    line({"type": "end", "t": t_end, "time_unix_ms": wall_end, "samples": samples,
          "exit_status": 0})


if __name__ == "__main__":
    main()
