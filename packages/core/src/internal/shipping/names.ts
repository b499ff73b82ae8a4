/**
 * Names code shipped by value may use without defining them: the worker's
 * globals, CommonJS's module wrapper names, and the helpers that loaders
 * put into compiled code (the worker supplies those, see helpers.ts).
 * @internal
 */
import * as vm from 'node:vm';

/** What Node adds to JavaScript's own globals (Node 20 to 24). */
const NODE_GLOBALS = [
  'global', 'globalThis', 'process', 'Buffer', 'console',
  'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'queueMicrotask',
  'structuredClone', 'atob', 'btoa', 'fetch', 'crypto', 'performance', 'navigator',
  'URL', 'URLSearchParams', 'DOMException', 'AbortController', 'AbortSignal', 'Event', 'EventTarget', 'CustomEvent',
  'TextEncoder', 'TextDecoder', 'TextEncoderStream', 'TextDecoderStream', 'CompressionStream', 'DecompressionStream',
  'ReadableStream', 'ReadableStreamDefaultReader', 'ReadableStreamBYOBReader', 'ReadableStreamBYOBRequest',
  'ReadableByteStreamController', 'ReadableStreamDefaultController', 'TransformStream', 'TransformStreamDefaultController',
  'WritableStream', 'WritableStreamDefaultController', 'WritableStreamDefaultWriter', 'ByteLengthQueuingStrategy', 'CountQueuingStrategy',
  'BroadcastChannel', 'MessageChannel', 'MessagePort', 'MessageEvent', 'Blob', 'File', 'FormData', 'Headers', 'Request', 'Response',
  'WebSocket', 'EventSource', 'Navigator', 'Crypto', 'CryptoKey', 'SubtleCrypto',
  'Performance', 'PerformanceEntry', 'PerformanceMark', 'PerformanceMeasure', 'PerformanceObserver', 'PerformanceObserverEntryList',
  'PerformanceResourceTiming', 'WebAssembly',
];

/** CommonJS's module wrapper names: the worker binds them to the defining file. */
export const MODULE_NAMES = ['require', 'module', 'exports', '__filename', '__dirname'] as const;

/** Helpers esbuild (tsx) emits for Node targets; helpers.ts defines them in the worker. */
export const ESBUILD_HELPERS = new Set(['__name', '__defProp', '__defNormalProp', '__publicField', '__getOwnPropDesc', '__decorateClass', '__decorateParam']);

/** TypeScript's emit helpers (tslib's exports); the worker takes them from tslib. */
export const TS_HELPERS = new Set([
  '__extends', '__assign', '__rest', '__decorate', '__param', '__esDecorate', '__runInitializers', '__propKey', '__setFunctionName',
  '__metadata', '__awaiter', '__generator', '__exportStar', '__createBinding', '__values', '__read', '__spread', '__spreadArrays',
  '__spreadArray', '__await', '__asyncGenerator', '__asyncDelegator', '__asyncValues', '__makeTemplateObject', '__importStar',
  '__importDefault', '__classPrivateFieldGet', '__classPrivateFieldSet', '__classPrivateFieldIn', '__addDisposableResource',
  '__disposeResources', '__rewriteRelativeImportExtension',
]);

/** TypeScript's name for tslib under `importHelpers` (`tslib_1.__awaiter(...)`). */
export const TSLIB_IMPORT = /^tslib_\d+$/;
/** istanbul's coverage counters (`jest --coverage`): `cov_2ndqr2gdeg().s[0]++`. */
export const COVERAGE_COUNTER = /^cov_[a-z0-9]+$/;

/** The name the worker gives `import(...)` (the shipped text calls it instead). */
export const IMPORT_NAME = '__tsray_import';
/** The name the worker gives `import.meta`. */
export const IMPORT_META_NAME = '__tsray_import_meta';

let globals: Set<string> | undefined;

/** JavaScript's and Node's globals: what a worker has without being given it. */
export function globalNames(): Set<string> {
  if (!globals) {
    const builtins = vm.runInNewContext('Object.getOwnPropertyNames(globalThis)') as string[];
    globals = new Set([...builtins, ...NODE_GLOBALS]);
  }
  return globals;
}

/** Whether the worker supplies `name` as a loader helper. */
export function isHelper(name: string): boolean {
  return ESBUILD_HELPERS.has(name) || TS_HELPERS.has(name) || TSLIB_IMPORT.test(name) || COVERAGE_COUNTER.test(name);
}
