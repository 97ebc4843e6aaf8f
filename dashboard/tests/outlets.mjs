// Browser test of the outlet page (网点分析): a team supervisor opens the team's outlets and
// sees every outlet of the API's answer, with its grade, dormant flag and days since the last
// visit, and is refused another team's; a headquarters user sees the branches' summaries by
// grade, 破零 and dormancy, each figure as the API gives it, and goes down to a branch.
//
//   node dashboard/tests/outlets.mjs --base-url http://127.0.0.1:PORT --screenshot-dir DIR \
//        --supervisor NAME:PASSWORD --headquarters NAME:PASSWORD [--other-team T0002]
//
// The last line is "outlets: N passed, M failed"; the exit code is 1 when anything failed.

import { mkdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { browserContext as openBrowser } from './browser-context.mjs';
import { credentials, signInWithPassword } from './signin.mjs';

const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);
const opt = (name, fallback = undefined) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const baseUrl = (opt('base-url') ?? '').replace(/\/+$/, '');
const shotDir = resolve(opt('screenshot-dir', 'dashboard-screenshots'));
const timeout = Number(opt('timeout-ms', '60000'));
const executablePath = opt('chromium', '/usr/bin/chromium');
const supervisor = credentials(opt('supervisor'));
const headquarters = credentials(opt('headquarters'));
const otherTeam = opt('other-team', 'T0002');
if (!baseUrl || !supervisor || !headquarters) {
  console.error('usage: node outlets.mjs --base-url URL --supervisor NAME:PW --headquarters NAME:PW [--other-team T0002] --screenshot-dir DIR');
  process.exit(2);
}
const { chromium } = require('playwright-core');
if (!existsSync(executablePath)) {
  console.error(`no Chromium at ${executablePath}`);
  process.exit(2);
}
mkdirSync(shotDir, { recursive: true });

let passed = 0;
let failed = 0;
function check(ok, what, detail = '') {
  if (ok) passed += 1;
  else {
    failed += 1;
    console.log(`FAIL ${what}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}
const log = (msg) => console.log(`outlets: ${msg}`);

async function browserContext() {
  return openBrowser(chromium, {
    executablePath,
    timeout,
    name: 'outlets',
    // Refused API calls are the point of some checks.
    ignored: (text) => /status of 403/.test(text),
  });
}

// Opens the outlet page of a node (or of everything the user sees) and waits until it shows.
async function openOutlets(page, scope, id) {
  const node = scope ? `scope=${scope}&id=${encodeURIComponent(id)}&` : '';
  await page.goto(`${baseUrl}/#${node}page=outlets`);
  await page.waitForFunction(() => {
    const v = document.querySelector('#view');
    return v && v.dataset.state === 'ready' && document.querySelector('[data-card="outlet-summary"]');
  }, null, { timeout });
}

async function apiOutlets(context, scope, id) {
  const query = scope ? `?scope=${scope}&id=${encodeURIComponent(id)}` : '';
  const res = await context.request.get(`${baseUrl}/api/outlets${query}`);
  return { status: res.status(), body: res.status() === 200 ? await res.json() : null };
}

// The `data-raw` of every `[data-kpi]` of the rows of a card, by row id.
async function shownRows(page, card) {
  return page.$$eval(`[data-card="${card}"] tbody tr[data-row-id]`, (rows) => rows.map((tr) => {
    const figures = {};
    for (const el of tr.querySelectorAll('[data-kpi]')) figures[el.dataset.kpi] = el.dataset.raw;
    return { id: tr.dataset.rowId, scope: tr.dataset.rowScope, figures };
  }));
}

const raw = (v) => (v === null || v === undefined ? '' : String(v));

// Every figure a row shows equals the API's (flags show only when true).
function sameFigures(label, shown, rows) {
  const byId = new Map(rows.map((r) => [`${r.scope}/${r.scope_id}`, r]));
  let mismatches = 0;
  for (const row of shown) {
    const api = byId.get(`${row.scope}/${row.id}`);
    if (!api) {
      check(false, `${label}: row ${row.id} is in the API's answer`);
      continue;
    }
    for (const [kpi, value] of Object.entries(row.figures)) {
      const expected = ['dormant', 'breaks_zero'].includes(kpi) ? 'true' : raw(api[kpi]);
      if (value !== expected) {
        mismatches += 1;
        if (mismatches <= 5) console.log(`  ${row.id} ${kpi}: shown ${value}, API ${expected}`);
      }
    }
  }
  check(mismatches === 0, `${label}: every figure shown equals the API's`, `${mismatches} differ`);
}

async function checkSupervisor() {
  const { context, page, problems, close } = await browserContext();
  try {
    await signInWithPassword(page, baseUrl, supervisor.user, supervisor.password);
    const me = await (await context.request.get(`${baseUrl}/api/me`)).json();
    const team = me.home?.id;
    check(me.role === 'supervisor' && Boolean(team), 'supervisor signed in with a team', JSON.stringify(me));
    const { status, body } = await apiOutlets(context, 'team', team);
    check(status === 200, `supervisor: API answers the team's outlets`, String(status));
    const outlets = body?.outlets ?? [];
    check(outlets.length > 0, `supervisor: the team ${team} has outlets`, String(outlets.length));
    check(outlets.every((o) => o.team_id === team), 'supervisor: every outlet in the answer is the team\'s');
    await openOutlets(page, 'team', team);
    const shown = await shownRows(page, 'outlet-list');
    check(shown.length === outlets.length, 'supervisor: the list shows every outlet of the answer', `${shown.length} of ${outlets.length}`);
    check(JSON.stringify(shown.map((r) => r.id)) === JSON.stringify(outlets.map((o) => o.scope_id)),
      'supervisor: in the answer\'s order (dormant first)');
    sameFigures('supervisor list', shown, outlets);
    const dormant = outlets.filter((o) => o.dormant === true).length;
    const badges = await page.$$eval('[data-card="outlet-list"] [data-kpi="dormant"]', (els) => els.length);
    check(badges === dormant, 'supervisor: one dormant badge per dormant outlet', `${badges} badges, ${dormant} dormant`);
    const summary = await shownRows(page, 'outlet-summary');
    sameFigures('supervisor summary', summary, body?.summary ?? []);
    check(summary.some((r) => r.scope === 'team' && r.id === team), 'supervisor: the summary has the team\'s row');
    await page.screenshot({ path: join(shotDir, 'outlets-supervisor.png'), fullPage: true });

    // Another team's outlets: the API refuses, and the page says it is not yours.
    check((await apiOutlets(context, 'team', otherTeam)).status === 403, `supervisor: API refuses ${otherTeam}'s outlets`);
    await page.goto(`${baseUrl}/#scope=team&id=${encodeURIComponent(otherTeam)}&page=outlets`);
    await page.waitForSelector('.error-card', { timeout });
    const detail = await page.textContent('.error-card .error-detail');
    check(/管辖范围|outside your scope/.test(detail ?? ''), `supervisor: ${otherTeam}'s outlet page is refused`, detail);
    check(problems.length === 0, 'supervisor: no script errors', problems.join(' | '));
  } finally {
    await close();
  }
}

async function checkHeadquarters() {
  const { context, page, problems, close } = await browserContext();
  try {
    await signInWithPassword(page, baseUrl, headquarters.user, headquarters.password);
    const { status, body } = await apiOutlets(context, null, null);
    check(status === 200, 'headquarters: API answers the whole organisation', String(status));
    await openOutlets(page, null, null);
    const summary = await shownRows(page, 'outlet-summary');
    check(summary.length > 0 && summary.length === (body?.summary ?? []).length,
      'headquarters: one summary row per row of the answer', `${summary.length} of ${(body?.summary ?? []).length}`);
    sameFigures('headquarters summary', summary, body?.summary ?? []);
    const grades = ['a', 'b', 'c', 'd'].map((g) => summary.reduce((n, r) => n + Number(r.figures[`grade_${g}_outlets`] || 0), 0));
    check(grades.every((n) => n > 0), 'headquarters: outlets in every grade', grades.join('/'));
    const dormant = summary.reduce((n, r) => n + Number(r.figures.dormant_outlets || 0), 0);
    check(dormant > 0, 'headquarters: dormant outlets are shown', String(dormant));
    await page.screenshot({ path: join(shotDir, 'outlets-headquarters.png') });

    // Down to the first branch from its summary row.
    const branch = summary.find((r) => r.scope === 'branch');
    if (check(Boolean(branch), 'headquarters: a branch row in the summary')) {
      await page.click(`[data-card="outlet-summary"] tr[data-nav-scope="branch"][data-nav-id="${branch.id}"]`);
      await page.waitForFunction((id) => {
        const v = document.querySelector('#view');
        return v && v.dataset.state === 'ready' && v.dataset.viewId === id && document.querySelector('[data-card="outlet-list"]');
      }, branch.id, { timeout });
      const { body: ofBranch } = await apiOutlets(context, 'branch', branch.id);
      const shown = await shownRows(page, 'outlet-list');
      check(shown.length === (ofBranch?.outlets ?? []).length, `headquarters: ${branch.id}'s outlets listed`,
        `${shown.length} of ${(ofBranch?.outlets ?? []).length}`);
      sameFigures(`headquarters ${branch.id} list`, shown, ofBranch?.outlets ?? []);
    }
    // In English.
    await page.goto(`${baseUrl}/?lang=en#page=outlets`);
    await page.waitForSelector('[data-card="outlet-summary"]', { timeout });
    const heading = await page.textContent('[data-card="outlet-summary"]');
    check(/Outlets|outlets/.test(heading ?? ''), 'headquarters: the page speaks English with ?lang=en');
    check(problems.length === 0, 'headquarters: no script errors', problems.join(' | '));
  } finally {
    await close();
  }
}

const browserFailed = async (what, run) => {
  try {
    await run();
  } catch (error) {
    check(false, what, error.message);
  }
};
await browserFailed('supervisor', checkSupervisor);
await browserFailed('headquarters', checkHeadquarters);
log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
