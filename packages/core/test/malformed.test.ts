import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Child } from './helpers/procs';
import { until } from './helpers/poll';

let child: Child | undefined;
afterEach(() => {
  if (child && child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
  child = undefined;
});

test('random and malformed frames on every socket are dropped with a log line and break nothing', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-fuzz-'));
  try {
    const c = (child = Child.start(process.execPath, [path.join(__dirname, 'drivers', 'fuzz.js')], { TSRAY_TMPDIR: tmp }));
    const [, sent, count, kinds] = await c.waitFor(/SENT (\d+) frames to (\d+) sockets: (\w+)/);
    // every receiver has read all its frames once it logs dropping the last one
    const ids = Array.from({ length: Number(count) }, (_, i) => i);
    await until(() => ids.every((i) => c.err.includes(`dropped a message with 3 frames (expected 1) from fuzzer-${i}`)), 'every socket to read its frames');
    c.proc.kill('SIGUSR2');
    expect(Number(sent)).toBeGreaterThan(100);
    // head, node manager, driver and workers all listen
    expect(kinds).toMatch(/d/);
    expect(kinds).toMatch(/h/);
    expect(kinds).toMatch(/n/);
    expect(kinds).toMatch(/w/);
    expect(Number(count)).toBeGreaterThanOrEqual(4);
    await c.waitFor(/OK \[42,3,"still here"\] 5/);
    expect((await c.exited).code).toBe(0);
    expect(c.err).toMatch(/dropped a malformed message/);
    expect(c.err).not.toMatch(/exited unexpectedly|uncaught|FATAL|Segmentation/i);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
