// A remote function defined in plain JavaScript: workers that run only this
// never load a TypeScript loader (the benchmark measures their memory).
const ray = require('@tsray/core');

exports.jsPid = ray.remote(function js_pid() {
  return process.pid;
});
