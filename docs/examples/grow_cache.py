"""The program behind docs/timeline-example.png: a cache of strings and byte buffers grows until
the limit refuses an allocation (MemoryError), then most of it is dropped. See docs/TIMELINE.md."""
import time

cache, buffers = [], []
try:
    for i in range(400):
        cache.append([str(j) * 4 for j in range(15000)])
        buffers.append(bytearray(200000 + 1000 * i))
        time.sleep(0.03)
except MemoryError:
    pass
del cache[: len(cache) * 3 // 4]
del buffers[: len(buffers) // 2]
time.sleep(0.8)
