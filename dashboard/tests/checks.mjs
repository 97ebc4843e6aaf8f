// What the browser tests of one page share: reading `--name value` options, counting checks
// and ending with "NAME: N passed, M failed" (exit code 1 when anything failed).

import { mkdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { credentials } from './signin.mjs';

export function options(argv = process.argv.slice(2)) {
  const opt = (name, fallback = undefined) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
  };
  const shotDir = resolve(opt('screenshot-dir', 'dashboard-screenshots'));
  // Screenshots are prefixed with --label when a script runs against more than one store.
  const prefix = opt('label') ? `${opt('label')}-` : '';
  return {
    opt,
    baseUrl: (opt('base-url') ?? '').replace(/\/+$/, ''),
    shotDir,
    shot: (name) => join(shotDir, `${prefix}${name}`),
    timeout: Number(opt('timeout-ms', '60000')),
    executablePath: opt('chromium', '/usr/bin/chromium'),
    supervisor: credentials(opt('supervisor')),
    headquarters: credentials(opt('headquarters')),
    otherTeam: opt('other-team', 'T0002'),
  };
}

// The Chromium driver, or exit 2 when there is none (with the usage line when options are
// missing).
export function chromiumFor(o, usage) {
  if (!o.baseUrl || !o.supervisor || !o.headquarters) {
    console.error(usage);
    process.exit(2);
  }
  if (!existsSync(o.executablePath)) {
    console.error(`no Chromium at ${o.executablePath}`);
    process.exit(2);
  }
  mkdirSync(o.shotDir, { recursive: true });
  return createRequire(import.meta.url)('playwright-core').chromium;
}

export class Checks {
  constructor(name) {
    this.name = name;
    this.passed = 0;
    this.failed = 0;
  }

  check(ok, what, detail = '') {
    if (ok) this.passed += 1;
    else {
      this.failed += 1;
      console.log(`FAIL ${what}${detail ? `: ${detail}` : ''}`);
    }
    return ok;
  }

  // Runs one user's part; an exception is a failed check, not a crash of the script.
  async part(what, run) {
    try {
      await run();
    } catch (error) {
      this.check(false, what, error.message);
    }
  }

  finish() {
    console.log(`${this.name}: ${this.passed} passed, ${this.failed} failed`);
    process.exit(this.failed === 0 ? 0 : 1);
  }
}

export const raw = (v) => (v === null || v === undefined ? '' : String(v));
