// Browser test of sign-in and scope: signs in as a team supervisor and as a headquarters user
// (with the local users form, and a supervisor through SSO when a provider is configured),
// checks where each lands and what each sees, that editing the URL or calling the API for
// another team is refused, and that signing out ends the session.
//
//   node dashboard/tests/auth.mjs --base-url http://127.0.0.1:PORT --screenshot-dir DIR \
//        --supervisor NAME:PASSWORD --headquarters NAME:PASSWORD [--other-team T0002] \
//        [--sso-supervisor NAME:PASSWORD]
//
// The last line is "auth: N passed, M failed"; the exit code is 1 when anything failed.

import { mkdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { browserContext as openBrowser } from './browser-context.mjs';
import { credentials, signInWithPassword, signInWithSso } from './signin.mjs';

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
const ssoSupervisor = credentials(opt('sso-supervisor'));
const otherTeam = opt('other-team', 'T0002');
if (!baseUrl || !supervisor || !headquarters) {
  console.error('usage: node auth.mjs --base-url URL --supervisor NAME:PW --headquarters NAME:PW [--sso-supervisor NAME:PW] --screenshot-dir DIR');
  process.exit(2);
}
const { chromium } = require('playwright-core');
if (!existsSync(executablePath)) {
  console.error(`no Chromium at ${executablePath}`);
  process.exit(2);
}

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
const log = (msg) => console.log(`auth: ${msg}`);

async function browserContext() {
  return openBrowser(chromium, {
    executablePath,
    timeout,
    name: 'auth',
    // Refused API calls are the point of some checks; anything else (a CSP violation, a
    // script error) is a failure.
    ignored: (text) => /status of 403/.test(text),
  });
}

async function waitReady(page, scope, id) {
  try {
    await page.waitForFunction(([s, i]) => {
      const v = document.querySelector('#view');
      return v && v.dataset.state === 'ready' && v.dataset.viewScope === s && v.dataset.viewId === i;
    }, [scope, id], { timeout });
    return true;
  } catch {
    return false;
  }
}

async function treeIds(context) {
  const res = await context.request.get(`${baseUrl}/api/meta`);
  const meta = await res.json();
  const ids = { regions: [], branches: [], teams: [], agents: [] };
  for (const r of meta.tree ?? []) {
    ids.regions.push(r.id);
    for (const b of r.branches ?? []) {
      ids.branches.push(b.id);
      for (const t of b.teams ?? []) {
        ids.teams.push(t.id);
        ids.agents.push(...(t.agents ?? []).map((a) => (typeof a === 'string' ? a : a.id)));
      }
    }
  }
  return ids;
}

async function apiStatus(context, path) {
  return (await context.request.get(`${baseUrl}${path}`)).status();
}

// A supervisor, signed in one way or the other: lands on the team, sees nothing else.
async function checkSupervisor(label, signIn) {
  const { context, page, problems, close } = await browserContext();
  try {
    await signIn(page);
    const me = await (await context.request.get(`${baseUrl}/api/me`)).json();
    check(me.role === 'supervisor' && me.home?.scope === 'team', `${label}: signed in as a supervisor`, JSON.stringify(me));
    const team = me.home?.id;
    check(await waitReady(page, 'team', team), `${label}: lands on the own team ${team}`, await page.evaluate(() => location.href));
    check((await page.textContent('#user-name'))?.trim() === me.user, `${label}: user name in the top bar`);
    const crumbs = await page.$$eval('#breadcrumb [data-crumb]', (els) => els.map((e) => e.dataset.crumb));
    check(crumbs[0] === 'team', `${label}: breadcrumb starts at the team`, crumbs.join(' › '));
    await page.screenshot({ path: join(shotDir, `${label}-team.png`), fullPage: false });

    const tree = await treeIds(context);
    check(tree.teams.length === 1 && tree.teams[0] === team, `${label}: the tree holds the own team only`, tree.teams.join(','));
    const options = await page.$$eval('#search-list option', (els) => els.map((e) => e.textContent));
    check(!options.some((o) => /分公司|营业部|Region|Branch/.test(o)), `${label}: search offers no region or branch`, options.join(','));

    // Editing the URL to another team: the page says it is not yours; the API refuses.
    await page.goto(`${baseUrl}/#scope=team&id=${encodeURIComponent(otherTeam)}`);
    await page.waitForSelector('.error-card', { timeout });
    const detail = await page.textContent('.error-card .error-detail');
    check(/管辖范围|outside your scope/.test(detail ?? ''), `${label}: another team's page is refused`, detail);
    await page.screenshot({ path: join(shotDir, `${label}-other-team-refused.png`) });
    check(await apiStatus(context, `/api/scope?scope=team&id=${otherTeam}`) === 403, `${label}: API refuses another team`);
    check(await apiStatus(context, `/api/scope?scope=region&id=${tree.regions[0]}`) === 403, `${label}: API refuses the region`);
    check(await apiStatus(context, `/api/scope?scope=branch&id=${tree.branches[0]}`) === 403, `${label}: API refuses the branch`);
    check(await apiStatus(context, `/api/scope?scope=team&id=${team}`) === 200, `${label}: API answers the own team`);
    // Agents of the team are open; one of another team is not.
    check(await apiStatus(context, `/api/scope?scope=agent&id=${tree.agents[0]}`) === 200, `${label}: API answers an own agent`);

    // Sign out: back to the sign-in page; the session is gone for the API too.
    await page.goto(`${baseUrl}/#scope=team&id=${encodeURIComponent(team)}`);
    await waitReady(page, 'team', team);
    await Promise.all([page.waitForURL((u) => u.pathname === '/login'), page.click('#sign-out')]);
    check(await page.isVisible('[data-message="signed_out"]'), `${label}: signed out message`);
    check(await apiStatus(context, '/api/me') === 401, `${label}: no session after signing out`);
    check(problems.length === 0, `${label}: no console errors`, problems.join(' | '));
  } catch (e) {
    check(false, `${label}: ${e.message}`);
  } finally {
    await close();
  }
}

async function checkHeadquarters() {
  const label = 'headquarters';
  const { context, page, problems, close } = await browserContext();
  try {
    await signInWithPassword(page, baseUrl, headquarters.user, headquarters.password);
    check(await waitReady(page, 'root', ''), `${label}: lands on the overview`);
    await page.screenshot({ path: join(shotDir, `${label}-overview.png`) });
    const tree = await treeIds(context);
    check(tree.teams.includes(otherTeam) && tree.teams.length > 1, `${label}: the tree holds every team`, tree.teams.length);
    await page.goto(`${baseUrl}/#scope=team&id=${encodeURIComponent(otherTeam)}`);
    check(await waitReady(page, 'team', otherTeam), `${label}: opens team ${otherTeam}`);
    check(await apiStatus(context, `/api/scope?scope=region&id=${tree.regions[0]}`) === 200, `${label}: API answers the region`);
    check(problems.length === 0, `${label}: no console errors`, problems.join(' | '));
  } catch (e) {
    check(false, `${label}: ${e.message}`);
  } finally {
    await close();
  }
}

async function checkSignInPage() {
  const { context, page, close } = await browserContext();
  try {
    // Any page without a session goes to the sign-in page, and back after signing in.
    await page.goto(`${baseUrl}/#scope=team&id=${encodeURIComponent(otherTeam)}`);
    await page.waitForURL((u) => u.pathname === '/login');
    // The view asked for rides along as the address's fragment (the server never sees it).
    check(new URL(page.url()).hash === `#scope=team&id=${otherTeam}`, 'sign-in page keeps the view asked for', page.url());
    await page.screenshot({ path: join(shotDir, 'sign-in.png') });
    await page.fill('#user', headquarters.user);
    await page.fill('#password', 'not the password');
    await Promise.all([page.waitForLoadState('domcontentloaded'), page.click('#sign-in')]);
    check(await page.isVisible('[data-message="failed"]'), 'a wrong password is told');
    check(await apiStatus(context, '/api/me') === 401, 'no session after a wrong password');
    await page.fill('#user', headquarters.user);
    await page.fill('#password', headquarters.password);
    await Promise.all([page.waitForURL((u) => u.pathname === '/'), page.click('#sign-in')]);
    check(await waitReady(page, 'team', otherTeam), 'after signing in, the page asked for opens');
  } catch (e) {
    check(false, `sign-in page: ${e.message}`);
  } finally {
    await close();
  }
}

mkdirSync(shotDir, { recursive: true });
await checkSignInPage();
await checkSupervisor('supervisor', (page) => signInWithPassword(page, baseUrl, supervisor.user, supervisor.password));
await checkHeadquarters();
if (ssoSupervisor) {
  await checkSupervisor('sso-supervisor', (page) => signInWithSso(page, baseUrl, ssoSupervisor.user, ssoSupervisor.password));
} else {
  log('SKIPPED: single sign-on (no --sso-supervisor: no provider configured)');
}
log(`screenshots in ${shotDir}`);
console.log(`auth: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
