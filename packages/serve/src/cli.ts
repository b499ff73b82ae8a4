/**
 * `tsray serve …`: the command line of Serve, run by core's `tsray` command.
 *
 *     tsray serve run module.ts:app [--address HOST:PORT] [--name NAME] [--route-prefix /p] [--port 8000]
 *     tsray serve deploy config.yaml [--address HOST:PORT]
 *     tsray serve status [--address HOST:PORT]
 *     tsray serve shutdown [--address HOST:PORT]
 *
 * `run` serves an application in the foreground (Ctrl-C stops it) on the
 * running cluster, or on a local one when none runs; `deploy` deploys the
 * applications of a config file (keys as in the API: `proxyLocation`,
 * `http: { host, port }`, `applications: [{ name, routePrefix, importPath:
 * 'file.ts:exportName', args, deployments: [{ name, numReplicas, userConfig,
 * autoscalingConfig, … }] }]`) to the running cluster and exits, leaving
 * them served.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as ray from '@tsray/core';
import { parse as parseYaml } from 'yaml';
import { Application, Deployment, run, shutdown, start, status, withOverrides, type StartOptions } from './api';
import { checkKeys, type DeploymentOptions } from './internal/options';

/** A mistake on the command line or in a config file (exit code 2). */
export class ServeUsageError extends Error {}

const HELP = `usage:
  tsray serve run module.ts:app [--address HOST:PORT] [--name NAME] [--route-prefix /p] [--host 127.0.0.1] [--port 8000]
  tsray serve deploy config.yaml [--address HOST:PORT]
  tsray serve status [--address HOST:PORT]
  tsray serve shutdown [--address HOST:PORT]`;

let tsLoader = false;

/** Imports `file` (TypeScript through tsx) and returns its export `name`. */
async function importTarget(spec: string, base: string): Promise<unknown> {
  const i = spec.lastIndexOf(':');
  if (i <= 0 || i === spec.length - 1) throw new ServeUsageError(`'${spec}' is not an import path: write it as file.ts:exportName`);
  const file = path.resolve(base, spec.slice(0, i));
  const name = spec.slice(i + 1);
  if (!fs.existsSync(file)) throw new ServeUsageError(`the import path '${spec}' names ${file}, which does not exist`);
  if (/\.(ts|mts|cts|tsx)$/.test(file) && !tsLoader) {
    (require('tsx/cjs/api') as { register: () => unknown }).register();
    tsLoader = true;
  }
  const mod = (/\.mjs$/.test(file) ? await import(pathToFileURL(file).href) : require(file)) as Record<string, unknown>;
  if (!(name in mod)) throw new ServeUsageError(`${file} has no export '${name}'; its exports are: ${Object.keys(mod).join(', ') || '(none)'}`);
  return mod[name];
}

/** An application from an export: an Application, a Deployment (bound with `args`), or a builder function called with `args`. */
async function toApplication(target: unknown, args: unknown, where: string): Promise<Application> {
  if (target instanceof Application) {
    if (args !== undefined) throw new ServeUsageError(`${where} is a bound application: it takes no args (export a builder function (args) => Deployment.bind(...) to pass them)`);
    return target;
  }
  if (target instanceof Deployment) return args === undefined ? target.bind() : target.bind(args);
  if (typeof target === 'function') {
    const out = await (target as (a: unknown) => unknown)(args ?? {});
    if (out instanceof Application) return out;
    throw new ServeUsageError(`${where} is a function but returned ${out === null ? 'null' : typeof out}, not an application (Deployment.bind(...))`);
  }
  throw new ServeUsageError(`${where} is not an application, a deployment or an application builder`);
}

async function connect(address: string | undefined, localIfNone: boolean): Promise<void> {
  if (address !== undefined) return ray.init({ address, logToDriver: true });
  try {
    await ray.init({ address: 'auto', logToDriver: true });
  } catch (e) {
    if (!localIfNone) throw e;
    console.log('[serve] no running cluster found: starting a local one');
    await ray.init({ logToDriver: true });
  }
}

interface AppConfig {
  name?: string;
  routePrefix?: string | null;
  importPath: string;
  args?: unknown;
  deployments?: Array<DeploymentOptions & { name: string }>;
}

interface ServeConfig {
  proxyLocation?: StartOptions['proxyLocation'];
  http?: { host?: string; port?: number };
  applications: AppConfig[];
}

function readConfig(file: string): ServeConfig {
  if (!fs.existsSync(file)) throw new ServeUsageError(`the config file ${file} does not exist`);
  let c: unknown;
  try {
    c = parseYaml(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ServeUsageError(`${file} is not valid YAML: ${(e as Error).message}`);
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new ServeUsageError(`${file} must hold a mapping with 'applications'`);
  const cfg = c as Partial<ServeConfig>;
  try {
    checkKeys(cfg, ['proxyLocation', 'http', 'applications'], `config file`);
    if (!Array.isArray(cfg.applications) || cfg.applications.length === 0) throw new TypeError(`the config file needs an 'applications' list`);
    cfg.applications.forEach((a, i) => {
      checkKeys(a, ['name', 'routePrefix', 'importPath', 'args', 'deployments'], `config file applications[${i}]`);
      if (typeof a.importPath !== 'string') throw new TypeError(`applications[${i}].importPath must be 'file.ts:exportName'`);
      for (const d of a.deployments ?? []) if (typeof d?.name !== 'string') throw new TypeError(`applications[${i}].deployments: each needs the name of the deployment it changes`);
    });
  } catch (e) {
    throw new ServeUsageError(`${file}: ${(e as Error).message}`);
  }
  return cfg as ServeConfig;
}

async function deploy(file: string, address: string | undefined): Promise<void> {
  const abs = path.resolve(file);
  const cfg = readConfig(abs);
  const apps: Array<{ app: Application; name: string; routePrefix: string | null | undefined }> = [];
  for (const [i, a] of cfg.applications.entries()) {
    const target = await importTarget(a.importPath, path.dirname(abs));
    let app = await toApplication(target, a.args, `applications[${i}] (${a.importPath})`);
    if (a.deployments && a.deployments.length > 0) {
      const over: Record<string, DeploymentOptions> = {};
      for (const { name, ...o } of a.deployments) over[name] = o;
      try {
        app = withOverrides(app, over);
      } catch (e) {
        throw new ServeUsageError(`${abs}: applications[${i}]: ${(e as Error).message}`);
      }
    }
    apps.push({ app, name: a.name ?? (cfg.applications.length === 1 ? 'default' : `app${i + 1}`), routePrefix: a.routePrefix });
  }
  await connect(address, false);
  try {
    await start({ ...(cfg.http ? { http: cfg.http } : {}), ...(cfg.proxyLocation ? { proxyLocation: cfg.proxyLocation } : {}) });
    for (const a of apps) {
      await run(a.app, { name: a.name, ...(a.routePrefix !== undefined ? { routePrefix: a.routePrefix } : {}) });
      console.log(`[serve] deployed application '${a.name}'${a.routePrefix !== null ? ` at ${a.routePrefix ?? '/'}` : ''}`);
    }
  } finally {
    await ray.shutdown();
  }
}

/** Runs `tsray serve <argv>`. */
export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  const common = { address: { type: 'string' as const } };
  switch (cmd) {
    case 'run': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, strict: true, options: { ...common, name: { type: 'string' }, 'route-prefix': { type: 'string' }, host: { type: 'string' }, port: { type: 'string' } } });
      if (positionals.length !== 1) throw new ServeUsageError('tsray serve run takes one import path (module.ts:app)');
      const target = await importTarget(positionals[0] as string, process.cwd());
      const app = await toApplication(target, undefined, positionals[0] as string);
      await connect(values.address, true);
      try {
        const port = values.port === undefined ? 8000 : Number(values.port);
        await start({ http: { host: values.host ?? '127.0.0.1', port } });
        await run(app, { name: values.name ?? 'default', routePrefix: values['route-prefix'] ?? '/' });
        console.log(`[serve] serving '${values.name ?? 'default'}' at http://${values.host ?? '127.0.0.1'}:${port}${values['route-prefix'] ?? '/'} (Ctrl-C stops it)`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        console.log('[serve] stopping');
        await shutdown();
      } finally {
        await ray.shutdown();
      }
      return;
    }
    case 'deploy': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, strict: true, options: common });
      if (positionals.length !== 1) throw new ServeUsageError('tsray serve deploy takes one config file');
      return deploy(positionals[0] as string, values.address);
    }
    case 'status':
    case 'shutdown': {
      const { values } = parseArgs({ args: rest, strict: true, options: common });
      await connect(values.address, false);
      try {
        if (cmd === 'status') console.log(JSON.stringify(await status(), null, 2));
        else {
          await shutdown();
          console.log('[serve] shut down');
        }
      } finally {
        await ray.shutdown();
      }
      return;
    }
    case undefined:
    case '--help':
    case '-h':
      console.log(HELP);
      return;
    default:
      throw new ServeUsageError(`unknown command 'serve ${cmd}'\n\n${HELP}`);
  }
}
