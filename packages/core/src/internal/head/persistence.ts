/**
 * The head's tables on disk, so that a head started again takes back its
 * cluster (Ray keeps them in Redis; one file is enough here). The head hands
 * over a snapshot of its tables; this writes it soon after a change (at most
 * every WRITE_DELAY_MS), to a temporary file renamed over the last one, so a
 * crash leaves either the old snapshot or the new one, never half of one.
 * Other parts of the head (placement groups...) add their own tables with
 * {@link HeadStateFile.registerTable}.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Packr } from 'msgpackr';
import { log } from '../log';

/** A table that other parts of the head keep in the state file. */
export interface PersistedTable {
  /** A plain snapshot (msgpack-able: objects, arrays, strings, numbers, Uint8Array). */
  save(): unknown;
  /** Takes back what {@link save} returned, in a head started again. */
  load(data: unknown): void;
}

/** Version of the file layout; a file of another version is ignored (with a warning). */
const STATE_VERSION = 1;
/** Writes are batched: at most one per this many ms. */
const WRITE_DELAY_MS = 50;

const packr = new Packr({ useRecords: false, moreTypes: false });

/** The name of the state file in a session directory. */
export function stateFileIn(sessionDir: string): string {
  return path.join(sessionDir, 'head-state.msgpack');
}

/** See the module comment. */
export class HeadStateFile {
  private readonly tables = new Map<string, PersistedTable>();
  /** tables found in the file before their owner registered */
  private loadedTables: Record<string, unknown> = {};
  private timer: NodeJS.Timeout | undefined;
  private failed = false;

  constructor(
    readonly file: string,
    private readonly snapshot: () => Record<string, unknown>,
  ) {}

  /**
   * Adds a table to the file. If the head was started from a file that has
   * this table, `table.load` gets it now.
   * @throws TypeError when a table of that name is registered already
   */
  registerTable(name: string, table: PersistedTable): void {
    if (this.tables.has(name)) throw new TypeError(`a head table named '${name}' is registered already`);
    this.tables.set(name, table);
    if (name in this.loadedTables) {
      const data = this.loadedTables[name];
      delete this.loadedTables[name];
      table.load(data);
    }
  }

  /** Reads a state file; undefined when there is none or it cannot be read (logged). */
  read(): Record<string, unknown> | undefined {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(this.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`could not read the head's state file ${this.file}: ${(e as Error).message}; starting with empty tables`);
      return undefined;
    }
    let root: unknown;
    try {
      root = packr.unpack(bytes);
    } catch (e) {
      log.warn(`the head's state file ${this.file} is damaged (${(e as Error).message}); starting with empty tables`);
      return undefined;
    }
    const r = root as { version?: unknown; head?: unknown; tables?: unknown };
    if (typeof r !== 'object' || r === null || r.version !== STATE_VERSION || typeof r.head !== 'object' || r.head === null) {
      log.warn(`the head's state file ${this.file} has another layout (version ${String(r?.version)}, expected ${STATE_VERSION}); starting with empty tables`);
      return undefined;
    }
    this.loadedTables = typeof r.tables === 'object' && r.tables !== null ? { ...(r.tables as Record<string, unknown>) } : {};
    // tables registered before the file was read get theirs now
    for (const [name, t] of this.tables) {
      if (!(name in this.loadedTables)) continue;
      const data = this.loadedTables[name];
      delete this.loadedTables[name];
      t.load(data);
    }
    return r.head as Record<string, unknown>;
  }

  /** Something changed: write the tables soon. */
  changed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.write();
    }, WRITE_DELAY_MS);
  }

  /** Writes now (a temporary file, then rename). Failures are logged once, never thrown. */
  write(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const tables: Record<string, unknown> = { ...this.loadedTables };
    for (const [name, t] of this.tables) tables[name] = t.save();
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, packr.pack({ version: STATE_VERSION, savedAt: Date.now(), head: this.snapshot(), tables }));
      fs.renameSync(tmp, this.file);
      this.failed = false;
    } catch (e) {
      if (!this.failed) log.warn(`could not write the head's state file ${this.file}: ${(e as Error).message}; a restarted head will not find the latest tables`);
      this.failed = true;
      fs.rmSync(tmp, { force: true });
    }
  }

  /** Stops writing (the head stops); nothing pending is written. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
