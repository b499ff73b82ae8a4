/**
 * The node manager's side of `runtimeEnv.workingDir`: fetches a package
 * from the head by id and unpacks it once per node, into
 * `<sessionDir>/runtime_resources/working_dir_files/<id>/`. Requests for a
 * package being set up share that setup. A package is unpacked into a
 * temporary directory and renamed into place, so a directory in place is
 * always complete. A failed setup is not remembered: the next request tries
 * again (the package may have been stored meanwhile).
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { log } from '../log';
import { decodeArchive, isPackageId, packageId } from './archive';
import { OncePerKey } from './setups';

/** Fetches a package's bytes from the cluster; null when the cluster has none by that id. */
export type PackageFetcher = (pkg: string) => Promise<Uint8Array | null>;

/** Where a node keeps its working directories. */
export function workingDirsRoot(sessionDir: string): string {
  return path.join(sessionDir, 'runtime_resources', 'working_dir_files');
}

/** Writes a package's entries under `dir` (which exists and is empty). */
async function extract(bytes: Uint8Array, dir: string): Promise<number> {
  let files = 0;
  for (const e of decodeArchive(bytes)) {
    const target = path.join(dir, ...e.path.split('/'));
    if (e.type === 'dir') {
      await fs.promises.mkdir(target, { recursive: true, mode: e.mode | 0o700 });
      continue;
    }
    await fs.promises.mkdir(path.dirname(target), { recursive: true });
    await fs.promises.writeFile(target, e.data, { mode: e.mode | 0o600, flag: 'wx' });
    files++;
  }
  return files;
}

/** See the module comment. */
export class NodeWorkingDirs {
  private readonly setups = new OncePerKey<string>();
  /** packages this node unpacked (a statistic) */
  unpacked = 0;

  /**
   * @param root where packages are unpacked (see {@link workingDirsRoot})
   * @param fetch gets a package from the head
   */
  constructor(
    private readonly root: string,
    private readonly fetch: PackageFetcher,
  ) {}

  /** The unpacked directory of `pkg`, once it is ready on this node. */
  dirOf(pkg: string): string | undefined {
    return this.setups.get(pkg);
  }

  /** Whether `pkg` is being set up now. */
  isSettingUp(pkg: string): boolean {
    return this.setups.isRunning(pkg);
  }

  /**
   * Sets `pkg` up (once; concurrent calls share one setup) and resolves to
   * its directory. Rejects with an Error whose message is the reason.
   */
  ensure(pkg: string): Promise<string> {
    return this.setups.run(pkg, () => this.setUp(pkg));
  }

  private async setUp(pkg: string): Promise<string> {
    if (!isPackageId(pkg)) throw new Error(`${JSON.stringify(pkg)} is not a working-directory package id`);
    const final = path.join(this.root, pkg);
    if (fs.existsSync(final)) return final;
    let bytes: Uint8Array | null;
    try {
      bytes = await this.fetch(pkg);
    } catch (e) {
      throw new Error(`its working-directory package ${pkg} could not be fetched from the head: ${(e as Error).message}`);
    }
    if (!bytes) {
      throw new Error(
        `its working-directory package ${pkg} is not in the cluster (the head has no package by that id: it was removed, ` +
          'or the head restarted since the driver stored it). Start the driver again (ray.init) to store it again.',
      );
    }
    if (packageId(bytes) !== pkg) throw new Error(`its working-directory package ${pkg} arrived damaged (its content does not match its id)`);
    let tmp: string | undefined;
    try {
      await fs.promises.mkdir(this.root, { recursive: true });
      tmp = await fs.promises.mkdtemp(path.join(this.root, `.${pkg}.tmp-`));
      const files = await extract(bytes, tmp);
      try {
        await fs.promises.rename(tmp, final);
        tmp = undefined;
      } catch (e) {
        // another process put it in place first: use that one
        if (!fs.existsSync(final)) throw e;
      }
      this.unpacked++;
      log.info(`unpacked working-directory package ${pkg} (${files} files, ${bytes.byteLength} bytes) into ${final}`);
      return final;
    } catch (e) {
      throw new Error(`its working-directory package ${pkg} could not be unpacked into ${final}: ${(e as Error).message}`);
    } finally {
      if (tmp !== undefined) await fs.promises.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}
