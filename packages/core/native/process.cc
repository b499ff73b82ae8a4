// Process control for worker processes: a worker asks the kernel to kill it
// when its parent (its node manager) exits, so that a worker whose event
// loop is busy in a long synchronous task does not outlive a node manager
// that was killed (its other guard, the end of its stdin pipe, needs the
// event loop). Linux only; elsewhere the call does nothing.
#include <node.h>

#ifdef __linux__
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#endif

namespace {

using v8::FunctionCallbackInfo;
using v8::Number;
using v8::Value;

// dieWithParent(signal): sends `signal` to this process when its parent
// exits; returns the parent's pid read after the request (-1 where it is not
// supported). If it differs from the pid read before, the parent is gone.
void DieWithParent(const FunctionCallbackInfo<Value>& args) {
  double result = -1;
#ifdef __linux__
  int sig = args.Length() > 0 && args[0]->IsInt32() ? args[0].As<v8::Int32>()->Value() : SIGKILL;
  if (prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0) result = static_cast<double>(getppid());
#endif
  args.GetReturnValue().Set(Number::New(args.GetIsolate(), result));
}

// lowMemory(): tells V8 the process should give memory back (an idle
// worker): a full garbage collection that also shrinks the young generation
// and returns free pages to the system.
void LowMemory(const FunctionCallbackInfo<Value>& args) {
  args.GetIsolate()->LowMemoryNotification();
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  v8::Isolate* iso = context->GetIsolate();
  auto def = [&](const char* name, v8::FunctionCallback fn) {
    exports->Set(context, v8::String::NewFromUtf8(iso, name).ToLocalChecked(), v8::FunctionTemplate::New(iso, fn)->GetFunction(context).ToLocalChecked()).Check();
  };
  def("dieWithParent", DieWithParent);
  def("lowMemory", LowMemory);
}
