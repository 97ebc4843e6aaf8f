// Runs the browser test against the mock server and its fixtures (no Rust server needed):
//
//   node dashboard/tests/run-against-mock.mjs [--screenshot-dir DIR]
//
// Starts mock-server.mjs on a free loopback port, runs browser.mjs for team T0001 with
// fixtures/expected-T0001.json, stops the server, and exits with the test's exit code.

import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const i = argv.indexOf('--screenshot-dir');
const shots = resolve(i >= 0 ? argv[i + 1] : join(HERE, 'screenshots'));

const mock = spawn(process.execPath, [join(HERE, 'mock-server.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((ok, fail) => {
  let buf = '';
  mock.stdout.on('data', (chunk) => {
    buf += chunk;
    const m = /listening on (http:\/\/\S+)/.exec(buf);
    if (m) ok(m[1]);
  });
  mock.on('exit', (code) => fail(new Error(`mock server exited with ${code}`)));
  setTimeout(() => fail(new Error('mock server did not start')), 10_000);
});

const test = spawn(process.execPath, [
  join(HERE, 'browser.mjs'),
  '--base-url', url,
  '--team', 'T0001',
  '--expect', join(HERE, 'fixtures', 'expected-T0001.json'),
  '--screenshot-dir', shots,
], { stdio: 'inherit' });
const code = await new Promise((ok) => test.on('exit', (c) => ok(c ?? 1)));
mock.kill('SIGTERM');
process.exit(code);
