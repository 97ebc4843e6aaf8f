// Browser test of the supervisor's side of the method: a team supervisor opens their own
// loop (this week's and this month's figures against the norms, their agents, those not
// coached, the improvement measures still open) and sees every figure as /api/supervisor gives it, an agent's page shows the
// coaching card as /api/coaching gives it, and another team's supervisor is refused;
// headquarters sees the supervisors ranked as /api/supervisors ranks them.
//
//   node dashboard/tests/supervisors.mjs --base-url http://127.0.0.1:PORT --screenshot-dir DIR \
//        --supervisor NAME:PASSWORD --headquarters NAME:PASSWORD [--other-team T0002]

import { browserContext as openBrowser } from './browser-context.mjs';
import { signInWithPassword } from './signin.mjs';
import { Checks, chromiumFor, options, raw } from './checks.mjs';

const o = options();
const chromium = chromiumFor(o, 'usage: node supervisors.mjs --base-url URL --supervisor NAME:PW --headquarters NAME:PW [--other-team T0002] --screenshot-dir DIR');
const checks = new Checks('supervisors');
const check = checks.check.bind(checks);

const open = () => openBrowser(chromium, {
  executablePath: o.executablePath,
  timeout: o.timeout,
  name: 'supervisors',
  ignored: (text) => /status of 403/.test(text),
});

async function waitFor(page, card) {
  await page.waitForFunction((selector) => {
    const v = document.querySelector('#view');
    return v && v.dataset.state === 'ready' && document.querySelector(selector);
  }, `[data-card="${card}"]`, { timeout: o.timeout });
}

async function getJson(context, path) {
  const res = await context.request.get(`${o.baseUrl}/${path}`);
  return { status: res.status(), body: res.status() === 200 ? await res.json() : null };
}

// Every `[data-kpi]` under `selector`, as { kpi: data-raw }.
const figures = (page, selector) => page.$eval(selector, (root) => {
  const found = {};
  for (const el of root.querySelectorAll('[data-kpi]')) found[el.dataset.kpi] = el.dataset.raw;
  return found;
});

// The figures shown equal the API row's (a flag shows only when true).
function sameAs(label, shown, row) {
  const differ = Object.entries(shown)
    .filter(([kpi, value]) => value !== (kpi === 'not_coached' ? 'true' : raw(row?.[kpi])))
    .map(([kpi, value]) => `${kpi} shown ${value}, API ${raw(row?.[kpi])}`);
  check(Object.keys(shown).length > 0 && differ.length === 0, `${label}: every figure equals the API's`,
    Object.keys(shown).length === 0 ? 'none shown' : differ.slice(0, 5).join('; '));
}

async function checkSupervisor() {
  const { context, page, problems, close } = await open();
  try {
    await signInWithPassword(page, o.baseUrl, o.supervisor.user, o.supervisor.password);
    const me = await (await context.request.get(`${o.baseUrl}/api/me`)).json();
    const team = me.home?.id;
    check(me.role === 'supervisor' && Boolean(team), 'supervisor signed in with a team', JSON.stringify(me));
    const { status, body } = await getJson(context, `api/supervisor?team=${encodeURIComponent(team)}`);
    check(status === 200 && body?.supervisor, `supervisor: API answers ${team}'s supervisor`, String(status));

    await page.goto(`${o.baseUrl}/#scope=team&id=${encodeURIComponent(team)}&page=supervisor`);
    await waitFor(page, 'supervisor-agents');
    for (const period of ['week', 'month']) {
      const row = period === 'week' ? body?.this_week : body?.this_month;
      const selector = `#view .tiles[data-row-scope="supervisor"][data-row-period="${period}"]`;
      if (check(Boolean(row) && (await page.$(selector)) !== null, `supervisor: this ${period}'s figures shown`)) {
        sameAs(`supervisor this ${period}`, await figures(page, selector), row);
      }
    }
    const agents = await page.$$eval('[data-card="supervisor-agents"] tbody tr[data-row-id]',
      (rows) => rows.map((tr) => ({ id: tr.dataset.rowId, notCoached: tr.querySelector('[data-kpi="not_coached"]') !== null })));
    const apiAgents = body?.agents ?? [];
    check(agents.length > 0 && agents.length === apiAgents.length, 'supervisor: one row per agent of the answer',
      `${agents.length} of ${apiAgents.length}`);
    const flagged = agents.filter((a) => a.notCoached).map((a) => a.id).sort();
    check(JSON.stringify(flagged) === JSON.stringify([...(body?.not_coached ?? [])].sort()),
      'supervisor: the agents not coached are the API\'s', `${flagged.join(',')} / ${(body?.not_coached ?? []).join(',')}`);
    const listed = await page.$$eval('[data-card="supervisor-measures"] tbody tr[data-measure-id]', (rows) => rows.map((tr) => tr.dataset.measureId));
    const open = JSON.parse(body?.this_month?.open_measures ?? '[]').map((m) => m.event_id);
    check(open.length === Number(body?.this_month?.measures_open ?? 0), 'supervisor: one open measure listed per measure counted open',
      `${open.length} listed, ${body?.this_month?.measures_open} counted`);
    check(JSON.stringify(listed) === JSON.stringify(open), 'supervisor: the open improvement measures listed as the API gives them',
      `${listed.join(',')} / ${open.join(',')}`);
    await page.screenshot({ path: o.shot('supervisor-loop.png') });

    // An agent's page: the coaching card beside the computed quadrant.
    const agent = apiAgents[0]?.scope_id;
    if (check(Boolean(agent), 'supervisor: an agent to open')) {
      const { status: coachingStatus, body: coaching } = await getJson(context, `api/coaching?agent=${encodeURIComponent(agent)}`);
      check(coachingStatus === 200, `supervisor: API answers ${agent}'s coaching`, String(coachingStatus));
      await page.goto(`${o.baseUrl}/#scope=agent&id=${encodeURIComponent(agent)}`);
      await waitFor(page, 'coaching');
      const shown = await figures(page, '[data-card="coaching"]');
      check(raw(shown.coaching_quadrant) === raw(coaching?.computed_quadrant),
        `supervisor: ${agent}'s computed quadrant as the API's`, `${shown.coaching_quadrant} / ${coaching?.computed_quadrant}`);
      if (coaching?.evaluation) {
        check(raw(shown.evaluated_quadrant) === raw(coaching.evaluation.quadrant),
          `supervisor: ${agent}'s evaluated quadrant as the API's`, `${shown.evaluated_quadrant} / ${coaching.evaluation.quadrant}`);
      }
      if (coaching?.agreement) {
        check(shown.agreement === coaching.agreement, `supervisor: ${agent}'s agreement as the API's`);
      }
    }

    // Another team's supervisor is refused, in the API and on the page.
    const other = await getJson(context, `api/supervisor?team=${encodeURIComponent(o.otherTeam)}`);
    check(other.status === 403, `supervisor: ${o.otherTeam}'s supervisor refused by the API`, String(other.status));
    await page.goto(`${o.baseUrl}/#scope=team&id=${encodeURIComponent(o.otherTeam)}&page=supervisor`);
    await page.waitForSelector('.error-card', { timeout: o.timeout });
    const detail = await page.textContent('.error-card .error-detail');
    check(/管辖范围|outside your scope/.test(detail ?? ''), `supervisor: ${o.otherTeam}'s supervisor page is refused`, detail);
    check(problems.length === 0, 'supervisor: no script errors', problems.join(' | '));
  } finally {
    await close();
  }
}

async function checkHeadquarters() {
  const { context, page, problems, close } = await open();
  try {
    await signInWithPassword(page, o.baseUrl, o.headquarters.user, o.headquarters.password);
    const { status, body } = await getJson(context, 'api/supervisors');
    const ranked = body?.supervisors ?? [];
    check(status === 200 && ranked.length > 0, 'headquarters: API ranks the supervisors', `${status}, ${ranked.length}`);
    await page.goto(`${o.baseUrl}/#page=supervisors`);
    await waitFor(page, 'supervisor-ranking');
    const shown = await page.$$eval('[data-card="supervisor-ranking"] tbody tr[data-row-id]', (rows) => rows.map((tr) => {
      const found = {};
      for (const el of tr.querySelectorAll('[data-kpi]')) found[el.dataset.kpi] = el.dataset.raw;
      return { id: tr.dataset.rowId, figures: found };
    }));
    check(JSON.stringify(shown.map((r) => r.id)) === JSON.stringify(ranked.map((r) => r.scope_id)),
      'headquarters: the supervisors in the API\'s order', `${shown.length} shown of ${ranked.length}`);
    const byId = new Map(ranked.map((r) => [r.scope_id, r]));
    let differ = 0;
    for (const row of shown) {
      for (const [kpi, value] of Object.entries(row.figures)) {
        if (value !== raw(byId.get(row.id)?.[kpi])) differ += 1;
      }
    }
    check(shown.some((r) => Object.keys(r.figures).length > 0) && differ === 0,
      'headquarters: every ranking figure equals the API\'s', `${differ} differ`);
    check(ranked.some((r) => Number(r.coaching_sessions ?? 0) === 0) && ranked.some((r) => Number(r.coaching_sessions ?? 0) > 0),
      'headquarters: supervisors who coach and supervisors who do not are ranked');
    await page.screenshot({ path: o.shot('supervisors-ranking.png') });
    check(problems.length === 0, 'headquarters: no script errors', problems.join(' | '));
  } finally {
    await close();
  }
}

await checks.part('supervisor', checkSupervisor);
await checks.part('headquarters', checkHeadquarters);
checks.finish();
