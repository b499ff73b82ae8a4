// tsray shared-memory arena: one memfd per node, mapped by every process on
// the node, with a first-fit allocator whose state lives inside the mapping so
// that any process can allocate and free synchronously under a robust,
// process-shared mutex.
//
// Layout of the mapping:
//   [arena_hdr_t | padding to 4 KiB][block][block]...[block]
// Every block starts with a 64-byte header; payloads are 64-byte aligned.
// Blocks carry boundary tags (size, prev_size) so that a freed block merges
// with free neighbours in O(1); free blocks form an address-ordered list so
// that allocation reuses the lowest (already faulted) addresses first.

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <atomic>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#define ARENA_MAGIC 0x7473726179617231ULL /* "tsrayar1" */
#define ARENA_VERSION 2
#define BLOCK_MAGIC 0xb10cb10cU
#define HDR_RESERVED 4096
#define ALIGN 64
#define MIN_SPLIT 256

enum { ST_FREE = 0, ST_ALLOC = 1, ST_SEALED = 2 };

typedef struct {
  uint64_t size;      /* whole block, header included, multiple of ALIGN */
  uint64_t prev_size; /* size of the block just before, 0 for the first */
  uint32_t state;
  uint32_t creator;   /* process slot that allocated it */
  uint32_t owner;     /* process slot that owns it once sealed */
  uint32_t magic;
  uint64_t next_free; /* offsets from the base; 0 = none */
  uint64_t prev_free;
  uint64_t tag;
  uint64_t reserved;
} block_t;

static_assert(sizeof(block_t) == ALIGN, "block header must be 64 bytes");

typedef struct {
  uint64_t magic;
  uint32_t version;
  uint32_t reserved0;
  uint64_t size;
  uint64_t heap_start;
  uint64_t heap_end;
  uint64_t free_head;
  uint64_t used;     /* bytes in allocated and sealed blocks, headers included */
  uint64_t nalloc;   /* number of allocated and sealed blocks */
  uint64_t total_allocs;
  uint64_t hwm;      /* end of the highest block ever allocated: pages below were touched */
  uint64_t prefaulted; /* pages below were faulted in ahead of use (prefault); grows only, atomically */
  pthread_mutex_t mu;
} arena_hdr_t;

/* A process's mapping of an arena. Two reference counts: `maprefs` keeps the
   mapping (1 while the handle is open + 1 per live view of it), `refs` keeps
   this struct (1 for the mapping + 1 for the JS handle object), so that a
   closed handle can still be asked whether it is closed. */
typedef struct {
  uint8_t *base;
  uint64_t size;
  int fd;
  std::atomic<int> maprefs;
  std::atomic<int> refs;
  std::atomic<int> closed;
  /* the background prefault of this mapping (see prefault_run) */
  std::atomic<int> prefault_state; /* PF_* */
  std::atomic<uint64_t> prefault_done; /* bytes of this mapping faulted in so far */
  std::atomic<int> prefault_errno;
} arena_t;

enum { PF_IDLE = 0, PF_RUNNING = 1, PF_DONE = 2, PF_FAILED = 3, PF_STOPPED = 4 };

/* ------------------------------------------------------------------------ */
/* allocator (callers hold the mutex)                                         */

static inline block_t *blk(arena_t *a, uint64_t off) { return (block_t *)(a->base + off); }
static inline arena_hdr_t *hdr(arena_t *a) { return (arena_hdr_t *)a->base; }


static void list_remove(arena_t *a, uint64_t off) {
  block_t *b = blk(a, off);
  if (b->prev_free) blk(a, b->prev_free)->next_free = b->next_free;
  else hdr(a)->free_head = b->next_free;
  if (b->next_free) blk(a, b->next_free)->prev_free = b->prev_free;
  b->next_free = b->prev_free = 0;
}

/* insert keeping address order */
static void list_insert(arena_t *a, uint64_t off) {
  arena_hdr_t *h = hdr(a);
  block_t *b = blk(a, off);
  uint64_t prev = 0, cur = h->free_head;
  while (cur && cur < off) { prev = cur; cur = blk(a, cur)->next_free; }
  b->prev_free = prev;
  b->next_free = cur;
  if (prev) blk(a, prev)->next_free = off; else h->free_head = off;
  if (cur) blk(a, cur)->prev_free = off;
}

static inline uint64_t next_of(arena_t *a, uint64_t off) {
  uint64_t n = off + blk(a, off)->size;
  return n < hdr(a)->heap_end ? n : 0;
}

/* The payload at `payload` as a live (allocated or sealed) block, or NULL. */
static block_t *payload_block(arena_t *a, uint64_t payload) {
  arena_hdr_t *h = hdr(a);
  if (payload < h->heap_start + sizeof(block_t) || payload >= h->heap_end || payload % ALIGN) return NULL;
  block_t *b = blk(a, payload - sizeof(block_t));
  if (b->magic != BLOCK_MAGIC || b->state == ST_FREE) return NULL;
  return b;
}

/* A process died holding the lock, possibly in the middle of an allocation
   or a free. Block sizes are the source of truth: every operation writes a
   block's new size last (after the headers it creates), so walking the heap
   by size from heap_start still finds every block. Rebuild everything else
   from that walk: prev_size tags, the address-ordered free list (merging
   free neighbours), and the counters. Returns 0, or -1 when the walk finds a
   damaged header (the arena cannot be repaired). */
static int arena_recover_locked(arena_t *a) {
  arena_hdr_t *h = hdr(a);
  uint64_t off = h->heap_start, prev_size = 0, used = 0, nalloc = 0, hwm = h->hwm;
  uint64_t last_free = 0; /* the free block just before `off`, if the previous block is free */
  uint64_t tail = 0;      /* last block of the free list */
  h->free_head = 0;
  while (off < h->heap_end) {
    block_t *b = blk(a, off);
    if (b->magic != BLOCK_MAGIC || b->size < sizeof(block_t) || b->size % ALIGN || b->size > h->heap_end - off) return -1;
    if (b->state == ST_FREE) {
      if (last_free) {
        block_t *p = blk(a, last_free);
        p->size += b->size;
        b->magic = 0;
        prev_size = p->size;
        off = last_free + p->size;
        continue;
      }
      b->prev_size = prev_size;
      b->tag = 0;
      b->next_free = 0;
      b->prev_free = tail;
      if (tail) blk(a, tail)->next_free = off; else h->free_head = off;
      tail = off;
      last_free = off;
    } else if (b->state == ST_ALLOC || b->state == ST_SEALED) {
      b->prev_size = prev_size;
      b->next_free = b->prev_free = 0;
      used += b->size;
      nalloc++;
      if (off + b->size > hwm) hwm = off + b->size;
      last_free = 0;
    } else {
      return -1;
    }
    prev_size = b->size;
    off += b->size;
  }
  if (off != h->heap_end) return -1;
  h->used = used;
  h->nalloc = nalloc;
  h->hwm = hwm;
  return 0;
}

/* Takes the arena's lock: 0, or an errno value (ENOTRECOVERABLE when a
   process died holding it and the allocator state could not be rebuilt).
   Callers must check the result and must not touch the arena on failure. */
static int lock(arena_t *a) {
  int rc = pthread_mutex_lock(&hdr(a)->mu);
  if (rc == EOWNERDEAD) {
    if (arena_recover_locked(a) != 0) {
      /* unlocking without marking it consistent makes the mutex unusable for
         every process: better than handing out memory from a broken heap */
      pthread_mutex_unlock(&hdr(a)->mu);
      return ENOTRECOVERABLE;
    }
    pthread_mutex_consistent(&hdr(a)->mu);
    rc = 0;
  }
  return rc;
}
static void unlock(arena_t *a) { pthread_mutex_unlock(&hdr(a)->mu); }

#define ALLOC_NO_GROW 1
/* returns the payload offset, -1 when nothing fits, -2 (with ALLOC_NO_GROW)
   when the first fit would reach past the high-water mark */
static int64_t arena_alloc_locked(arena_t *a, uint64_t want, uint32_t slot, int flags) {
  arena_hdr_t *h = hdr(a);
  /* bounding `want` by the heap first keeps the rounding below from overflowing */
  if (want > h->heap_end - h->heap_start) return -1;
  uint64_t need = ((want + sizeof(block_t) + ALIGN - 1) / ALIGN) * ALIGN;
  if (want == 0) need = sizeof(block_t) + ALIGN;
  for (uint64_t cur = h->free_head; cur; cur = blk(a, cur)->next_free) {
    block_t *b = blk(a, cur);
    if (b->size < need) continue;
    if ((flags & ALLOC_NO_GROW) && cur + need > h->hwm && cur + need > __atomic_load_n(&h->prefaulted, __ATOMIC_RELAXED)) return -2;
    uint64_t rest = b->size - need;
    if (rest >= MIN_SPLIT) {
      /* split: the tail becomes a free block taking this block's list slot */
      uint64_t toff = cur + need;
      block_t *t = blk(a, toff);
      memset(t, 0, sizeof(*t));
      t->size = rest;
      t->prev_size = need;
      t->state = ST_FREE;
      t->magic = BLOCK_MAGIC;
      t->prev_free = b->prev_free;
      t->next_free = b->next_free;
      if (t->prev_free) blk(a, t->prev_free)->next_free = toff; else h->free_head = toff;
      if (t->next_free) blk(a, t->next_free)->prev_free = toff;
      uint64_t after = next_of(a, toff);
      if (after) blk(a, after)->prev_size = rest;
      b->size = need;
      b->next_free = b->prev_free = 0;
    } else {
      list_remove(a, cur);
    }
    b->state = ST_ALLOC;
    b->creator = slot;
    b->owner = slot;
    b->tag = 0;
    h->used += b->size;
    h->nalloc += 1;
    h->total_allocs += 1;
    if (cur + b->size > h->hwm) h->hwm = cur + b->size;
    return (int64_t)(cur + sizeof(block_t));
  }
  return -1;
}

/* returns 0 on success, -1 if off is not the payload of a live block */
static int arena_free_locked(arena_t *a, uint64_t payload) {
  arena_hdr_t *h = hdr(a);
  block_t *b = payload_block(a, payload);
  if (!b) return -1;
  uint64_t off = payload - sizeof(block_t);
  h->used -= b->size;
  h->nalloc -= 1;
  b->state = ST_FREE;
  b->tag = 0;
  /* merge with the next block */
  uint64_t nx = next_of(a, off);
  if (nx && blk(a, nx)->state == ST_FREE) {
    list_remove(a, nx);
    b->size += blk(a, nx)->size;
    blk(a, nx)->magic = 0;
  }
  /* merge with the previous block (already in the list) */
  if (b->prev_size) {
    uint64_t pv = off - b->prev_size;
    block_t *p = blk(a, pv);
    if (p->state == ST_FREE) {
      p->size += b->size;
      b->magic = 0;
      uint64_t after = next_of(a, pv);
      if (after) blk(a, after)->prev_size = p->size;
      return 0;
    }
  }
  uint64_t after = next_of(a, off);
  if (after) blk(a, after)->prev_size = b->size;
  list_insert(a, off);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* handle lifetime                                                            */

/* drops a reference to the struct; the last one frees it */
static void arena_unref(arena_t *a) {
  if (a->refs.fetch_sub(1) == 1) delete a;
}

/* drops a reference to the mapping; the last one unmaps it (and then drops
   the mapping's reference to the struct) */
static void arena_unref_map(arena_t *a) {
  if (a->maprefs.fetch_sub(1) == 1) {
    munmap(a->base, a->size);
    if (a->fd >= 0) close(a->fd);
    a->base = NULL;
    a->fd = -1;
    arena_unref(a);
  }
}


/* ------------------------------------------------------------------------ */
/* background prefault                                                        */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PREFAULT_CHUNK (1ULL << 20)

/* Faults in [0, len) of the mapping, chunk by chunk, at the thread's normal
   CPU priority: MADV_POPULATE_WRITE holds the process's mmap lock for a
   chunk, and a thread at a low priority (nice 19) starved on a busy machine
   while holding it would stall every thread of the process that maps or
   unmaps memory (the event loop included) for seconds: a priority
   inversion that made the head think a node had died. Small chunks (1 MiB,
   a fraction of a millisecond) keep each hold short. MADV_POPULATE_WRITE allocates the pages of the memfd (zeroed) and maps them
   writable in this process without changing any byte, so it is safe while
   other processes use the arena. After each chunk the thread sleeps for
   `(100 - duty) / duty` times as long as the chunk took, so that it uses at
   most `duty` percent of one CPU even when the machine is otherwise idle.
   It stops early when the handle is closed. The caller has taken a mapping
   reference for it (maprefs), which it drops at the end.
   With `map` 0 it allocates the memfd's pages (fallocate, zeroed) without
   mapping them in this process: a node manager does this for the node, so
   that the pages are there for the processes that write objects but do not
   count in its own RSS (nor cost it page-table entries); each process that
   writes then maps them cheaply (no allocation, no zeroing). */
static void prefault_run(arena_t *a, uint64_t len, int duty, int map) {
  arena_hdr_t *h = hdr(a);
  int state = PF_DONE;
  for (uint64_t off = 0; off < len; off += PREFAULT_CHUNK) {
    if (a->closed.load()) {
      state = PF_STOPPED;
      break;
    }
    uint64_t n = len - off < PREFAULT_CHUNK ? len - off : PREFAULT_CHUNK;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = map ? madvise(a->base + off, n, MADV_POPULATE_WRITE) : fallocate(a->fd, 0, (off_t)off, (off_t)n);
    if (rc != 0) {
      /* EINVAL: the kernel predates MADV_POPULATE_WRITE (Linux 5.14);
         ENOMEM/EFAULT/ENOSPC: the memory is not there (limits, memory pressure) */
      a->prefault_errno.store(errno);
      state = PF_FAILED;
      break;
    }
    a->prefault_done.store(off + n);
    /* publish for every process: the allocator counts these pages as touched */
    uint64_t end = off + n, seen = __atomic_load_n(&h->prefaulted, __ATOMIC_RELAXED);
    while (seen < end && !__atomic_compare_exchange_n(&h->prefaulted, &seen, end, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    if (duty < 100 && ns > 0) {
      int64_t pause = ns * (100 - duty) / duty;
      struct timespec ts = {(time_t)(pause / 1000000000LL), (long)(pause % 1000000000LL)};
      nanosleep(&ts, NULL);
    }
  }
  a->prefault_state.store(state);
  arena_unref_map(a);
}
