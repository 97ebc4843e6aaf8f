// The supervisor's side of the method (销售主管活动管理) on the page: the ranking of
// supervisors (#...&page=supervisors), one supervisor's loop (#page=supervisor&supervisor=S1,
// or #scope=team&id=T0001&page=supervisor for the team's supervisor), the coaching quadrant
// closed by the supervisor's evaluation on an agent's page, and the supervisor's rows of the
// weekly review sheet. Data from api/supervisors, api/supervisor and api/coaching.
//
// The page's helpers (formatting, cards, names, links) come in as `h`, so that this module
// holds only what is the supervisor's.

const NORMS = [
  ['coaching_sessions', 'coaching_target', 'coaching_attainment', 'sup.coaching'],
  ['accompanied_visits', 'accompanied_visits_target', 'accompanied_visits_attainment', 'sup.accompanied'],
  ['weekly_meetings', 'weekly_meetings_target', 'weekly_meetings_attainment', 'sup.weekly'],
];
const MEETINGS = ['morning_meetings', 'evening_meetings', 'weekly_meetings', 'monthly_meetings'];

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

// A figure with its raw value and column, like the KPI figures of the page.
function fig(h, row, col, text) {
  const v = row ? row[col] : null;
  const raw = v === null || v === undefined ? '' : String(v);
  return `<span class="kv" data-kpi="${h.esc(col)}" data-raw="${h.esc(raw)}">${h.esc(text)}</span>`;
}
const count = (h, row, col) => fig(h, row, col, h.fmtCount(row?.[col]));
const pct = (h, row, col) => fig(h, row, col, h.fmtPct(row?.[col]));
function tone(v) {
  if (!isNum(v)) return 'muted';
  return v >= 1 ? 'good' : v >= 0.6 ? 'warn' : 'bad';
}

export function supervisorHref(h, id) {
  const view = h.viewQuery();
  return `#page=supervisor&supervisor=${encodeURIComponent(id)}${view ? `&${view}` : ''}`;
}

export function supervisorsUrl(h, route) {
  const p = new URLSearchParams(h.viewQuery(route));
  if (route.scope === 'region' || route.scope === 'branch') {
    p.set('scope', route.scope);
    p.set('id', route.id);
  }
  const text = p.toString();
  return `api/supervisors${text ? `?${text}` : ''}`;
}

export function supervisorUrl(h, route) {
  const p = new URLSearchParams(h.viewQuery(route));
  if (route.supervisor) p.set('id', route.supervisor);
  else p.set('team', route.id);
  return `api/supervisor?${p.toString()}`;
}

export function coachingUrl(h, route) {
  const view = h.viewQuery(route);
  return `api/coaching?agent=${encodeURIComponent(route.id)}${view ? `&${view}` : ''}`;
}

// One norm as "actual / target" with its attainment.
function normCell(h, row, [actual, target, attainment]) {
  return `<td class="num">${count(h, row, actual)}<span class="muted"> / ${h.esc(h.fmtCount(row?.[target]))}</span></td>
    <td class="num tone-text-${tone(row?.[attainment])}">${pct(h, row, attainment)}</td>`;
}

function normHead(h) {
  return NORMS.map(([, , , label]) => `<th class="num grp-start" scope="col">${h.esc(h.t(label))}</th><th class="num" scope="col">${h.esc(h.t('sup.attainment'))}</th>`).join('');
}

function supervisorName(h, row) {
  const teams = (row.team_ids ?? '').split(',').filter(Boolean).map((team) => h.displayName('team', team)).join('、');
  return `<a class="cell-name mono" href="${supervisorHref(h, row.scope_id)}" data-supervisor="${h.esc(row.scope_id)}">${h.esc(row.scope_id)}</a>${teams ? `<span class="cell-id">${h.esc(teams)}</span>` : ''}`;
}

function rankingTable(h, rows, ranked) {
  const body = rows.map((r, i) => `
    <tr data-row-scope="${h.esc(r.scope)}" data-row-id="${h.esc(r.scope_id)}" data-row-period="${h.esc(r.period)}">
      ${ranked ? `<td class="num">${i + 1}</td>` : ''}
      <td class="name">${r.scope === 'supervisor' ? supervisorName(h, r) : `<span class="cell-name">${h.esc(h.displayName(r.scope, r.scope_id))}</span>`}</td>
      ${NORMS.map((norm) => normCell(h, r, norm)).join('')}
      <td class="num grp-start">${pct(h, r, 'evaluated_share')}</td>
      <td class="num">${count(h, r, 'measures_open')}<span class="muted"> (${h.esc(h.fmtCount(r.measures_overdue))})</span></td>
      <td class="num tone-text-${isNum(r.agents_not_coached) && r.agents_not_coached > 0 ? 'bad' : 'muted'}">${count(h, r, 'agents_not_coached')}</td>
      <td class="num grp-start tone-text-${tone(r.norm_attainment)}">${pct(h, r, 'norm_attainment')}</td>
    </tr>`).join('');
  return `<div class="table-wrap"><table class="table supervisor-table">
    <thead><tr>${ranked ? `<th class="num" scope="col">${h.esc(h.t('sup.rank'))}</th>` : ''}<th scope="col">${h.esc(h.t('sup.supervisor'))}</th>${normHead(h)}
      <th class="num grp-start" scope="col">${h.esc(h.t('sup.evaluated'))}</th><th class="num" scope="col">${h.esc(h.t('sup.measures'))}</th>
      <th class="num" scope="col">${h.esc(h.t('sup.notCoached'))}</th><th class="num grp-start" scope="col">${h.esc(h.t('sup.norms'))}</th></tr></thead>
    <tbody>${body}</tbody></table></div>`;
}

// The ranking of the supervisors of a region or branch (or of everything the user sees).
export function renderSupervisors(h, d) {
  const scope = d.scope ?? 'root';
  const id = d.id ?? null;
  const name = scope === 'root' ? h.t('scope.overview') : h.displayName(scope, id);
  const supervisors = d.supervisors ?? [];
  const ranking = h.card('span-12', h.cardHead(h.t('sup.ranking.title'), '', h.t('sup.ranking.sub')),
    supervisors.length ? rankingTable(h, supervisors, true) : `<p class="empty">${h.esc(h.t('sup.empty'))}</p>`, 'data-card="supervisor-ranking"');
  const summary = (d.summary ?? []).length
    ? h.card('span-12', h.cardHead(h.t('sup.summary.title')), rankingTable(h, d.summary, false), 'data-card="supervisor-summary"')
    : '';
  return `
    ${h.viewHead(scope, id, name, h.t('sup.title'), h.periodHtml())}
    <div class="grid">${ranking}${summary}</div>`;
}

function loopTiles(h, row, label) {
  if (!row) return h.card('span-6', h.cardHead(label), `<p class="empty">${h.esc(h.t('sup.noRow'))}</p>`);
  const norms = NORMS.map(([actual, target, attainment, key]) => h.tile(h.t(key), count(h, row, actual),
    `${h.esc(h.t('sup.target'))} ${h.esc(h.fmtCount(row[target]))} · ${pct(h, row, attainment)}`, `tone-${tone(row[attainment])}`)).join('');
  const meetings = MEETINGS.map((col) => `${h.esc(h.t(`sup.meeting.${col}`))} ${count(h, row, col)}`).join(' · ');
  const extra = [
    h.tile(h.t('sup.meetings'), count(h, row, 'weekly_meetings'), meetings),
    h.tile(h.t('sup.evaluated'), pct(h, row, 'evaluated_share'), `${count(h, row, 'agents_evaluated')} / ${count(h, row, 'team_agents')}`),
    h.tile(h.t('sup.measures'), count(h, row, 'measures_open'), `${h.esc(h.t('sup.overdue'))} ${count(h, row, 'measures_overdue')} · ${h.esc(h.t('sup.done'))} ${count(h, row, 'measures_done')}`),
    h.tile(h.t('sup.notCoached'), count(h, row, 'agents_not_coached'), '', isNum(row.agents_not_coached) && row.agents_not_coached > 0 ? 'tone-bad' : ''),
  ].join('');
  return h.card('span-6', h.cardHead(label, '', `${row.period_start} – ${row.reference_date ?? ''}`),
    `<div class="tiles" data-row-scope="supervisor" data-row-id="${h.esc(row.scope_id)}" data-row-period="${h.esc(row.period)}">${norms}${extra}</div>`);
}

function agentsTable(h, d) {
  const agents = d.agents ?? [];
  if (agents.length === 0) return `<p class="empty">${h.esc(h.t('sup.noAgents'))}</p>`;
  const body = agents.map((r) => {
    const evaluation = r.evaluation_skill ? `${h.t(`sup.rating.${r.evaluation_skill}`)} / ${h.t(`sup.rating.${r.evaluation_will}`)}` : h.t('sup.notEvaluated');
    const waited = isNum(r.working_days_since_coached) ? h.t('sup.workingDays', { n: r.working_days_since_coached }) : h.t('sup.neverCoached');
    return `<tr class="nav-row${r.not_coached === true ? ' is-dormant' : ''}" tabindex="0" data-nav-scope="agent" data-nav-id="${h.esc(r.scope_id)}" data-row-scope="agent" data-row-id="${h.esc(r.scope_id)}" data-row-period="month">
      <td class="name"><span class="cell-name">${h.esc(h.displayName('agent', r.scope_id))}</span><span class="cell-id">${h.esc(r.scope_id)}</span></td>
      <td class="num">${count(h, r, 'coaching_sessions')}</td>
      <td class="num">${count(h, r, 'accompanied_visits')}</td>
      <td>${fig(h, r, 'last_coached_date', r.last_coached_date ?? '—')}</td>
      <td class="num">${fig(h, r, 'working_days_since_coached', waited)}</td>
      <td>${r.not_coached === true ? `<span class="badge tone-bad" data-kpi="not_coached" data-raw="true">${h.esc(h.t('sup.notCoachedBadge'))}</span>` : ''}</td>
      <td>${fig(h, r, 'evaluation_skill', evaluation)}</td>
    </tr>`;
  }).join('');
  return `<div class="table-wrap"><table class="table supervisor-agents">
    <thead><tr><th scope="col">${h.esc(h.t('review.agent'))}</th><th class="num" scope="col">${h.esc(h.t('sup.coachingReceived'))}</th>
      <th class="num" scope="col">${h.esc(h.t('sup.accompaniedReceived'))}</th><th scope="col">${h.esc(h.t('sup.lastCoached'))}</th>
      <th class="num" scope="col">${h.esc(h.t('sup.sinceCoached'))}</th><th scope="col"></th><th scope="col">${h.esc(h.t('sup.evaluation'))}</th></tr></thead>
    <tbody>${body}</tbody></table></div>`;
}

// One supervisor's loop: this week and this month against the norms, and their agents.
export function renderSupervisor(h, d) {
  const id = d.supervisor;
  if (!id) {
    return `${h.viewHead('team', d.team, h.displayName('team', d.team), h.t('sup.page'), h.periodHtml())}
      <p class="empty">${h.esc(h.t('sup.noSupervisor'))}</p>`;
  }
  const notCoached = (d.not_coached ?? []).length;
  return `
    ${h.viewHead('root', null, id, h.t('sup.page'), h.periodHtml())}
    <div class="grid">
      ${loopTiles(h, d.this_week, h.t('sup.thisWeek'))}
      ${loopTiles(h, d.this_month, h.t('sup.thisMonth'))}
      ${h.card('span-12', h.cardHead(h.t('sup.agents.title'), notCoached ? `<span class="count-badge tone-bad">${notCoached}</span>` : '', h.t('sup.agents.sub')), agentsTable(h, d), 'data-card="supervisor-agents"')}
      ${measuresCard(h, d.this_month)}
    </div>`;
}

// The improvement measures still open (业务改善措施), by due date, overdue ones marked.
function measuresCard(h, month) {
  let measures = [];
  try {
    measures = month?.open_measures ? JSON.parse(month.open_measures) : [];
  } catch {
    measures = [];
  }
  const rows = measures.map((m) => `
    <tr data-measure-id="${h.esc(m.event_id)}"${m.overdue ? ' class="is-dormant"' : ''}>
      <td>${h.esc(m.measure ?? '')}</td>
      <td>${h.esc(h.displayName(m.scope, m.scope_id))}</td>
      <td>${h.esc(m.due_date ?? '')}</td>
      <td>${h.esc(h.t(`sup.measure.${m.status}`))}${m.overdue ? ` <span class="badge tone-bad" data-kpi="overdue" data-raw="true">${h.esc(h.t('sup.measure.overdue'))}</span>` : ''}</td>
    </tr>`).join('');
  const body = measures.length
    ? `<div class="table-wrap"><table class="table">
        <thead><tr><th scope="col">${h.esc(h.t('sup.measure.text'))}</th><th scope="col">${h.esc(h.t('sup.measure.scope'))}</th>
          <th scope="col">${h.esc(h.t('sup.measure.due'))}</th><th scope="col">${h.esc(h.t('sup.measure.status'))}</th></tr></thead>
        <tbody>${rows}</tbody></table></div>`
    : `<p class="empty">${h.esc(h.t('sup.measure.none'))}</p>`;
  return h.card('span-12', h.cardHead(h.t('sup.measure.title'), measures.length ? `<span class="count-badge">${measures.length}</span>` : '', h.t('sup.measure.sub')), body, 'data-card="supervisor-measures"');
}

// On an agent's page: the supervisor's evaluation beside the computed quadrant, the
// quadrant's coaching action, and the coaching received beside activity and close rate.
export function coachingCard(h, c, span) {
  const head = h.cardHead(h.t('sup.coaching.title'), '', h.t('sup.coaching.sub'));
  if (!c) return h.card(span, head, `<p class="empty">${h.esc(h.t('sup.empty'))}</p>`, 'data-card="coaching"');
  const quad = (q) => (q ? h.t(`quad.${q}`) : '—');
  const e = c.evaluation;
  const agreement = c.agreement
    ? `<span class="badge tone-${c.agreement === 'agree' ? 'good' : 'warn'}" data-kpi="agreement" data-raw="${h.esc(c.agreement)}">${h.esc(h.t(`sup.${c.agreement}`))}</span>`
    : '';
  const action = c.action
    ? `<p class="coach-action" data-kpi="action" data-raw="${h.esc(c.action)}"><strong>${h.esc(h.t('sup.action'))}</strong> ${h.esc(quad(c.action))}: ${h.esc(h.t(`quad.${c.action}.action`))}</p>`
    : '';
  const facts = `
    <div class="tiles">
      ${h.tile(h.t('sup.computed'), `<span data-kpi="coaching_quadrant" data-raw="${h.esc(c.computed_quadrant ?? '')}">${h.esc(quad(c.computed_quadrant))}</span>`)}
      ${h.tile(h.t('sup.evaluation'), `<span data-kpi="evaluated_quadrant" data-raw="${h.esc(e?.quadrant ?? '')}">${h.esc(e ? quad(e.quadrant) : h.t('sup.notEvaluated'))}</span>`,
        e ? h.esc(h.t('sup.evaluatedBy', { by: e.by ?? '', month: (e.month ?? '').slice(0, 7) })) : '')}
    </div>${agreement}${action}`;
  const trend = (c.trend ?? []).map((m) => `
    <tr><td>${h.esc((m.month ?? '').slice(0, 7))}</td>
      <td class="num">${h.esc(h.fmtCount(m.coaching_sessions))}</td><td class="num">${h.esc(h.fmtCount(m.accompanied_visits))}</td>
      <td class="num">${h.esc(h.fmtCount(m.visits))}</td><td class="num">${h.esc(h.fmtPct(m.close_rate))}</td><td>${h.esc(quad(m.coaching_quadrant))}</td></tr>`).join('');
  const table = trend ? `<div class="table-wrap"><table class="table coaching-trend">
    <thead><tr><th scope="col">${h.esc(h.t('sup.month'))}</th><th class="num" scope="col">${h.esc(h.t('sup.coachingReceived'))}</th>
      <th class="num" scope="col">${h.esc(h.t('sup.accompaniedReceived'))}</th><th class="num" scope="col">${h.esc(h.t('review.visits'))}</th>
      <th class="num" scope="col">${h.esc(h.t('sup.closeRate'))}</th><th scope="col">${h.esc(h.t('sup.computed'))}</th></tr></thead>
    <tbody>${trend}</tbody></table></div>` : '';
  return h.card(span, head, `${facts}${table}`, 'data-card="coaching"');
}

// The supervisor's rows of a team's weekly review sheet: their week against the norms.
export function reviewSupervisorRows(h, s) {
  const w = s?.this_week;
  if (!w) return '';
  const cells = NORMS.map((norm) => normCell(h, w, norm)).join('');
  return `<div class="table-wrap"><table class="table review-table review-supervisor" data-row-scope="supervisor" data-row-id="${h.esc(w.scope_id)}" data-row-period="week">
    <thead><tr><th scope="col">${h.esc(h.t('sup.supervisor'))}</th>${normHead(h)}<th class="num grp-start" scope="col">${h.esc(h.t('sup.notCoached'))}</th></tr></thead>
    <tbody><tr><td class="name"><a class="cell-name mono" href="${supervisorHref(h, w.scope_id)}">${h.esc(w.scope_id)}</a></td>${cells}
      <td class="num grp-start">${count(h, w, 'agents_not_coached')}</td></tr></tbody></table></div>`;
}
