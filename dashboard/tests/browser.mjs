// Browser test of the web dashboard: drives Debian's Chromium with playwright-core.
//
//   node dashboard/tests/browser.mjs --base-url http://127.0.0.1:PORT --team T0001 \
//        --expect expected.json --screenshot-dir DIR [--timeout-ms 120000] [--width 1440] \
//        [--sign-in NAME:PASSWORD]
//
// expected.json: the KPI month row of the team as the KPI store has it (contract column names),
// optionally with the month row of one of its agents under "agent".
//
// Opens the base URL, clicks region → branch → team through the children tables, compares every
// KPI figure of the team (elements [data-kpi] inside the element naming the team's month row)
// with the expected row, drills into the agent the same way, walks back with the breadcrumb,
// follows a deep link, checks the language toggle, and saves screenshots. The last line is
// "browser: N passed, M failed"; the exit code is 1 when anything failed.

import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { credentials, signInWithPassword } from './signin.mjs';

const require = createRequire(import.meta.url);

// ---- arguments -------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const opt = (name, fallback = undefined) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const baseUrl = (opt('base-url') ?? '').replace(/\/+$/, '');
const teamId = opt('team');
const expectFile = opt('expect');
const shotDir = resolve(opt('screenshot-dir', 'dashboard-screenshots'));
const timeout = Number(opt('timeout-ms', '120000'));
const width = Number(opt('width', '1440'));
const executablePath = opt('chromium', '/usr/bin/chromium');
// A user who sees the whole organisation (headquarters), signed in first with the form.
const signIn = credentials(opt('sign-in'));

if (!baseUrl || !teamId || !expectFile) {
  console.error('usage: node browser.mjs --base-url URL --team TEAM_ID --expect FILE.json --screenshot-dir DIR');
  process.exit(2);
}

let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch {
  console.error('playwright-core is not installed: run `npm ci` in dashboard/tests');
  process.exit(2);
}
if (!existsSync(executablePath)) {
  console.error(`no Chromium at ${executablePath}: apt-get install -y chromium`);
  process.exit(2);
}

const expected = JSON.parse(readFileSync(expectFile, 'utf8'));
const expectedAgent = expected.agent && typeof expected.agent === 'object' ? expected.agent : null;

// ---- bookkeeping -----------------------------------------------------------------------------
let passed = 0;
let failed = 0;
function check(ok, what, detail = '') {
  if (ok) {
    passed += 1;
  } else {
    failed += 1;
    console.log(`FAIL ${what}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}
const log = (msg) => console.log(`browser: ${msg}`);

// Numbers within 1e-9, strings exactly, null ↔ "", booleans as "true"/"false".
function sameValue(raw, exp) {
  if (exp === null || exp === undefined) return raw === '';
  if (typeof exp === 'boolean') return raw === String(exp);
  if (typeof exp === 'number') {
    if (raw === '') return false;
    const v = Number(raw);
    return Number.isFinite(v) && (Math.abs(v - exp) <= 1e-9 || Math.abs(v - exp) <= 1e-12 * Math.abs(exp));
  }
  return raw === String(exp);
}

const PERCENT = new Set([
  'visit_coverage', 'outlet_activity_rate', 'close_rate', 'agent_activity_rate', 'premium_attainment',
  'outlet_activity_rate_target', 'outlet_activity_rate_attainment', 'plan_adherence_visits',
  'plan_adherence_consultations', 'plan_adherence_sales', 'time_progress', 'pace_gap',
  'projected_attainment', 'team_median_close_rate', 'trailing_close_rate',
  'visits_share', 'consultations_share', 'sales_share', 'planned_visits_share',
  'planned_consultations_share', 'planned_sales_share', 'norm_visits_share',
  'norm_consultations_share', 'norm_sales_share',
]);
const MONEY = new Set(['premium', 'premium_target', 'premium_per_sale', 'premium_needed', 'trailing_premium_per_sale']);
const REQUIRED = [
  'premium', 'premium_target', 'premium_attainment', 'time_progress', 'pace_gap', 'projected_attainment',
  'visits', 'outlets_visited', 'consultations', 'customers_consulted', 'sales', 'close_rate',
  'outlet_activity_rate', 'visit_coverage', 'premium_per_sale',
];
// Activity needed and the activity mix, on agent and team pages, when the row has them (a KPI
// run from before these columns has not).
const quotaRequired = (row) => (row && Object.hasOwn(row, 'needed_rates_basis')
  ? ['needed_rates_basis', 'visits_share', 'planned_visits_share', 'norm_visits_share']
  : []);

async function kpiElements(page) {
  return page.evaluate(() => [...document.querySelectorAll('#view [data-kpi]')].map((el) => {
    const row = el.closest('[data-row-id]');
    return {
      kpi: el.dataset.kpi,
      raw: el.getAttribute('data-raw'),
      text: el.textContent.trim(),
      scope: row?.dataset.rowScope ?? null,
      id: row?.dataset.rowId ?? null,
      period: row?.dataset.rowPeriod ?? null,
    };
  }));
}

// Compares the figures of one month row on the page with the expected row.
function compareRow(elements, scope, row, label, required) {
  const mine = elements.filter((e) => e.scope === scope && e.id === row.scope_id && e.period === 'month');
  check(mine.length > 0, `${label}: KPI figures on the page`, `no [data-kpi] inside a ${scope} ${row.scope_id} month row`);
  const seen = new Set();
  for (const e of mine) {
    seen.add(e.kpi);
    if (!check(Object.hasOwn(row, e.kpi), `${label} ${e.kpi}`, 'the page shows a column the expected row does not have')) continue;
    const exp = row[e.kpi];
    check(e.raw !== null, `${label} ${e.kpi} data-raw`, 'missing data-raw attribute');
    check(sameValue(e.raw ?? '', exp), `${label} ${e.kpi}`, `page data-raw ${JSON.stringify(e.raw)} (shown "${e.text}"), expected ${JSON.stringify(exp)}`);
    if (exp === null || exp === undefined) {
      check(e.text === '—', `${label} ${e.kpi} null shown as —`, `shown "${e.text}"`);
    } else if (MONEY.has(e.kpi)) {
      check(/^−?¥\d{1,3}(,\d{3})*$/.test(e.text), `${label} ${e.kpi} format`, `shown "${e.text}"`);
    } else if (PERCENT.has(e.kpi)) {
      check(/^[+−]?\d+\.\d%$/.test(e.text), `${label} ${e.kpi} format`, `shown "${e.text}"`);
    }
  }
  for (const col of required) check(seen.has(col), `${label} shows ${col}`, 'no element with this data-kpi');
  return mine.length;
}

async function waitView(page, scope, id) {
  const sel = `#view[data-state="ready"][data-view-scope="${scope}"][data-view-id="${id}"]`;
  try {
    await page.waitForSelector(sel, { timeout });
    return true;
  } catch {
    const st = await page.evaluate(() => {
      const v = document.querySelector('#view');
      return v ? `${v.dataset.state} ${v.dataset.viewScope}/${v.dataset.viewId}: ${v.textContent.trim().slice(0, 200)}` : 'no #view';
    }).catch(() => 'page gone');
    check(false, `view ${scope} ${id} loads`, `timed out after ${timeout} ms; page is ${st}`);
    return false;
  }
}

async function clickChild(page, scope, id) {
  const row = page.locator(`#view [data-card="children"] [data-child-id="${id}"]`);
  if (!check(await row.count() === 1, `row ${id} in the children table`, `found ${await row.count()}`)) return false;
  await row.click();
  return waitView(page, scope, id);
}

async function settle(page) {
  // Let chart animations finish before a screenshot.
  await page.waitForTimeout(700);
}

// ---- run -------------------------------------------------------------------------------------
const userDataDir = mkdtempSync(join(tmpdir(), 'aqs-chromium-'));
mkdirSync(shotDir, { recursive: true });
const consoleErrors = [];
const failedRequests = [];
let context;

async function main() {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width, height: 900 },
    deviceScaleFactor: 1,
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
  });
  context.setDefaultTimeout(timeout);
  const page = context.pages()[0] ?? await context.newPage();
  const watch = (p) => {
    p.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    p.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
    p.on('requestfailed', (r) => failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
    p.on('response', (r) => {
      if (r.status() >= 400) failedRequests.push(`${r.request().method()} ${r.url()}: HTTP ${r.status()}`);
    });
  };
  watch(page);

  if (signIn) {
    await signInWithPassword(page, baseUrl, signIn.user, signIn.password);
    log(`signed in as ${signIn.user}`);
  }

  // Where the team sits in the tree (asked with the browser's session).
  let meta;
  try {
    const res = await context.request.get(`${baseUrl}/api/meta`, { timeout });
    check(res.ok(), 'GET /api/meta', `status ${res.status()}`);
    meta = await res.json();
  } catch (e) {
    check(false, 'GET /api/meta', e.message);
    return;
  }
  let regionId = null;
  let branchId = null;
  for (const r of meta.tree ?? []) for (const b of r.branches ?? []) for (const tm of b.teams ?? []) {
    if (tm.id === teamId) {
      regionId = r.id;
      branchId = b.id;
    }
  }
  if (!check(regionId && branchId, `team ${teamId} in the tree of /api/meta`)) return;
  check(expected.scope_id === undefined || expected.scope_id === teamId, 'expected file is for the team', `scope_id ${expected.scope_id}`);

  // Overview → region → branch → team, by clicking rows.
  await page.goto(`${baseUrl}/`, { waitUntil: 'domcontentloaded', timeout });
  if (!await waitView(page, 'root', '')) return;
  log('overview loaded');
  if (!await clickChild(page, 'region', regionId)) return;
  check(await page.evaluate(() => location.hash) === `#scope=region&id=${regionId}`, 'hash after clicking the region');
  if (!await clickChild(page, 'branch', branchId)) return;
  if (!await clickChild(page, 'team', teamId)) return;
  check(await page.evaluate(() => location.hash) === `#scope=team&id=${teamId}`, 'hash after clicking the team', await page.evaluate(() => location.hash));
  log(`team ${teamId} loaded`);

  // The team view.
  let elements = await kpiElements(page);
  const nTeam = compareRow(elements, 'team', { scope_id: teamId, ...expected }, `team ${teamId}`, [...REQUIRED, 'agent_activity_rate', ...quotaRequired(expected)]);
  log(`team view: compared ${nTeam} figures of the team's month row`);
  if (expectedAgent) {
    const nRow = elements.filter((e) => e.scope === 'agent' && e.id === expectedAgent.scope_id && e.period === 'month').length;
    if (nRow) compareRow(elements, 'agent', expectedAgent, `team view, agent ${expectedAgent.scope_id}`, []);
  }
  check(await page.locator('#view [data-card="children"] [data-child-id]').count() > 0, 'children table has agent rows');
  for (const cardName of ['ranking', 'at-risk', 'trend', 'quadrant', 'review']) {
    check(await page.locator(`#view [data-card="${cardName}"]`).count() === 1, `team view has the ${cardName} card`);
  }
  check(await page.locator('#view canvas').count() >= 3, 'team view draws its charts');
  const status = await page.locator('#status').textContent();
  check(status.includes(meta.as_of), 'status line shows the as-of date', status);
  await settle(page);
  await page.screenshot({ path: join(shotDir, 'team.png'), fullPage: true });

  // The agent view.
  const agentId = expectedAgent?.scope_id
    ?? await page.locator('#view [data-card="children"] [data-child-id]').first().getAttribute('data-child-id');
  if (await clickChild(page, 'agent', agentId)) {
    log(`agent ${agentId} loaded`);
    check(await page.evaluate(() => location.hash) === `#scope=agent&id=${agentId}`, 'hash after clicking the agent');
    if (expectedAgent) {
      elements = await kpiElements(page);
      const n = compareRow(elements, 'agent', expectedAgent, `agent ${agentId}`, [...REQUIRED, ...quotaRequired(expectedAgent)]);
      log(`agent view: compared ${n} figures of the agent's month row`);
    }
    await settle(page);
    await page.screenshot({ path: join(shotDir, 'agent.png'), fullPage: true });

    // Back up with the breadcrumb.
    await page.locator('#breadcrumb a[data-crumb="team"]').click();
    if (await waitView(page, 'team', teamId)) check(true, 'breadcrumb leads back to the team');
  }

  // A link reproduces the view.
  const deep = await context.newPage();
  watch(deep);
  await deep.goto(`${baseUrl}/#scope=team&id=${encodeURIComponent(teamId)}`, { waitUntil: 'domcontentloaded', timeout });
  if (await waitView(deep, 'team', teamId)) {
    const again = await kpiElements(deep);
    const premium = again.find((e) => e.kpi === 'premium' && e.id === teamId && e.period === 'month');
    check(premium && sameValue(premium.raw, expected.premium), 'deep link shows the same team figures');
  }
  await deep.close();

  // Chinese ↔ English.
  const labels = async () => page.evaluate(() => ({
    lang: document.documentElement.lang,
    heads: [...document.querySelectorAll('#view .card-head h2')].map((h) => h.textContent.trim()),
    title: document.querySelector('.brand-title')?.textContent.trim(),
  }));
  const zh = await labels();
  check(zh.lang === 'zh-CN', 'default language is Chinese', zh.lang);
  check(zh.heads.some((h) => /[\u4e00-\u9fff]/.test(h)), 'Chinese card titles', zh.heads.join(' | '));
  await page.locator('#lang-en').click();
  await page.waitForFunction(() => document.documentElement.lang === 'en', null, { timeout });
  const en = await labels();
  check(en.title !== zh.title, 'toggle changes the header title', `${zh.title} → ${en.title}`);
  check(en.heads.length === zh.heads.length && en.heads.every((h, i) => h !== zh.heads[i]), 'toggle changes every card title', en.heads.join(' | '));
  check(en.heads.every((h) => !/[\u4e00-\u9fff]/.test(h)), 'English card titles have no Chinese', en.heads.join(' | '));
  elements = await kpiElements(page);
  const enPremium = elements.find((e) => e.kpi === 'premium' && e.id === teamId && e.period === 'month');
  check(enPremium && sameValue(enPremium.raw, expected.premium), 'figures survive the language switch');
  await page.reload({ waitUntil: 'domcontentloaded' });
  await waitView(page, 'team', teamId);
  check(await page.evaluate(() => document.documentElement.lang) === 'en', 'language choice is remembered after reload');
  await settle(page);
  await page.screenshot({ path: join(shotDir, 'team-en.png'), fullPage: true });
  await page.locator('#lang-zh').click();
  await page.waitForFunction(() => document.documentElement.lang === 'zh-CN', null, { timeout });
  check(true, 'toggle back to Chinese');

  // A scope the server does not know gives a friendly message, not a blank page.
  await page.goto(`${baseUrl}/#scope=team&id=NO_SUCH_TEAM`, { waitUntil: 'domcontentloaded' });
  try {
    await page.waitForSelector('#view[data-state="error"] .error-card', { timeout });
    check(true, 'unknown scope shows an error card');
  } catch {
    check(false, 'unknown scope shows an error card');
  }
  // The 404 of that request is expected; keep it out of the diagnostics.
  for (let i = failedRequests.length - 1; i >= 0; i -= 1) if (failedRequests[i].includes('NO_SUCH_TEAM')) failedRequests.splice(i, 1);
  for (let i = consoleErrors.length - 1; i >= 0; i -= 1) if (/404|Not Found/i.test(consoleErrors[i])) consoleErrors.splice(i, 1);

  // Wider and narrower screens.
  for (const w of [1280, 1920]) {
    await page.setViewportSize({ width: w, height: 1000 });
    await page.goto(`${baseUrl}/#scope=team&id=${encodeURIComponent(teamId)}`, { waitUntil: 'domcontentloaded' });
    await waitView(page, 'team', teamId);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    check(overflow <= 0, `no horizontal scroll at ${w} px`, `${overflow} px too wide`);
    await settle(page);
    await page.screenshot({ path: join(shotDir, `team-${w}.png`), fullPage: true });
  }
}

try {
  await main();
} catch (e) {
  check(false, 'browser run', e.stack ?? String(e));
} finally {
  if (consoleErrors.length) {
    console.log('browser console errors:');
    for (const m of consoleErrors) console.log(`  ${m}`);
  }
  check(consoleErrors.length === 0, 'no errors in the browser console', `${consoleErrors.length} error(s)`);
  if (failedRequests.length) {
    console.log('failed requests:');
    for (const r of failedRequests) console.log(`  ${r}`);
  }
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
  console.log(`browser: screenshots in ${shotDir}`);
  console.log(`browser: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
