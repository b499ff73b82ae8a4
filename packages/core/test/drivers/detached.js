// Two drivers of one cluster (started with `tsray start`): the first makes a
// detached named actor and exits; the second finds it, uses it and kills it.
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

async function main(role) {
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
    await new Promise((r) => setTimeout(r, 200));
    console.log(`AFTER KILL ${await ray.getActor('store').then(() => 'alive', (e) => e.name)}`);
  }
  await ray.shutdown();
}

if (require.main === module) main(process.argv[2]);
