// Worker output reaches the driver with a (name pid=N) prefix; with
// logToDriver: false it goes to the session's log files instead.
const fs = require('node:fs');
const path = require('node:path');
const ray = require('@tsray/core');

const shout = ray.remote((text) => {
  console.log(text);
  console.error(`err: ${text}`);
  return process.pid;
});
class Printer {
  say(text) {
    console.log(`actor says ${text}`);
    return process.pid;
  }
}
const PrinterActor = ray.remote(Printer);

/** Text of the session's worker log files. */
function sessionLogs() {
  const root = path.join(process.env.TSRAY_TMPDIR, 'tsray');
  let out = '';
  for (const s of fs.readdirSync(root).filter((d) => d.startsWith('session_'))) {
    const dir = path.join(root, s, 'logs');
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir)) out += fs.readFileSync(path.join(dir, f), 'utf8');
  }
  return out;
}

async function until(cond, what) {
  const deadline = Date.now() + 15_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(mode) {
  if (mode === 'quiet') {
    await ray.init({ numCpus: 1, logToDriver: false });
    const pid = await ray.get(shout.remote('hello from a quiet task'));
    // the line went somewhere: to the log file, not to this terminal
    await until(() => sessionLogs().includes('hello from a quiet task'), 'the line in the session log');
    console.log(`LOGGED ${pid}`);
    await ray.shutdown();
    return;
  }
  await ray.init({ numCpus: 1 });
  const pid = await ray.get(shout.remote('hello from a task'));
  const p = PrinterActor.remote();
  const apid = await ray.get(p.say.remote('hi'));
  // the test signals once it has seen the output (it travels through the node manager)
  const go = new Promise((r) => process.once('SIGUSR2', r));
  console.log(`PIDS ${pid} ${apid}`);
  await go;
  await ray.shutdown();
}

if (require.main === module) main(process.argv[2]);
