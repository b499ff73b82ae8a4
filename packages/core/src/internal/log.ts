/**
 * Minimal internal logger. Level from TSRAY_LOG_LEVEL (error|warn|info|debug),
 * default warn. Lines go to stderr with the process role as prefix.
 * @internal
 */
const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;
type Level = keyof typeof LEVELS;

function parseLevel(v: string | undefined): number {
  if (v && v in LEVELS) return LEVELS[v as Level];
  return LEVELS.warn;
}

let threshold = parseLevel(process.env.TSRAY_LOG_LEVEL);
let role = 'driver';

/** Sets the prefix used on every line of this process. */
export function setLogRole(r: string): void {
  role = r;
}

/** Re-reads TSRAY_LOG_LEVEL. */
export function refreshLogLevel(): void {
  threshold = parseLevel(process.env.TSRAY_LOG_LEVEL);
}

function write(level: Level, msg: string): void {
  if (LEVELS[level] > threshold) return;
  process.stderr.write(`[tsray ${role} ${level}] ${msg}\n`);
}

/** The logger: one function per level, and `enabled(level)`. */
export const log = {
  error: (m: string): void => write('error', m),
  warn: (m: string): void => write('warn', m),
  info: (m: string): void => write('info', m),
  debug: (m: string): void => write('debug', m),
  enabled: (l: Level): boolean => LEVELS[l] <= threshold,
};

/** Logs at most `limit` lines per `windowMs` per key; counts the rest. */
export class RateLimitedLog {
  private counts = new Map<string, { n: number; since: number }>();
  /**
   * @param limit lines per window and key @default 5
   * @param windowMs length of a window @default 10000
   */
  constructor(
    private readonly limit = 5,
    private readonly windowMs = 10_000,
  ) {}
  /** Logs `msg` as a warning unless `key` used up its lines in this window. */
  warn(key: string, msg: string): void {
    const now = Date.now();
    let c = this.counts.get(key);
    if (!c || now - c.since > this.windowMs) {
      if (c && c.n > this.limit) log.warn(`${c.n - this.limit} more like "${key}" suppressed`);
      c = { n: 0, since: now };
      this.counts.set(key, c);
    }
    c.n++;
    if (c.n <= this.limit) log.warn(msg);
  }
}
