// Browser test of names, exports, printing, history and the language in the URL, for a team
// supervisor, a headquarters user and (when given) an analyst without the names grant:
//
//   node dashboard/tests/history_export.mjs --base-url URL --screenshot-dir DIR --label embedded \
//        --supervisor NAME:PW --headquarters NAME:PW [--analyst NAME:PW] --team T0001 \
//        --branch B001 --earlier-as-of YYYY-MM-DD \
//        (--kpi-dir DIR | --clickhouse URL --database DB --ch-user U --ch-password P)
//
// Exports are downloaded by clicking the page's buttons and checked against the KPI store
// by export_check.py (openpyxl for XLSX); the weekly review sheets are printed to PDF as A4
// landscape and shot in print media. The last line is "history_export: N passed, M failed".

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { browserContext as openBrowser } from './browser-context.mjs';
import { credentials, signInWithPassword } from './signin.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);
const opt = (name, fallback = undefined) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const baseUrl = (opt('base-url') ?? '').replace(/\/+$/, '');
const shotDir = resolve(opt('screenshot-dir', 'dashboard-screenshots'));
const label = opt('label', 'embedded');
const timeout = Number(opt('timeout-ms', '60000'));
const executablePath = opt('chromium', '/usr/bin/chromium');
const supervisor = credentials(opt('supervisor'));
const headquarters = credentials(opt('headquarters'));
const analyst = credentials(opt('analyst'));
const team = opt('team', 'T0001');
const branch = opt('branch', 'B001');
const earlierAsOf = opt('earlier-as-of');
const store = opt('kpi-dir')
  ? ['--kpi-dir', opt('kpi-dir')]
  : ['--clickhouse', opt('clickhouse'), '--database', opt('database'), '--user', opt('ch-user', 'default'), '--password', opt('ch-password', '')];
if (!baseUrl || !supervisor || !headquarters || !earlierAsOf) {
  console.error('usage: node history_export.mjs --base-url URL --supervisor NAME:PW --headquarters NAME:PW --earlier-as-of DATE (--kpi-dir DIR | --clickhouse URL ...)');
  process.exit(2);
}
const { chromium } = require('playwright-core');

let passed = 0;
let failed = 0;
function check(ok, what, detail = '') {
  if (ok) passed += 1;
  else {
    failed += 1;
    console.log(`FAIL [${label}] ${what}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}
const log = (msg) => console.log(`history_export [${label}]: ${msg}`);
const shot = (name) => join(shotDir, `${label}-${name}`);
const CJK = /^[\u4e00-\u9fff]{2,4}$/;

async function browserContext() {
  return openBrowser(chromium, { executablePath, timeout, name: 'history', acceptDownloads: true });
}

async function ready(page, scope, id) {
  await page.waitForFunction(([s, i]) => {
    const v = document.querySelector('#view');
    return v && v.dataset.state === 'ready' && v.dataset.viewScope === s && v.dataset.viewId === i
      && !document.querySelector('#loading-bar:not([hidden])');
  }, [scope, id], { timeout });
}

async function apiJson(page, path) {
  return page.evaluate(async (p) => (await fetch(p, { cache: 'no-store' })).json(), path);
}

// Clicks an export button of a card and keeps the file: its path.
async function download(page, card, format, name) {
  const [file] = await Promise.all([
    page.waitForEvent('download'),
    page.click(`[data-card="${card}"] form.export button[data-format="${format}"]`),
  ]);
  const path = shot(name);
  await file.saveAs(path);
  return path;
}

function checkExport(path, month, asOf, names) {
  const run = spawnSync('python3', [join(here, 'export_check.py'), path, '--team', team, '--month', month, '--as-of', asOf, ...store, '--names', names], { encoding: 'utf8' });
  check(run.status === 0, `${path} equals the KPI store`, `${run.stdout}${run.stderr}`.trim());
  if (run.status === 0) log(run.stdout.trim());
}

function monthOf(date) {
  return String(date).slice(0, 7);
}

async function supervisorChecks() {
  const { page, problems, close } = await browserContext();
  try {
    await signInWithPassword(page, baseUrl, supervisor.user, supervisor.password);
    await ready(page, 'team', team);
    const meta = await apiJson(page, 'api/meta');
    const month = monthOf(meta.month_start);

    // Names: the supervisor sees the team's agents by name.
    const names = await page.$$eval('[data-card="children"] tr[data-child-id] .cell-name', (els) => els.map((e) => e.textContent));
    check(names.length > 0 && names.every((n) => /^[\u4e00-\u9fff]{2,4}$/.test(n)), 'the supervisor sees agents by name', names.join(','));

    // Exports of the members table and the review sheet, checked against the KPI store.
    const xlsx = await download(page, 'children', 'xlsx', 'supervisor-members.xlsx');
    checkExport(xlsx, month, meta.as_of, 'required');
    const csv = await download(page, 'children', 'csv', 'supervisor-members.csv');
    checkExport(csv, month, meta.as_of, 'required');
    const review = await download(page, 'review', 'xlsx', 'supervisor-review.xlsx');
    check(readFileSync(review).subarray(0, 2).toString() === 'PK', 'the review sheet is a workbook');

    // Print: the team's review sheet alone, A4 landscape, without the navigation.
    await page.goto(`${baseUrl}/#scope=team&id=${team}&print=review`);
    await ready(page, 'team', team);
    await page.emulateMedia({ media: 'print' });
    const hidden = await page.$eval('.topbar', (el) => getComputedStyle(el).display === 'none');
    check(hidden, 'no navigation chrome in print');
    check(await page.$$eval('.print-sheet', (els) => els.length) === 1, 'one review sheet for one team');
    await page.screenshot({ path: shot('supervisor-review-print.png'), fullPage: true });
    const pdf = await page.pdf({ path: shot('supervisor-review.pdf'), format: 'A4', landscape: true, preferCSSPageSize: true });
    check(pdf.length > 1000, 'the review sheet prints to PDF');
    await page.emulateMedia({ media: 'screen' });

    // History: last month's final figures, then an earlier as-of run.
    await page.goto(`${baseUrl}/#scope=team&id=${team}`);
    await ready(page, 'team', team);
    const history = await apiJson(page, 'api/history');
    const last = history.months.find((m) => m.month < month);
    if (check(last, 'last month is listed', JSON.stringify(history.months))) {
      check(last.final === true, 'last month is final');
      await page.selectOption('#month-select', last.month);
      await page.waitForFunction((m) => window.location.hash.includes(`month=${m}`), last.month);
      await ready(page, 'team', team);
      await page.waitForSelector('[data-meta="viewing"]');
      const api = await apiJson(page, `api/scope?scope=team&id=${team}&month=${last.month}`);
      check(api.month?.period_start === `${last.month}-01`, 'the API gives last month', api.month?.period_start);
      const premium = await page.$eval('.pacing [data-kpi="premium"]', (el) => el.dataset.raw);
      check(premium === String(api.month?.premium ?? ''), 'the page shows last month\'s premium', `${premium} vs ${api.month?.premium}`);
      await page.screenshot({ path: shot('supervisor-last-month.png'), fullPage: true });
      const lastXlsx = await download(page, 'children', 'xlsx', 'supervisor-members-last-month.xlsx');
      checkExport(lastXlsx, last.month, last.as_of, 'required');
    }
    if (check(history.runs.some((r) => r.as_of === earlierAsOf), `the run as of ${earlierAsOf} is listed`, JSON.stringify(history.runs))) {
      await page.selectOption('#as-of-select', earlierAsOf);
      await page.waitForFunction((d) => window.location.hash.includes(`as_of=${d}`), earlierAsOf);
      await ready(page, 'team', team);
      await page.waitForFunction((d) => document.querySelector('[data-meta="as_of"]')?.textContent === d, earlierAsOf);
      const api = await apiJson(page, `api/scope?scope=team&id=${team}&as_of=${earlierAsOf}`);
      check(api.month?.as_of === earlierAsOf, 'the API gives the earlier run', api.month?.as_of);
      await page.screenshot({ path: shot('supervisor-earlier-as-of.png'), fullPage: true });
      // Navigating keeps the view.
      await page.click(`[data-card="children"] tr[data-child-id]`);
      await page.waitForFunction((d) => window.location.hash.includes('scope=agent') && window.location.hash.includes(`as_of=${d}`), earlierAsOf);
      check(true, 'navigating keeps the as-of date');
    }

    // Language in the URL, kept while navigating.
    await page.goto(`${baseUrl}/?lang=en#scope=team&id=${team}`);
    await ready(page, 'team', team);
    check(await page.evaluate(() => document.documentElement.lang) === 'en', '?lang=en sets English');
    check((await page.textContent('[data-card="review"] h2') ?? '').includes('plan & review'), 'English strings shown');
    await page.click(`[data-card="children"] tr[data-child-id]`);
    await page.waitForFunction(() => window.location.hash.includes('scope=agent'));
    check(new URL(page.url()).searchParams.get('lang') === 'en', 'the language is kept when navigating', page.url());
    await page.goto(`${baseUrl}/?lang=zh#scope=team&id=${team}`);
    await ready(page, 'team', team);
    check(await page.evaluate(() => document.documentElement.lang) === 'zh-CN', '?lang=zh sets Chinese');
    check(problems.length === 0, 'no browser errors (supervisor)', problems.join(' | '));
  } finally {
    await close();
  }
}

async function headquartersChecks() {
  const { page, problems, close } = await browserContext();
  try {
    await signInWithPassword(page, baseUrl, headquarters.user, headquarters.password);
    await page.goto(`${baseUrl}/#scope=branch&id=${branch}`);
    await ready(page, 'branch', branch);
    const meta = await apiJson(page, 'api/meta');
    const teams = meta.tree.flatMap((r) => r.branches).find((b) => b.id === branch)?.teams ?? [];
    const firstAgent = teams[0]?.agents?.[0];
    check(firstAgent && CJK.test(firstAgent.name ?? ''), 'headquarters gets agents\' names', JSON.stringify(firstAgent));

    // The ranking of the branch's teams, exported.
    const ranking = await download(page, 'ranking', 'xlsx', 'headquarters-ranking.xlsx');
    check(readFileSync(ranking).subarray(0, 2).toString() === 'PK', 'the ranking is a workbook');
    const atRisk = await page.$('[data-card="at-risk"] form.export');
    if (atRisk) await download(page, 'at-risk', 'csv', 'headquarters-at-risk.csv');

    // Printing every team's review sheet of the branch: a page each.
    await page.goto(`${baseUrl}/#scope=branch&id=${branch}&print=review`);
    await ready(page, 'branch', branch);
    const sheets = await page.$$eval('.print-sheet', (els) => els.length);
    check(sheets === teams.length && sheets > 1, 'a review sheet per team of the branch', `${sheets} of ${teams.length}`);
    await page.emulateMedia({ media: 'print' });
    const breaks = await page.$$eval('.print-sheet', (els) => els.map((el) => getComputedStyle(el).breakBefore));
    check(breaks.slice(1).every((b) => b === 'page'), 'a page break between teams', breaks.join(','));
    const repeated = await page.$eval('.print-sheet thead', (el) => getComputedStyle(el).display);
    check(repeated === 'table-header-group', 'table headers repeat on every page', repeated);
    await page.screenshot({ path: shot('headquarters-branch-review-print.png'), fullPage: true });
    const pdf = await page.pdf({ path: shot('headquarters-branch-review.pdf'), format: 'A4', landscape: true, preferCSSPageSize: true });
    const pages = (pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) ?? []).length;
    check(pages >= teams.length, 'at least a PDF page per team', `${pages} pages for ${teams.length} teams`);
    await page.emulateMedia({ media: 'screen' });

    // The team view exports for headquarters too, with names.
    await page.goto(`${baseUrl}/#scope=team&id=${team}`);
    await ready(page, 'team', team);
    const xlsx = await download(page, 'children', 'xlsx', 'headquarters-members.xlsx');
    checkExport(xlsx, monthOf(meta.month_start), meta.as_of, 'required');
    await page.screenshot({ path: shot('headquarters-team.png'), fullPage: true });
    check(problems.length === 0, 'no browser errors (headquarters)', problems.join(' | '));
  } finally {
    await close();
  }
}

async function analystChecks() {
  const { page, problems, close } = await browserContext();
  try {
    await signInWithPassword(page, baseUrl, analyst.user, analyst.password);
    await page.goto(`${baseUrl}/#scope=team&id=${team}`);
    await ready(page, 'team', team);
    const meta = await apiJson(page, 'api/meta');
    const named = meta.tree.flatMap((r) => r.branches).flatMap((b) => b.teams).flatMap((t) => t.agents).filter((a) => a.name);
    check(named.length === 0, 'the analyst gets no names in the tree', JSON.stringify(named.slice(0, 2)));
    const cells = await page.$$eval('[data-card="children"] tr[data-child-id] .cell-name', (els) => els.map((e) => e.textContent));
    check(cells.length > 0 && cells.every((c) => /^[A-Z]\d+$/.test(c)), 'the analyst sees ids only', cells.join(','));
    const xlsx = await download(page, 'children', 'xlsx', 'analyst-members.xlsx');
    checkExport(xlsx, monthOf(meta.month_start), meta.as_of, 'forbidden');
    await page.screenshot({ path: shot('analyst-team.png'), fullPage: true });
    check(problems.length === 0, 'no browser errors (analyst)', problems.join(' | '));
  } finally {
    await close();
  }
}

try {
  await supervisorChecks();
  await headquartersChecks();
  if (analyst) await analystChecks();
} catch (e) {
  check(false, 'the test ran to its end', e.stack ?? String(e));
}
writeFileSync(shot('history-export-result.txt'), `${passed} passed, ${failed} failed\n`);
console.log(`history_export: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
