// Two drivers of one cluster (started with `tsray start`): the first makes a
// detached named actor and exits; the second finds it, uses it and kills it.
// Mode anon: a driver without a namespace names an actor, prints its
// namespace and waits for a gate file, so that two can run side by side.
const fs = require('node:fs');
const ray = require('@tsray/core');

class Store {
  constructor() {
    this.items = [];
  }
  add(x) {
    this.items.push(x);
    return this.items.length;
  }
  all() {
    return this.items;
  }
}
const StoreActor = ray.remote(Store);

/** Whether a named actor is gone, polled until `deadline`. */
async function nameReleased(name) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const state = await ray.getActor(name).then(() => 'alive', (e) => e.name);
    if (state !== 'alive' || Date.now() > deadline) return state;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function anon(gate) {
  await ray.init({ address: 'auto', logToDriver: false });
  const s = StoreActor.options({ name: 'same-name' }).remote();
  await ray.get(s.add.remote(process.pid));
  console.log(`NS ${ray.getRuntimeContext().namespace}`);
  console.log(`NAMES ${JSON.stringify(await ray.listNamedActors())}`);
  while (!fs.existsSync(gate)) await new Promise((r) => setTimeout(r, 20));
  await ray.shutdown();
}

async function main(role) {
  if (role === 'anon') return anon(process.argv[3]);
  await ray.init({ address: 'auto', namespace: 'detached-test', logToDriver: false });
  if (role === 'create') {
    const s = StoreActor.options({ name: 'store', lifetime: 'detached' }).remote();
    await ray.get(s.add.remote('from the first driver'));
    const temp = StoreActor.options({ name: 'temp' }).remote();
    await ray.get(temp.add.remote(1));
    console.log('CREATED');
  } else if (role === 'use') {
    const s = await ray.getActor('store');
    console.log(`COUNT ${await ray.get(s.add.remote('from the second driver'))}`);
    console.log(`ITEMS ${JSON.stringify(await ray.get(s.all.remote()))}`);
    console.log(`TEMP ${await ray.getActor('temp').then(() => 'alive', (e) => e.name)}`);
    ray.kill(s);
    console.log(`AFTER KILL ${await nameReleased('store')}`);
  }
  await ray.shutdown();
}

if (require.main === module) main(process.argv[2]);
