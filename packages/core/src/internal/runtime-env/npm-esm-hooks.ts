/**
 * Module hooks (`module.register()`) that let `import` and `import()` in
 * a worker of an npm environment find the environment's packages first,
 * by the rules of npm-resolution.ts: a bare specifier whose package the
 * environment has resolves as if imported from the environment's directory.
 * They run on Node's loader thread; `initialize` receives the
 * environment's directory.
 * @internal
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { envPackages, fileOfUrl, packageNameOf, prefersEnv, type NpmResolutionConfig } from './npm-resolution';

interface ResolveContext {
  parentURL?: string;
  conditions?: readonly string[];
  importAttributes?: Record<string, string>;
}
type NextResolve = (specifier: string, context?: ResolveContext) => Promise<unknown>;

let cfg: NpmResolutionConfig | undefined;
let has: (name: string) => boolean = () => false;
let envParent = '';

/** Receives the environment (the `data` of `module.register`). */
export function initialize(data: NpmResolutionConfig): void {
  cfg = data;
  has = envPackages(data.root);
  // a file in the environment's directory: resolving from it finds the environment's node_modules
  envParent = pathToFileURL(path.join(data.root, 'tsray-npm-env.json')).href;
}

function notFound(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED';
}

/** Node's resolve hook. */
export async function resolve(specifier: string, context: ResolveContext, next: NextResolve): Promise<unknown> {
  const name = cfg ? packageNameOf(specifier) : undefined;
  if (cfg === undefined || name === undefined || !has(name)) return next(specifier, context);
  const fromEnv = (): Promise<unknown> => next(specifier, { ...context, parentURL: envParent });
  if (prefersEnv(fileOfUrl(context.parentURL), cfg)) {
    try {
      return await fromEnv();
    } catch (e) {
      if (!notFound(e)) throw e;
      return next(specifier, context);
    }
  }
  try {
    return await next(specifier, context);
  } catch (e) {
    if (!notFound(e)) throw e;
    return fromEnv();
  }
}
