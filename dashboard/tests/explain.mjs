// Browser test of explaining a figure: a team supervisor clicks a count or money figure of
// the team's row and of an agent's row, and the dialog lists exactly the events
// /api/explain lists for it, says the figure adds up, and shows the figure and the events'
// sum; a team page has its "what changed since yesterday" card; another team's figures
// cannot be explained.
//
//   node dashboard/tests/explain.mjs --base-url http://127.0.0.1:PORT --screenshot-dir DIR \
//        --supervisor NAME:PASSWORD --headquarters NAME:PASSWORD [--other-team T0002]

import { browserContext as openBrowser } from './browser-context.mjs';
import { signInWithPassword } from './signin.mjs';
import { Checks, chromiumFor, options } from './checks.mjs';

const o = options();
const chromium = chromiumFor(o, 'usage: node explain.mjs --base-url URL --supervisor NAME:PW --headquarters NAME:PW [--other-team T0002] --screenshot-dir DIR');
const checks = new Checks('explain');
const check = checks.check.bind(checks);

// Clicks a figure of `column` of a `scope` row on the page, and compares
// the dialog with the API's answer for the same row.
async function explainFigure(page, context, scope, column) {
  // The first such figure above zero: its list cannot be empty.
  const figures = await page.$$(`#view [data-explain-scope="${scope}"][data-kpi="${column}"]`);
  let figure = null;
  for (const candidate of figures) {
    if (Number(await candidate.getAttribute('data-raw')) > 0) {
      figure = candidate;
      break;
    }
  }
  if (!check(figure !== null, `a ${scope} ${column} figure above zero can be explained`)) return;
  const ds = await figure.evaluate((el) => ({ ...el.dataset }));
  const query = `scope=${ds.explainScope}&id=${encodeURIComponent(ds.explainId)}&period=${ds.explainPeriod}&start=${ds.explainStart}`;
  const res = await context.request.get(`${o.baseUrl}/api/explain?${query}`);
  const body = res.status() === 200 ? await res.json() : null;
  const label = `${ds.explainScope} ${ds.explainId} ${ds.explainPeriod} ${ds.explainStart} ${column}`;
  check(res.status() === 200, `${label}: the API explains it`, String(res.status()));
  check(body?.adds_up?.[column] === true, `${label}: the API's events add up to the figure`);
  await figure.click();
  await page.waitForSelector('#explain-dialog[open] .explain-sum', { timeout: o.timeout });
  const rows = await page.$$eval('#explain-dialog table.explain-events tbody tr', (trs) => trs.map((tr) => tr.querySelector('td')?.textContent?.trim()));
  const expected = (body?.events ?? []).map((e) => e.event_id);
  check(rows.length > 0 && JSON.stringify(rows) === JSON.stringify(expected), `${label}: the dialog lists the API's events`,
    `${rows.length} listed, ${expected.length} in the answer`);
  const sum = await page.$eval('#explain-dialog .explain-sum', (p) => ({ good: p.classList.contains('good'), text: p.textContent }));
  check(sum.good, `${label}: the dialog says the figure adds up`, sum.text);
  await page.screenshot({ path: o.shot(`explain-${scope}-${column}.png`) });
  await page.click('#explain-dialog [data-action="close-explain"]');
  await page.waitForFunction(() => !document.querySelector('#explain-dialog')?.open, null, { timeout: o.timeout });
}

async function checkSupervisor() {
  const { context, page, problems, close } = await openBrowser(chromium, {
    executablePath: o.executablePath,
    timeout: o.timeout,
    name: 'explain',
    ignored: (text) => /status of 403/.test(text),
  });
  try {
    await signInWithPassword(page, o.baseUrl, o.supervisor.user, o.supervisor.password);
    const me = await (await context.request.get(`${o.baseUrl}/api/me`)).json();
    const team = me.home?.id;
    check(Boolean(team), 'supervisor signed in with a team', JSON.stringify(me));
    await page.goto(`${o.baseUrl}/#scope=team&id=${encodeURIComponent(team)}`);
    await page.waitForFunction(() => {
      const v = document.querySelector('#view');
      return v && v.dataset.state === 'ready' && document.querySelector('#view [data-explain-scope]');
    }, null, { timeout: o.timeout });
    await explainFigure(page, context, 'team', 'visits');
    await explainFigure(page, context, 'agent', 'visits');
    await explainFigure(page, context, 'agent', 'premium');

    const changes = await page.$('#view [data-card="changes"]');
    check(changes !== null, 'the team page has its "what changed since yesterday" card');
    const answer = await context.request.get(`${o.baseUrl}/api/changes?scope=team&id=${encodeURIComponent(team)}`);
    check(answer.status() === 200, 'the API answers what changed for the team', String(answer.status()));

    const start = new Date().toISOString().slice(0, 8) + '01';
    const other = await context.request.get(`${o.baseUrl}/api/explain?scope=team&id=${encodeURIComponent(o.otherTeam)}&period=month&start=${start}`);
    check(other.status() === 403, `${o.otherTeam}'s figures cannot be explained`, String(other.status()));
    check(problems.length === 0, 'no script errors', problems.join(' | '));
  } finally {
    await close();
  }
}

await checks.part('supervisor', checkSupervisor);
checks.finish();
