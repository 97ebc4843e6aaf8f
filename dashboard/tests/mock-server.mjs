// A stand-in for the Rust dashboard server during development and in the browser test:
// serves dashboard/web/ at / and the JSON files of fixtures/ at the API paths.
//
//   node dashboard/tests/mock-server.mjs [--port 8787] [--host 127.0.0.1] [--live] [--delay MS]
//
//   GET /api/me                        -> a headquarters user (sees everything)
//   GET /api/meta                      -> fixtures/meta.json
//   GET /api/scope?scope=team&id=T0001 -> fixtures/scope-team-T0001.json
//   anything unknown under /api/       -> 404 {"error": "..."}
//
// --live     stamps generated_at with the current time, so the page looks freshly computed.
// --delay MS waits before every API answer (to see the loading state).
// With --port 0 the system picks a free port; the first line printed is
// "mock: listening on http://HOST:PORT".

import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const WEB = resolve(HERE, '..', 'web');
const FIXTURES = join(HERE, 'fixtures');

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const port = Number(opt('port', '8787'));
const host = opt('host', '127.0.0.1');
const live = args.includes('--live');
const delay = Number(opt('delay', '0'));

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

function send(res, status, body, type) {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}
const sendJson = (res, status, value) => send(res, status, JSON.stringify(value), TYPES['.json']);

function nowStamp() {
  // The current time written as +08:00, like the server's generated_at.
  const d = new Date(Date.now() + 8 * 3600_000);
  return `${d.toISOString().slice(0, 19)}+08:00`;
}

async function fixture(name) {
  const text = await readFile(join(FIXTURES, name), 'utf8');
  return JSON.parse(text);
}

async function handleApi(url, res) {
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  try {
    if (url.pathname === '/api/me') {
      // The mock serves a headquarters user who sees everything.
      return sendJson(res, 200, {
        user: 'mock-hq', method: 'password', role: 'headquarters', scope: { level: 'all', id: null },
        home: null, agent_names: true, csrf: 'mock', idle_minutes: 30,
      });
    }
    if (url.pathname === '/api/meta') {
      const meta = await fixture('meta.json');
      if (live) meta.generated_at = nowStamp();
      return sendJson(res, 200, meta);
    }
    if (url.pathname === '/api/history') {
      // The fixtures hold one run: its month, open.
      const meta = await fixture('meta.json');
      const month = String(meta.month_start ?? meta.as_of).slice(0, 7);
      return sendJson(res, 200, {
        latest: meta.as_of,
        months: [{ month, as_of: meta.as_of, final: false }],
        runs: [{ as_of: meta.as_of, month }],
      });
    }
    if (url.pathname === '/api/scope') {
      const scope = url.searchParams.get('scope') ?? '';
      const id = url.searchParams.get('id') ?? '';
      if (!['region', 'branch', 'team', 'agent'].includes(scope)) {
        return sendJson(res, 400, { error: `scope must be region, branch, team or agent, not "${scope}"` });
      }
      if (!/^[A-Za-z0-9_-]+$/.test(id)) return sendJson(res, 400, { error: 'id is missing or malformed' });
      try {
        return sendJson(res, 200, await fixture(`scope-${scope}-${id}.json`));
      } catch (e) {
        if (e.code === 'ENOENT') return sendJson(res, 404, { error: `no ${scope} with id ${id}` });
        throw e;
      }
    }
    return sendJson(res, 404, { error: `no such endpoint: ${url.pathname}` });
  } catch (e) {
    return sendJson(res, 500, { error: `mock server: ${e.message}` });
  }
}

async function handleStatic(url, res) {
  let path = decodeURIComponent(url.pathname);
  if (path.endsWith('/')) path += 'index.html';
  const file = normalize(join(WEB, path));
  if (file !== WEB && !file.startsWith(WEB + sep)) return send(res, 403, 'forbidden', 'text/plain');
  try {
    const info = await stat(file);
    if (!info.isFile()) return send(res, 404, 'not found', 'text/plain');
    const body = await readFile(file);
    return send(res, 200, body, TYPES[extname(file)] ?? 'application/octet-stream');
  } catch {
    return send(res, 404, 'not found', 'text/plain');
  }
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed', 'text/plain');
  if (url.pathname.startsWith('/api/')) return handleApi(url, res);
  return handleStatic(url, res);
});

server.listen(port, host, () => {
  const { port: actual } = server.address();
  console.log(`mock: listening on http://${host}:${actual}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
