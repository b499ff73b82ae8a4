// V8 bindings of the arena (see arena_core.h). Views of the arena are
// ArrayBuffers whose backing store has a plain C++ deleter: it only drops a
// reference count, so it is safe whenever V8 runs it, including during
// process teardown (Node-API external buffers run their finalizers through
// the Node environment, which may already be gone at that point).
#include <node.h>
#include <v8.h>

#include <memory>

#include "arena_core.h"

using v8::ArrayBuffer;
using v8::ArrayBufferView;
using v8::BackingStore;
using v8::Context;
using v8::Exception;
using v8::FunctionCallbackInfo;
using v8::FunctionTemplate;
using v8::Global;
using v8::Isolate;
using v8::Local;
using v8::Number;
using v8::Object;
using v8::ObjectTemplate;
using v8::String;
using v8::Value;
using v8::WeakCallbackInfo;
using v8::WeakCallbackType;

namespace {

void Throw(Isolate* iso, const char* msg, bool type_error = false) {
  Local<String> m = String::NewFromUtf8(iso, msg).ToLocalChecked();
  Local<Value> e = type_error ? Exception::TypeError(m) : Exception::Error(m);
  Local<Context> ctx = iso->GetCurrentContext();
  e.As<Object>()->Set(ctx, String::NewFromUtf8Literal(iso, "code"), String::NewFromUtf8Literal(iso, "TSRAY_ARENA")).Check();
  iso->ThrowException(e);
}

// A JS handle is an object with two internal fields: a tag (so that no other
// object is taken for a handle) and the arena_t. It holds one reference to
// the arena_t, dropped when V8 collects it; close() only marks it closed and
// drops the mapping, so every call on a closed handle can still say so.
const int kHandleTag = 0x7473;

struct HandleHolder {
  Global<Object> obj;
  arena_t* arena;
};

void HandleGone(const WeakCallbackInfo<HandleHolder>& info) {
  HandleHolder* holder = info.GetParameter();
  holder->obj.Reset();
  arena_t* a = holder->arena;
  if (!a->closed.exchange(1)) arena_unref_map(a);
  arena_unref(a);
  delete holder;
}

Local<Object> NewHandle(Isolate* iso, arena_t* a) {
  Local<ObjectTemplate> tpl = ObjectTemplate::New(iso);
  tpl->SetInternalFieldCount(2);
  Local<Object> obj = tpl->NewInstance(iso->GetCurrentContext()).ToLocalChecked();
  obj->SetAlignedPointerInInternalField(0, const_cast<int*>(&kHandleTag));
  obj->SetAlignedPointerInInternalField(1, a);
  HandleHolder* holder = new HandleHolder();
  holder->arena = a;
  holder->obj.Reset(iso, obj);
  holder->obj.SetWeak(holder, HandleGone, WeakCallbackType::kParameter);
  return obj;
}

// The arena behind a handle argument, closed or not (close() itself).
arena_t* Raw(const FunctionCallbackInfo<Value>& args) {
  if (args.Length() >= 1 && args[0]->IsObject()) {
    Local<Object> o = args[0].As<Object>();
    if (o->InternalFieldCount() == 2 && o->GetAlignedPointerFromInternalField(0) == &kHandleTag) {
      return static_cast<arena_t*>(o->GetAlignedPointerFromInternalField(1));
    }
  }
  Throw(args.GetIsolate(), "expected an arena handle", true);
  return nullptr;
}

// The arena behind a handle argument; throws when it was closed, since its
// memory may already be unmapped.
arena_t* Open(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Raw(args);
  if (a && a->closed.load()) {
    Throw(args.GetIsolate(), "the object store arena was closed (ray.shutdown() was called); it cannot be used any more");
    return nullptr;
  }
  return a;
}

// Reads argument i as a non-negative integer no larger than 2^53 - 1 (the
// largest a JS number holds exactly), so that arithmetic on it cannot wrap.
bool U64(const FunctionCallbackInfo<Value>& args, int i, uint64_t* out) {
  if (args.Length() <= i || !args[i]->IsNumber()) {
    Throw(args.GetIsolate(), "expected a non-negative number (a safe integer)", true);
    return false;
  }
  double d = args[i].As<Number>()->Value();
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    Throw(args.GetIsolate(), "expected a non-negative number (a safe integer)", true);
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

// Takes the arena's lock or throws; false when the caller must return.
bool Lock(const FunctionCallbackInfo<Value>& args, arena_t* a) {
  int rc = lock(a);
  if (rc == 0) return true;
  char msg[300];
  if (rc == ENOTRECOVERABLE) {
    snprintf(msg, sizeof msg,
             "the object store is damaged: a process died while changing it and its allocator could not be repaired; restart the cluster (tsray stop, or ray.shutdown())");
  } else {
    snprintf(msg, sizeof msg, "could not lock the object store: %s", strerror(rc));
  }
  Throw(args.GetIsolate(), msg);
  return false;
}

// Data pointer and length of an ArrayBuffer or a view of one.
bool Bytes(const FunctionCallbackInfo<Value>& args, int i, uint8_t** data, size_t* len) {
  Local<Value> v = args[i];
  if (v->IsArrayBufferView()) {
    Local<ArrayBufferView> view = v.As<ArrayBufferView>();
    *data = static_cast<uint8_t*>(view->Buffer()->Data()) + view->ByteOffset();
    *len = view->ByteLength();
    return true;
  }
  if (v->IsArrayBuffer()) {
    Local<ArrayBuffer> ab = v.As<ArrayBuffer>();
    *data = static_cast<uint8_t*>(ab->Data());
    *len = ab->ByteLength();
    return true;
  }
  Throw(args.GetIsolate(), "expected an ArrayBuffer or a view of one", true);
  return false;
}

void Ret(const FunctionCallbackInfo<Value>& args, double v) { args.GetReturnValue().Set(Number::New(args.GetIsolate(), v)); }

arena_t* MapFd(int fd, uint64_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return nullptr;
  arena_t* a = new arena_t();
  a->base = static_cast<uint8_t*>(p);
  a->size = size;
  a->fd = fd;
  a->maprefs.store(1);
  a->refs.store(2);
  a->closed.store(0);
  a->prefault_state.store(PF_IDLE);
  a->prefault_done.store(0);
  a->prefault_errno.store(0);
  return a;
}

// create(size, name): handle
void Create(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  uint64_t size;
  if (!U64(args, 0, &size)) return;
  char name[64] = "tsray-arena";
  if (args.Length() > 1 && args[1]->IsString()) args[1].As<String>()->WriteUtf8(iso, name, sizeof name - 1);
  if (size > (1ULL << 50)) return Throw(iso, "the object store size is too large (at most 1 PiB)");
  size = (size + 4095) & ~4095ULL;
  if (size < HDR_RESERVED + 2 * 4096) return Throw(iso, "the object store must be at least 12 KiB");
  int fd = static_cast<int>(syscall(SYS_memfd_create, name, MFD_CLOEXEC));
  char msg[200];
  if (fd < 0) {
    snprintf(msg, sizeof msg, "memfd_create failed: %s", strerror(errno));
    return Throw(iso, msg);
  }
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    snprintf(msg, sizeof msg, "could not size the object store to %llu bytes: %s", static_cast<unsigned long long>(size), strerror(errno));
    close(fd);
    return Throw(iso, msg);
  }
  arena_t* a = MapFd(fd, size);
  if (!a) {
    snprintf(msg, sizeof msg, "mmap of the object store failed: %s", strerror(errno));
    close(fd);
    return Throw(iso, msg);
  }
  arena_hdr_t* h = hdr(a);
  memset(static_cast<void*>(h), 0, sizeof(*h));
  h->version = ARENA_VERSION;
  h->size = size;
  h->heap_start = HDR_RESERVED;
  h->heap_end = size;
  pthread_mutexattr_t at;
  pthread_mutexattr_init(&at);
  pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&h->mu, &at);
  pthread_mutexattr_destroy(&at);
  block_t* b = blk(a, h->heap_start);
  memset(static_cast<void*>(b), 0, sizeof(*b));
  b->size = h->heap_end - h->heap_start;
  b->state = ST_FREE;
  b->magic = BLOCK_MAGIC;
  h->free_head = h->heap_start;
  __atomic_store_n(&h->magic, ARENA_MAGIC, __ATOMIC_RELEASE);
  args.GetReturnValue().Set(NewHandle(iso, a));
}

// open(path): handle — path is usually /proc/<pid>/fd/<n>
void OpenPath(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  if (args.Length() < 1 || !args[0]->IsString()) return Throw(iso, "open(path) needs a path", true);
  String::Utf8Value path(iso, args[0]);
  char msg[700];
  int fd = open(*path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    snprintf(msg, sizeof msg, "could not open the node's object store at %s: %s", *path, strerror(errno));
    return Throw(iso, msg);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < HDR_RESERVED) {
    close(fd);
    return Throw(iso, "the object store file is too small or unreadable");
  }
  arena_t* a = MapFd(fd, static_cast<uint64_t>(st.st_size));
  if (!a) {
    close(fd);
    return Throw(iso, "mmap of the node's object store failed");
  }
  if (__atomic_load_n(&hdr(a)->magic, __ATOMIC_ACQUIRE) != ARENA_MAGIC || hdr(a)->size != a->size) {
    munmap(a->base, a->size);
    close(fd);
    delete a;
    return Throw(iso, "that file is not a tsray object store (bad magic)");
  }
  if (hdr(a)->version != ARENA_VERSION) {
    snprintf(msg, sizeof msg, "the node's object store has layout version %u, this tsray build reads version %u: run the same tsray version on the whole node",
             hdr(a)->version, ARENA_VERSION);
    munmap(a->base, a->size);
    close(fd);
    delete a;
    return Throw(iso, msg);
  }
  args.GetReturnValue().Set(NewHandle(iso, a));
}

void Fd(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  if (a) Ret(args, a->fd);
}

// alloc(handle, size, slot, noGrow?): payload offset; -1 when nothing fits;
// -2 when noGrow is set and the block would reach into never-used memory
void Alloc(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  uint64_t size, slot;
  if (!a || !U64(args, 1, &size) || !U64(args, 2, &slot)) return;
  if (slot > UINT32_MAX) return Throw(args.GetIsolate(), "slot out of range", true);
  int flags = args.Length() > 3 && args[3]->IsTrue() ? ALLOC_NO_GROW : 0;
  if (!Lock(args, a)) return;
  int64_t off = arena_alloc_locked(a, size, static_cast<uint32_t>(slot), flags);
  unlock(a);
  Ret(args, static_cast<double>(off));
}

// seal(handle, offset, ownerSlot): complete, and owned by ownerSlot for crash cleanup
void Seal(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  uint64_t off, owner;
  if (!a || !U64(args, 1, &off) || !U64(args, 2, &owner)) return;
  if (owner > UINT32_MAX) return Throw(args.GetIsolate(), "slot out of range", true);
  if (!Lock(args, a)) return;
  block_t* b = payload_block(a, off);
  if (b) {
    b->state = ST_SEALED;
    b->owner = static_cast<uint32_t>(owner);
  }
  unlock(a);
  args.GetReturnValue().Set(b != nullptr);
}

void Free(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  uint64_t off;
  if (!a || !U64(args, 1, &off)) return;
  if (!Lock(args, a)) return;
  int rc = arena_free_locked(a, off);
  unlock(a);
  args.GetReturnValue().Set(rc == 0);
}

// sweep(handle, slot): frees unsealed blocks slot created and sealed blocks it owns
void Sweep(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  uint64_t slot;
  if (!a || !U64(args, 1, &slot)) return;
  if (slot > UINT32_MAX) return Throw(args.GetIsolate(), "slot out of range", true);
  uint32_t s = static_cast<uint32_t>(slot);
  int freed = 0;
  if (!Lock(args, a)) return;
  uint64_t off = hdr(a)->heap_start;
  while (off) {
    block_t* b = blk(a, off);
    bool dead = (b->state == ST_ALLOC && b->creator == s) || (b->state == ST_SEALED && b->owner == s);
    if (dead) {
      uint64_t prev = b->prev_size ? off - b->prev_size : 0;
      bool prev_free = prev && blk(a, prev)->state == ST_FREE;
      arena_free_locked(a, off + sizeof(block_t));
      freed++;
      off = prev_free ? prev : off;
    }
    off = next_of(a, off);
  }
  unlock(a);
  Ret(args, freed);
}

void ViewDeleter(void* /*data*/, size_t /*length*/, void* arena) { arena_unref_map(static_cast<arena_t*>(arena)); }

// view(handle, offset, length): an ArrayBuffer over the mapping; it keeps the
// mapping alive until it is garbage collected
void View(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  uint64_t off, len;
  if (!a || !U64(args, 1, &off) || !U64(args, 2, &len)) return;
  if (off > a->size || len > a->size - off) return Throw(args.GetIsolate(), "view out of the arena's bounds");
  a->maprefs.fetch_add(1);
  std::unique_ptr<BackingStore> bs = ArrayBuffer::NewBackingStore(a->base + off, len, ViewDeleter, a);
  args.GetReturnValue().Set(ArrayBuffer::New(args.GetIsolate(), std::move(bs)));
}

// write(handle, offset, src): memcpy in
void Write(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  uint64_t off;
  uint8_t* data;
  size_t len;
  if (!a || !U64(args, 1, &off) || args.Length() < 3 || !Bytes(args, 2, &data, &len)) return;
  if (off > a->size || len > a->size - off) return Throw(args.GetIsolate(), "write out of the arena's bounds");
  if (len) memcpy(a->base + off, data, len);
  Ret(args, static_cast<double>(len));
}

// addrMod(src): address of a view's first byte modulo 4096. Copies into the
// arena keep the destination at the source's page offset: a destination
// 16..~1000 bytes ahead of the source (mod 4 KiB) makes memcpy 3-4x slower on
// x86, because loads alias the stores just made.
void AddrMod(const FunctionCallbackInfo<Value>& args) {
  uint8_t* data;
  size_t len;
  if (args.Length() < 1 || !Bytes(args, 0, &data, &len)) return;
  Ret(args, static_cast<double>(reinterpret_cast<uintptr_t>(data) & 4095));
}

// populate(handle, offset, length): map an object's pages in one call
void Populate(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  uint64_t off, len;
  if (!a || !U64(args, 1, &off) || !U64(args, 2, &len)) return;
  if (off > a->size || len > a->size - off) return Throw(args.GetIsolate(), "populate out of bounds");
  uint64_t start = off & ~4095ULL;
  uint64_t end = (off + len + 4095) & ~4095ULL;
  if (end > a->size) end = a->size;
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
  args.GetReturnValue().Set(madvise(a->base + start, end - start, MADV_POPULATE_READ) == 0);
}

struct PrefaultJob {
  arena_t* a;
  uint64_t len;
  int duty;
  int map;
};

void* PrefaultThread(void* p) {
  PrefaultJob* job = static_cast<PrefaultJob*>(p);
  pthread_setname_np(pthread_self(), "tsray-prefault");
  prefault_run(job->a, job->len, job->duty, job->map);
  delete job;
  return nullptr;
}

// prefault(handle, length, dutyPercent, map = true): faults in the first
// `length` bytes of this process's mapping on a background thread
// (prefault_run), or with map false only allocates them in the memfd; true
// if it started, false if this handle already started one
void Prefault(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  uint64_t len, duty;
  if (!a || !U64(args, 1, &len) || !U64(args, 2, &duty)) return;
  if (duty < 1 || duty > 100) return Throw(args.GetIsolate(), "the prefault duty cycle is a percentage from 1 to 100", true);
  if (len > a->size) len = a->size;
  len &= ~4095ULL;
  int idle = PF_IDLE;
  if (len == 0 || !a->prefault_state.compare_exchange_strong(idle, PF_RUNNING)) {
    args.GetReturnValue().Set(false);
    return;
  }
  a->maprefs.fetch_add(1); /* the thread's: the mapping stays until it ends */
  bool map = args.Length() < 4 || args[3]->BooleanValue(args.GetIsolate());
  PrefaultJob* job = new PrefaultJob{a, len, static_cast<int>(duty), map ? 1 : 0};
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_t tid;
  int rc = pthread_create(&tid, &at, PrefaultThread, job);
  pthread_attr_destroy(&at);
  if (rc != 0) {
    delete job;
    a->prefault_state.store(PF_FAILED);
    a->prefault_errno.store(rc);
    arena_unref_map(a);
  }
  args.GetReturnValue().Set(rc == 0);
}

// prefaultStatus(handle): { state, bytes, error? } of this handle's prefault
// (works on a closed handle too)
void PrefaultStatus(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Raw(args);
  if (!a) return;
  Isolate* iso = args.GetIsolate();
  Local<Context> ctx = iso->GetCurrentContext();
  static const char* const names[] = {"idle", "running", "done", "failed", "stopped"};
  int st = a->prefault_state.load();
  Local<Object> o = Object::New(iso);
  o->Set(ctx, String::NewFromUtf8Literal(iso, "state"), String::NewFromUtf8(iso, names[st]).ToLocalChecked()).Check();
  o->Set(ctx, String::NewFromUtf8Literal(iso, "bytes"), Number::New(iso, static_cast<double>(a->prefault_done.load()))).Check();
  if (st == PF_FAILED) {
    int e = a->prefault_errno.load();
    o->Set(ctx, String::NewFromUtf8Literal(iso, "error"),
           String::NewFromUtf8(iso, e == EINVAL ? "this kernel cannot populate pages in advance (MADV_POPULATE_WRITE needs Linux 5.14)" : strerror(e)).ToLocalChecked())
        .Check();
  }
  args.GetReturnValue().Set(o);
}

void Stats(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  if (!a) return;
  Isolate* iso = args.GetIsolate();
  Local<Context> ctx = iso->GetCurrentContext();
  if (!Lock(args, a)) return;
  arena_hdr_t* h = hdr(a);
  uint64_t nfree = 0, largest = 0;
  for (uint64_t c = h->free_head; c; c = blk(a, c)->next_free) {
    nfree++;
    if (blk(a, c)->size > largest) largest = blk(a, c)->size;
  }
  double cap = static_cast<double>(h->heap_end - h->heap_start), used = static_cast<double>(h->used);
  double n = static_cast<double>(h->nalloc), tot = static_cast<double>(h->total_allocs);
  double pre = static_cast<double>(__atomic_load_n(&h->prefaulted, __ATOMIC_RELAXED));
  unlock(a);
  Local<Object> o = Object::New(iso);
  auto set = [&](const char* k, double v) { o->Set(ctx, String::NewFromUtf8(iso, k).ToLocalChecked(), Number::New(iso, v)).Check(); };
  set("capacity", cap);
  set("used", used);
  set("objects", n);
  set("freeBlocks", static_cast<double>(nfree));
  set("largestFree", largest > sizeof(block_t) ? static_cast<double>(largest - sizeof(block_t)) : 0);
  set("totalAllocs", tot);
  set("prefaulted", pre);
  args.GetReturnValue().Set(o);
}

// check(handle): verifies boundary tags and the free list; an error string or null
void Check(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  if (!a) return;
  const char* err = nullptr;
  if (!Lock(args, a)) return;
  arena_hdr_t* h = hdr(a);
  uint64_t off = h->heap_start, prev_size = 0, nfree_walk = 0, used = 0, nalloc = 0;
  bool prev_was_free = false;
  while (off && !err) {
    block_t* b = blk(a, off);
    if (b->magic != BLOCK_MAGIC) err = "bad block magic";
    else if (b->prev_size != prev_size) err = "prev_size mismatch";
    else if (b->size < sizeof(block_t) || b->size % ALIGN) err = "bad block size";
    else if (off + b->size > h->heap_end) err = "block past the end";
    else if (b->state == ST_FREE && prev_was_free) err = "two adjacent free blocks";
    if (!err) {
      if (b->state == ST_FREE) nfree_walk++;
      else {
        used += b->size;
        nalloc++;
      }
      prev_was_free = b->state == ST_FREE;
      prev_size = b->size;
      off = next_of(a, off);
    }
  }
  uint64_t nfree_list = 0, last = 0;
  for (uint64_t c = h->free_head; c && !err; c = blk(a, c)->next_free) {
    if (c <= last) err = "free list out of order";
    else if (blk(a, c)->state != ST_FREE) err = "non-free block in the free list";
    last = c;
    nfree_list++;
  }
  if (!err && nfree_list != nfree_walk) err = "free list misses blocks";
  if (!err && used != h->used) err = "used bytes mismatch";
  if (!err && nalloc != h->nalloc) err = "object count mismatch";
  unlock(a);
  if (err) args.GetReturnValue().Set(String::NewFromUtf8(args.GetIsolate(), err).ToLocalChecked());
  else args.GetReturnValue().SetNull();
}

// externalMemory(delta): tells V8 this process holds (or released) `delta`
// bytes outside its heap, so that it collects garbage (and finalizes refs to
// large objects) as memory use calls for
void ExternalMemory(const FunctionCallbackInfo<Value>& args) {
  if (args.Length() < 1 || !args[0]->IsNumber()) return Throw(args.GetIsolate(), "externalMemory(delta) needs a number", true);
  int64_t delta = static_cast<int64_t>(args[0].As<Number>()->Value());
  args.GetReturnValue().Set(Number::New(args.GetIsolate(), static_cast<double>(args.GetIsolate()->AdjustAmountOfExternalAllocatedMemory(delta))));
}

// close(handle): unusable from now on; unmapped once every view is collected
void Close(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Raw(args);
  if (a && !a->closed.exchange(1)) arena_unref_map(a);
}

// testAbandonLock(handle, damage): tests only. Takes the lock and returns
// without releasing it, so that the calling process dies holding it; with
// `damage`, it first scrambles what recovery must rebuild (the free list and
// the counters), as a process killed mid-operation could leave them.
void TestAbandonLock(const FunctionCallbackInfo<Value>& args) {
  arena_t* a = Open(args);
  if (!a || !Lock(args, a)) return;
  if (args.Length() > 1 && args[1]->IsTrue()) {
    arena_hdr_t* h = hdr(a);
    h->free_head = 0;
    h->used += 4096;
    h->nalloc += 3;
    for (uint64_t off = h->heap_start; off; off = next_of(a, off)) blk(a, off)->prev_size = 64;
  }
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* iso = context->GetIsolate();
  auto def = [&](const char* name, v8::FunctionCallback fn) {
    exports->Set(context, String::NewFromUtf8(iso, name).ToLocalChecked(), FunctionTemplate::New(iso, fn)->GetFunction(context).ToLocalChecked()).Check();
  };
  def("create", Create);
  def("open", OpenPath);
  def("fd", Fd);
  def("alloc", Alloc);
  def("seal", Seal);
  def("free", Free);
  def("sweep", Sweep);
  def("view", View);
  def("write", Write);
  def("addrMod", AddrMod);
  def("populate", Populate);
  def("prefault", Prefault);
  def("prefaultStatus", PrefaultStatus);
  def("stats", Stats);
  def("check", Check);
  def("close", Close);
  def("externalMemory", ExternalMemory);
  def("testAbandonLock", TestAbandonLock);
}
