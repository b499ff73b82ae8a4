// Joins the cluster of this machine and submits a task no node can hold, so
// that it shows as pending demand; then waits to be killed.
const ray = require('@tsray/core');

const wants = ray.remote(function wants() {
  return 1;
});

if (require.main === module) {
  ray.init({ address: 'auto', logToDriver: false }).then(() => {
    wants.options({ resources: { joined: 5 } }).remote();
    console.log('SUBMITTED');
    setInterval(() => undefined, 1000);
  });
}
