import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Child } from './helpers/procs';
import { expectNothingBroke, runFuzz } from './helpers/fuzz';

let child: Child | undefined;
afterEach(() => {
  if (child && child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
  child = undefined;
});

test('random and malformed frames on every socket are dropped with a log line and break nothing', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-fuzz-'));
  try {
    const c = (child = Child.start(process.execPath, [path.join(__dirname, 'drivers', 'fuzz.js')], { TSRAY_TMPDIR: tmp }));
    const { sent, kinds, check } = await runFuzz(c);
    // head, node manager, driver and workers all listen, each sent a few hundred frames
    expect(kinds).toMatch(/d/);
    expect(kinds).toMatch(/h/);
    expect(kinds).toMatch(/n/);
    expect(kinds).toMatch(/w/);
    expect(sent).toBeGreaterThanOrEqual(300 * kinds.length);
    // the head, the node manager, its workers and the driver
    expect(check.pids.length).toBeGreaterThanOrEqual(4);
    expectNothingBroke(check);
    expect(c.err).toMatch(/dropped a malformed message/);
    expect(c.err).toMatch(/dropped a message with \d frames \(expected 1\)/);
    expect(c.err).not.toMatch(/exited unexpectedly|uncaught|FATAL|Segmentation|heap out of memory/i);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
