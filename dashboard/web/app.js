// The aqs web dashboard: one page, state in the URL hash (#scope=team&id=T0001, with
// &month=YYYY-MM or &as_of=YYYY-MM-DD for history and &print=review for the printable weekly
// review sheets), the language in the query (?lang=en), data from the JSON API next to it
// (api/meta, api/scope, api/history, api/outlets for the outlet page #...&page=outlets;
// api/supervisors, api/supervisor and api/coaching for the supervisors' pages, see
// supervisors.js; exports are posted to api/export). Plain DOM and
// Chart.js, no build step.
//
// Every KPI figure on the page is an element with data-kpi="<contract column>" and
// data-raw="<value as the API sent it>" ("" for null), inside an element that names the row it
// comes from (data-row-scope, data-row-id, data-row-period), so a browser test can compare the
// page with the KPI store.

import { t, getLang, setLang, applyStatic } from './i18n.js';
import * as sup from './supervisors.js';

// The page's helpers lent to supervisors.js (function declarations: defined before this runs).
const H = { t, esc, fmtCount, fmtPct, card, cardHead, tile, viewHead, periodHtml, displayName, viewQuery };

const REFRESH_MS = 30_000;
const SCOPES = ['region', 'branch', 'team', 'agent'];
const CHILD = { region: 'branch', branch: 'team', team: 'agent' };
const DASH = '—';
const WILL_THRESHOLD_DEFAULT = 0.8;
const SKILL_RATIO_DEFAULT = 1.0;

const COLOR = {
  ink: '#1d2735',
  muted: '#6b7687',
  grid: '#edf0f4',
  brand: '#1f4e79',
  brand2: '#5b8cc0',
  brand3: '#b7cde4',
  good: '#2f855a',
  warn: '#b7791f',
  bad: '#c2453a',
  neutral: '#98a2b3',
};
const QUADRANTS = ['does_not_do_enough', 'on_track', 'unwilling', 'does_not_know_how']; // legend order: TL, TR, BL, BR
const QUAD_COLOR = {
  on_track: '#2f855a',
  does_not_know_how: '#3b6fb6',
  does_not_do_enough: '#c98a1b',
  unwilling: '#b94a48',
};

const MONEY_COLUMNS = new Set(['premium', 'premium_target', 'premium_per_sale', 'premium_needed', 'trailing_premium_per_sale']);
const INT_COLUMNS = new Set([
  'visits', 'outlets_visited', 'consultations', 'customers_consulted', 'customers_interested', 'sales',
  'assigned_outlets', 'agents_on_roster', 'active_agents',
  'sales_needed', 'customers_needed', 'working_days_remaining', 'trailing_sales',
]);
const COUNT_COLUMNS = new Set([
  'planned_visits', 'planned_consultations', 'planned_sales',
  'sales_needed_per_working_day', 'customers_needed_per_working_day',
]);
const SIGNED_COLUMNS = new Set(['pace_gap']);

const state = {
  me: null,
  meta: null,
  history: null,
  index: new Map(),
  route: null,
  data: null,
  dataKey: '',
  error: null,
  seq: 0,
  navigating: false,
  lastRefresh: null,
  refreshError: null,
  charts: [],
  sort: { key: null, dir: -1 },
};

const $ = (sel, root = document) => root.querySelector(sel);

// ---------------------------------------------------------------------------------------------
// Formatting

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const nfInt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const nfCount = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const minus = (s) => s.replace(/^-/, '−');

function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function fmtInt(v) {
  return isNum(v) ? minus(nfInt.format(v)) : DASH;
}
// Counts that may be fractional (a plan's share of a period): one decimal, none from 100 up.
function fmtCount(v) {
  if (!isNum(v)) return DASH;
  return minus(Math.abs(v) >= 100 ? nfInt.format(v) : nfCount.format(v));
}
function fmtPct(v) {
  if (!isNum(v)) return DASH;
  const s = (v * 100).toFixed(1);
  return `${s === '-0.0' ? '0.0' : minus(s)}%`;
}
function fmtSignedPct(v) {
  if (!isNum(v)) return DASH;
  const s = (v * 100).toFixed(1);
  if (s === '0.0' || s === '-0.0') return '0.0%';
  return v > 0 ? `+${s}%` : `${minus(s)}%`;
}

// Money arrives as a decimal string ("123456.70"); it is shown in whole yuan, rounded half away
// from zero, without ever going through a float.
function fmtMoney(v) {
  if (v === null || v === undefined || v === '') return DASH;
  let s = typeof v === 'number' ? v.toFixed(2) : String(v).trim();
  if (!/^-?\d+(\.\d+)?$/.test(s)) return esc(s);
  const neg = s.startsWith('-');
  if (neg) s = s.slice(1);
  const [whole, frac = ''] = s.split('.');
  let yuan = BigInt(whole);
  if ((frac[0] ?? '0') >= '5') yuan += 1n;
  const grouped = yuan.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${neg && yuan !== 0n ? '−' : ''}¥${grouped}`;
}
function moneyNumber(v) {
  if (v === null || v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}
function fmtMoneyShort(n) {
  if (!isNum(n)) return DASH;
  const abs = Math.abs(n);
  const sign = n < 0 ? '−' : '';
  if (getLang() === 'zh') {
    if (abs >= 1e8) return `${sign}¥${(abs / 1e8).toFixed(2)}亿`;
    if (abs >= 1e4) return `${sign}¥${(abs / 1e4).toFixed(abs >= 1e6 ? 0 : 1)}万`;
    return `${sign}¥${nfInt.format(abs)}`;
  }
  if (abs >= 1e6) return `${sign}¥${(abs / 1e6).toFixed(2)}M`;
  if (abs >= 1e3) return `${sign}¥${(abs / 1e3).toFixed(0)}K`;
  return `${sign}¥${nfInt.format(abs)}`;
}

function fmtColumn(col, v) {
  if (v === null || v === undefined) return DASH;
  if (MONEY_COLUMNS.has(col)) return fmtMoney(v);
  if (INT_COLUMNS.has(col)) return fmtInt(v);
  if (COUNT_COLUMNS.has(col)) return fmtCount(v);
  if (SIGNED_COLUMNS.has(col)) return fmtSignedPct(v);
  if (col === 'coaching_quadrant') return t(`quad.${v}`);
  if (col === 'at_risk') return v ? t('badge.atRisk') : t('badge.onPace');
  if (col === 'needed_rates_basis') return t(`need.basis.${v}`);
  if (col === 'balance_drift') return v ? t('drift.yes') : t('drift.no');
  if (col === 'balance_drift_reason') return t(`drift.${v}`);
  if (typeof v === 'number') return fmtPct(v);
  return String(v);
}

const rawOf = (v) => (v === null || v === undefined ? '' : String(v));

// The count and money columns that events explain (an agent's or a team's row).
const EXPLAINED_COLUMNS = new Set(['visits', 'outlets_visited', 'consultations', 'customers_consulted',
  'customers_interested', 'sales', 'gross_premium', 'cancellations', 'refunds', 'premium']);

// A KPI figure: formatted text, the raw API value, the contract column name. A count or money
// figure of an agent or team row opens the events behind it.
function kpi(row, col, cls = '', text = null) {
  const v = row ? row[col] : null;
  const shown = text ?? fmtColumn(col, v);
  if (row && EXPLAINED_COLUMNS.has(col) && (row.scope === 'agent' || row.scope === 'team') && row.period_start) {
    return `<span class="kv explainable ${cls}" role="button" tabindex="0" title="${esc(t('explain.hint'))}" data-kpi="${esc(col)}" data-raw="${esc(rawOf(v))}" data-explain-scope="${esc(row.scope)}" data-explain-id="${esc(row.scope_id)}" data-explain-period="${esc(row.period)}" data-explain-start="${esc(row.period_start)}">${esc(shown)}</span>`;
  }
  return `<span class="kv ${cls}" data-kpi="${esc(col)}" data-raw="${esc(rawOf(v))}">${esc(shown)}</span>`;
}
function rowAttrs(row) {
  if (!row) return '';
  return `data-row-scope="${esc(row.scope)}" data-row-id="${esc(row.scope_id)}" data-row-period="${esc(row.period)}"`;
}

// Tone of a month row's premium pacing: good (on pace), warn (behind), bad (at risk), neutral.
function paceTone(row) {
  if (!row || !isNum(row.premium_attainment)) return 'neutral';
  if (row.at_risk === true) return 'bad';
  if (isNum(row.pace_gap) && row.pace_gap < 0) return 'warn';
  return 'good';
}
function projectedTone(row, threshold) {
  if (!row || !isNum(row.projected_attainment)) return 'neutral';
  if (row.at_risk === true || row.projected_attainment < threshold) return 'bad';
  if (row.projected_attainment < 1) return 'warn';
  return 'good';
}
function adherenceTone(v) {
  if (!isNum(v)) return 'neutral';
  if (v < willThreshold()) return 'bad';
  if (v < 1) return 'warn';
  return 'good';
}
function badge(row) {
  const tone = paceTone(row);
  const label = { good: 'badge.onPace', warn: 'badge.behind', bad: 'badge.atRisk', neutral: 'badge.noTarget' }[tone];
  return `<span class="badge tone-${tone}" data-kpi="at_risk" data-raw="${esc(rawOf(row?.at_risk))}">${esc(t(label))}</span>`;
}

function threshold() {
  return isNum(state.meta?.at_risk_threshold) ? state.meta.at_risk_threshold : 0.9;
}
function willThreshold() {
  return isNum(state.meta?.will_threshold) ? state.meta.will_threshold : WILL_THRESHOLD_DEFAULT;
}
function skillRatio() {
  return isNum(state.meta?.skill_ratio) ? state.meta.skill_ratio : SKILL_RATIO_DEFAULT;
}

// Dates (strings "YYYY-MM-DD", read as calendar dates, never shifted by time zones).
function parts(date) {
  const [y, m, d] = String(date).slice(0, 10).split('-').map(Number);
  return { y, m, d };
}
function isoWeek(date) {
  const { y, m, d } = parts(date);
  const day = new Date(Date.UTC(y, m - 1, d));
  const dow = (day.getUTCDay() + 6) % 7;
  day.setUTCDate(day.getUTCDate() - dow + 3);
  const jan4 = new Date(Date.UTC(day.getUTCFullYear(), 0, 4));
  return 1 + Math.round(((day - jan4) / 86_400_000 - 3 + ((jan4.getUTCDay() + 6) % 7)) / 7);
}
const shortDate = (date) => {
  const { m, d } = parts(date);
  return `${m}/${d}`;
};
function monthLabel(date) {
  const { y, m } = parts(date);
  const mon = new Date(Date.UTC(y, m - 1, 1)).toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  return t('month.label', { y, m, mon });
}
function addDays(date, n) {
  const { y, m, d } = parts(date);
  const x = new Date(Date.UTC(y, m - 1, d + n));
  return x.toISOString().slice(0, 10);
}
function fmtClock(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}
function fmtStamp(iso) {
  // "2026-11-18T10:00:01+08:00" → "2026-11-18 10:00:01" as written by the server (its own zone).
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2})?)/.exec(String(iso ?? ''));
  return m ? `${m[1]} ${m[2]}` : String(iso ?? DASH);
}
function fmtAgo(iso) {
  const then = Date.parse(iso);
  if (!Number.isFinite(then)) return '';
  const s = (Date.now() - then) / 1000;
  if (s < -60) return '';
  if (s < 60) return t('status.ago.now');
  if (s < 3600) return t('status.ago.min', { n: Math.floor(s / 60) });
  if (s < 86_400) return t('status.ago.hour', { n: Math.floor(s / 3600) });
  return t('status.ago.day', { n: Math.floor(s / 86_400) });
}

// ---------------------------------------------------------------------------------------------
// The organisation tree from api/meta

function buildIndex(meta) {
  const index = new Map();
  const put = (scope, id, name, parents) => index.set(`${scope}:${id}`, { scope, id, name, parents });
  for (const r of meta?.tree ?? []) {
    put('region', r.id, r.name ?? r.id, { region_id: r.id });
    for (const b of r.branches ?? []) {
      put('branch', b.id, b.name ?? b.id, { region_id: r.id, branch_id: b.id });
      for (const tm of b.teams ?? []) {
        put('team', tm.id, tm.name ?? tm.id, { region_id: r.id, branch_id: b.id, team_id: tm.id });
        for (const a of tm.agents ?? []) {
          const id = typeof a === 'string' ? a : a.id;
          const name = typeof a === 'string' ? a : a.name ?? a.id;
          put('agent', id, name, { region_id: r.id, branch_id: b.id, team_id: tm.id });
        }
      }
    }
  }
  return index;
}
// Names of agents that came with a scope answer (only those the user may see).
function addAgentNames(names) {
  for (const [id, name] of Object.entries(names ?? {})) {
    const entry = state.index.get(`agent:${id}`);
    if (entry) entry.name = name;
    else state.index.set(`agent:${id}`, { scope: 'agent', id, name, parents: {} });
  }
}
function nameOf(scope, id) {
  return state.index.get(`${scope}:${id}`)?.name ?? id;
}
function displayName(scope, id) {
  const n = nameOf(scope, id);
  return n && n !== id ? n : id;
}

// ---------------------------------------------------------------------------------------------
// Routing and loading

const PAGES = ['outlets', 'supervisors', 'supervisor'];
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const MONTH_RE = /^\d{4}-\d{2}$/;
function parseHash() {
  const p = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  const scope = p.get('scope');
  const id = p.get('id');
  // The view: an earlier as-of run and/or a month; kept while navigating.
  const asOf = DATE_RE.test(p.get('as_of') ?? '') ? p.get('as_of') : null;
  const month = MONTH_RE.test(p.get('month') ?? '') ? p.get('month') : null;
  const print = p.get('print') === 'review' ? 'review' : null;
  // The outlet page of a region, branch or team (or of everything the user sees); the
  // supervisors' ranking, and a supervisor's page (by id, or a team's supervisor).
  const page = PAGES.includes(p.get('page')) && scope !== 'agent' ? p.get('page') : null;
  const supervisor = page === 'supervisor' ? p.get('supervisor') : null;
  if (SCOPES.includes(scope) && id) return { scope, id, as_of: asOf, month, print: page ? null : print, page, supervisor };
  return { scope: 'root', id: null, as_of: asOf, month, print: null, page, supervisor };
}
// The view's parameters as a query string ('' for the latest figures).
function viewQuery(route = parseHash()) {
  const p = new URLSearchParams();
  if (route.as_of) p.set('as_of', route.as_of);
  if (route.month) p.set('month', route.month);
  return p.toString();
}
function hrefFor(scope, id, extra = {}) {
  const route = parseHash();
  const p = new URLSearchParams();
  if (scope !== 'root' && id) {
    p.set('scope', scope);
    p.set('id', id);
  }
  const view = { as_of: route.as_of, month: route.month, ...extra };
  if (view.as_of) p.set('as_of', view.as_of);
  if (view.month) p.set('month', view.month);
  if (extra.print) p.set('print', extra.print);
  if (extra.page) p.set('page', extra.page);
  const text = p.toString();
  return text ? `#${text}` : '#';
}
function go(scope, id) {
  const target = hrefFor(scope, id);
  if (window.location.hash === target || (target === '#' && window.location.hash === '')) load();
  else window.location.hash = target;
}

class ApiError extends Error {
  constructor(status, message, network = false) {
    super(message);
    this.status = status;
    this.network = network;
  }
}

async function api(path) {
  let res;
  try {
    res = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
  } catch (e) {
    throw new ApiError(0, e.message, true);
  }
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (res.status === 401) {
    // No session (never signed in, expired, signed out elsewhere): to the sign-in page, and
    // back here afterwards.
    window.location.assign(`login?next=${encodeURIComponent(`/${window.location.search}${window.location.hash}`)}`);
    throw new ApiError(401, body?.error ?? 'sign in first');
  }
  if (!res.ok) {
    const msg = body && typeof body.error === 'string' ? body.error : (text.slice(0, 200) || res.statusText);
    throw new ApiError(res.status, msg);
  }
  if (body === null) throw new ApiError(res.status, 'invalid JSON');
  return body;
}

function scopeUrl(scope, id, route) {
  const view = viewQuery(route);
  return `api/scope?scope=${scope}&id=${encodeURIComponent(id)}${view ? `&${view}` : ''}`;
}
// The teams under a node of the tree (the node itself for a team), for the print view.
function teamsUnder(meta, scope, id) {
  const teams = [];
  for (const r of meta?.tree ?? []) {
    for (const b of r.branches ?? []) {
      for (const tm of b.teams ?? []) {
        const inside = (scope === 'region' && r.id === id) || (scope === 'branch' && b.id === id) || (scope === 'team' && tm.id === id);
        if (inside) teams.push(tm.id);
      }
    }
  }
  return teams;
}
function outletsUrl(route) {
  const p = new URLSearchParams(viewQuery(route));
  if (route.scope !== 'root') {
    p.set('scope', route.scope);
    p.set('id', route.id);
  }
  const text = p.toString();
  return `api/outlets${text ? `?${text}` : ''}`;
}
async function fetchView(route, meta) {
  if (route.page === 'outlets') return { ...(await api(outletsUrl(route))), page: 'outlets' };
  if (route.page === 'supervisors') return { ...(await api(sup.supervisorsUrl(H, route))), page: 'supervisors' };
  if (route.page === 'supervisor') return { ...(await api(sup.supervisorUrl(H, route))), page: 'supervisor' };
  if (route.scope === 'root') {
    const regions = await Promise.all(
      (meta.tree ?? []).map((r) => api(scopeUrl('region', r.id, route))),
    );
    return { scope: 'root', regions };
  }
  if (route.print === 'review' && route.scope !== 'agent') {
    const teams = await Promise.all(teamsUnder(meta, route.scope, route.id).map(async (id) => ({
      ...(await api(scopeUrl('team', id, route))),
      supervision: await api(sup.supervisorUrl(H, { ...route, scope: 'team', id, supervisor: null })).catch(() => null),
    })));
    return { scope: route.scope, id: route.id, print: 'review', teams };
  }
  const view = await api(scopeUrl(route.scope, route.id, route));
  // The supervisor's side, beside the page: an agent's coaching, a team's supervisor (for
  // the weekly review sheet). Left out when it cannot be had.
  if (route.scope === 'agent') view.coaching = await api(sup.coachingUrl(H, route)).catch(() => null);
  if (route.scope === 'team') view.supervision = await api(sup.supervisorUrl(H, { ...route, supervisor: null })).catch(() => null);
  return view;
}

async function load({ silent = false } = {}) {
  if (silent && state.navigating) return;
  const seq = ++state.seq;
  const route = parseHash();
  const sameRoute = state.route && state.route.scope === route.scope && state.route.id === route.id && state.route.page === route.page;
  if (!silent) {
    state.navigating = true;
    showLoading(true);
    if (!sameRoute) state.sort = { key: null, dir: -1 };
  }
  try {
    if (!state.me) {
      state.me = await api('api/me');
      renderUser();
    }
    // A user with a scope of their own starts there: the overview is not theirs.
    const home = state.me.home;
    if (route.scope === 'root' && home && !(route.page === 'supervisor' && route.supervisor)) {
      if (route.page === 'outlets') window.location.hash = hrefFor(home.scope, home.id, { page: 'outlets' });
      else if (route.page === 'supervisors') window.location.hash = hrefFor(home.scope, home.id, { page: home.scope === 'team' ? 'supervisor' : 'supervisors' });
      else go(home.scope, home.id);
      return;
    }
    const view = viewQuery(route);
    const [meta, history] = await Promise.all([api(`api/meta${view ? `?${view}` : ''}`), api('api/history')]);
    const data = await fetchView(route, meta);
    if (seq !== state.seq) return;
    state.meta = meta;
    state.history = history;
    state.index = buildIndex(meta);
    addAgentNames(data.agent_names);
    for (const part of [...(data.regions ?? []), ...(data.teams ?? [])]) addAgentNames(part.agent_names);
    state.lastRefresh = new Date();
    state.refreshError = null;
    const key = JSON.stringify(data);
    const changed = !sameRoute || key !== state.dataKey || state.error !== null;
    state.route = route;
    state.data = data;
    state.dataKey = key;
    state.error = null;
    if (changed) render({ animate: !silent });
    renderChrome();
  } catch (e) {
    if (seq !== state.seq) return;
    if (silent && sameRoute && state.data && !state.error) {
      state.refreshError = e;
    } else {
      state.route = route;
      state.error = e;
      state.refreshError = null;
      state.data = null;
      state.dataKey = '';
      renderError(e);
    }
    renderChrome();
    if (!(e instanceof ApiError)) console.error(e);
  } finally {
    if (seq === state.seq) {
      state.navigating = false;
      showLoading(false);
    }
  }
}

function showLoading(on) {
  $('#loading-bar').hidden = !on;
  const view = $('#view');
  if (on && view.dataset.state === 'ready') view.classList.add('is-stale');
  if (!on) view.classList.remove('is-stale');
}

// ---------------------------------------------------------------------------------------------
// Header, breadcrumb, status line, search

function renderChrome() {
  applyStatic();
  for (const b of document.querySelectorAll('.lang-btn')) b.setAttribute('aria-pressed', String(b.dataset.lang === getLang()));
  renderBreadcrumb();
  renderHistory();
  renderStatus();
  fillSearch();
}

// The month selector and the as-of picker: the months and runs the KPI store holds for
// this user (api/history). Picking the newest month or run returns to the latest figures.
function renderHistory() {
  const el = $('#history');
  const h = state.history;
  if (!el || !h) return;
  const route = state.route ?? parseHash();
  const view = state.meta?.view;
  const currentMonth = view?.month_start ? String(view.month_start).slice(0, 7) : '';
  const months = (h.months ?? []).map((m) => {
    const tag = m.final ? t('history.final') : t('history.open');
    return `<option value="${esc(m.month)}"${m.month === currentMonth ? ' selected' : ''}>${esc(monthLabel(`${m.month}-01`))} · ${esc(tag)}</option>`;
  }).join('');
  const runs = (h.runs ?? []).map((r, i) => {
    const tag = i === 0 ? ` · ${t('history.latest')}` : '';
    return `<option value="${esc(r.as_of)}"${r.as_of === view?.as_of ? ' selected' : ''}>${esc(r.as_of)}${esc(tag)}</option>`;
  }).join('');
  el.innerHTML = `
    <label class="history-field"><span>${esc(t('history.month'))}</span><select id="month-select" data-history="month">${months}</select></label>
    <label class="history-field"><span>${esc(t('history.asOf'))}</span><select id="as-of-select" data-history="as_of">${runs}</select></label>`;
  el.hidden = false;
  el.dataset.viewing = route.as_of || route.month ? 'history' : 'latest';
}
function pickHistory(kind, value) {
  const route = parseHash();
  const h = state.history ?? {};
  const latestMonth = h.months?.[0]?.month;
  const extra = { as_of: null, month: null };
  if (kind === 'month' && value !== latestMonth) extra.month = value;
  if (kind === 'as_of' && value !== h.latest) extra.as_of = value;
  const target = hrefFor(route.scope, route.id, extra);
  if (window.location.hash === target || (target === '#' && window.location.hash === '')) load();
  else window.location.hash = target;
}

function renderBreadcrumb() {
  const route = state.route ?? parseHash();
  let crumbs = [{ scope: 'root', id: null, label: t('scope.all') }];
  if (route.scope !== 'root') {
    const entry = state.index.get(`${route.scope}:${route.id}`);
    const parents = entry?.parents ?? state.data?.parents ?? {};
    if (route.scope !== 'region' && parents.region_id) crumbs.push({ scope: 'region', id: parents.region_id });
    if (['team', 'agent'].includes(route.scope) && parents.branch_id) crumbs.push({ scope: 'branch', id: parents.branch_id });
    if (route.scope === 'agent' && parents.team_id) crumbs.push({ scope: 'team', id: parents.team_id });
    crumbs.push({ scope: route.scope, id: route.id });
  }
  // Above a user's own scope there is nothing they may open.
  const home = state.me?.home;
  if (home) {
    const at = crumbs.findIndex((c) => c.scope === home.scope && c.id === home.id);
    crumbs = at >= 0 ? crumbs.slice(at) : crumbs.filter((c) => c.scope !== 'root');
  }
  const html = crumbs.map((c, i) => {
    const label = c.label ?? displayName(c.scope, c.id);
    const kind = c.scope === 'root' ? '' : `<span class="crumb-kind">${esc(t(`scope.${c.scope}`))}</span>`;
    if (i === crumbs.length - 1) return `<span class="crumb current" aria-current="page" data-crumb="${esc(c.scope)}">${kind}${esc(label)}</span>`;
    return `<a class="crumb" href="${hrefFor(c.scope, c.id)}" data-crumb="${esc(c.scope)}">${kind}${esc(label)}</a>`;
  }).join('<span class="crumb-sep" aria-hidden="true">›</span>');
  $('#breadcrumb').innerHTML = html;
}

function renderStatus() {
  const el = $('#status');
  const meta = state.meta;
  if (!meta) {
    el.className = `status${state.error ? ' is-error' : ''}`;
    el.innerHTML = `<span class="status-dot" aria-hidden="true"></span><span class="status-text">${esc(state.error ? t('error.title') : t('status.loading'))}</span>`;
    return;
  }
  const ago = fmtAgo(meta.generated_at);
  const bits = [
    `<span>${esc(t('status.asOf'))} <b data-meta="as_of">${esc(meta.as_of ?? DASH)}</b></span>`,
    `<span>${esc(t('status.generated'))} <span data-meta="generated_at" title="${esc(meta.generated_at ?? '')}">${esc(fmtStamp(meta.generated_at))}</span>${ago ? ` <span class="muted">(${esc(ago)})</span>` : ''}</span>`,
  ];
  let cls = 'status';
  const view = meta.view;
  if (view && !(view.latest && String(view.month_start).slice(0, 7) === String(meta.as_of).slice(0, 7))) {
    cls += ' is-history';
    bits.unshift(`<span data-meta="viewing">${esc(t('history.viewing', { month: monthLabel(view.month_start), date: view.as_of }))} <a href="${hrefFor((state.route ?? parseHash()).scope, (state.route ?? parseHash()).id, { as_of: null, month: null })}" data-action="latest">${esc(t('history.back'))}</a></span>`);
  }
  // Problems of the pipeline behind the figures (meta.freshness): stale ones first.
  const problems = meta.freshness?.problems ?? [];
  if (problems.length) {
    const stale = problems.some((p) => p.stale);
    cls += ' is-warn';
    const why = problems
      .map((p) => t('status.problem', { component: p.component, since: p.since ? fmtStamp(p.since) : DASH, reason: p.reason }))
      .join('; ');
    bits.push(`<span data-meta="freshness" title="${esc(why)}">${esc(t(stale ? 'status.stale' : 'status.degraded', { why }))}</span>`);
  }
  if (state.refreshError) {
    cls += ' is-warn';
    const msg = state.refreshError.network ? t('error.network') : state.refreshError.message;
    bits.push(`<span>${esc(t('status.refreshFailed', { msg, time: state.lastRefresh ? fmtClock(state.lastRefresh) : DASH }))}</span>`);
  } else {
    bits.push(`<span class="muted" title="${esc(state.lastRefresh ? t('status.refreshed', { time: fmtClock(state.lastRefresh) }) : '')}">${esc(t('status.refresh'))}</span>`);
  }
  el.className = cls;
  el.innerHTML = `<span class="status-dot" aria-hidden="true"></span>${bits.join('<span class="sep">·</span>')}`;
}

let searchKey = '';
function fillSearch() {
  const key = `${getLang()}|${state.index.size}|${state.meta?.generated_at}`;
  if (key === searchKey) return;
  searchKey = key;
  const opts = [];
  // Nodes above a user's own scope are in the tree for their names only.
  const rank = { region: 0, branch: 1, team: 2, agent: 3 };
  const home = state.me?.home;
  for (const e of state.index.values()) {
    if (home && rank[e.scope] < rank[home.scope]) continue;
    const label = e.name && e.name !== e.id ? `${e.name} · ${e.id}` : e.id;
    opts.push(`<option value="${esc(label)}">${esc(t(`scope.${e.scope}`))}</option>`);
  }
  $('#search-list').innerHTML = opts.join('');
}
function findEntry(q) {
  const query = q.trim().toLowerCase();
  if (!query) return null;
  const rank = { region: 0, branch: 1, team: 2, agent: 3 };
  const home = state.me?.home;
  const entries = [...state.index.values()].filter((e) => !home || rank[e.scope] >= rank[home.scope]);
  const label = (e) => (e.name && e.name !== e.id ? `${e.name} · ${e.id}` : e.id).toLowerCase();
  return entries.find((e) => label(e) === query)
    ?? entries.find((e) => e.id.toLowerCase() === query || (e.name ?? '').toLowerCase() === query)
    ?? entries.find((e) => label(e).includes(query))
    ?? null;
}

// ---------------------------------------------------------------------------------------------
// Views

function destroyCharts() {
  for (const c of state.charts) c.destroy();
  state.charts = [];
}

function render({ animate = true } = {}) {
  const view = $('#view');
  const d = state.data;
  const route = state.route;
  destroyCharts();
  const charts = [];
  let html;
  if (d.page === 'outlets') html = renderOutlets(d);
  else if (d.page === 'supervisors') html = sup.renderSupervisors(H, d);
  else if (d.page === 'supervisor') html = sup.renderSupervisor(H, d);
  else if (route.scope === 'root') html = renderRoot(d, charts);
  else if (d.print === 'review') html = renderPrint(d);
  else html = renderScope(d, charts);
  view.innerHTML = html;
  view.dataset.state = 'ready';
  view.dataset.viewScope = route.scope;
  view.dataset.viewId = route.id ?? '';
  view.dataset.print = d.print ?? '';
  view.dataset.page = d.page ?? '';
  document.body.classList.toggle('printing', d.print === 'review');
  document.title = `${route.scope === 'root' ? t('scope.overview') : displayName(route.scope, route.id)} · ${t('app.title')}`;
  makeCharts(charts, animate);
  fillChanges(route);
}

// ---------------------------------------------------------------------------------------------
// The events behind a figure, and what changed since the previous run

function outcomeText(outcome) {
  if (outcome.kind === 'retracted' && outcome.by) return t('explain.outcome.retractedBy', { by: outcome.by });
  return t(`explain.outcome.${outcome.kind}`);
}

function eventRows(events, extra = () => '') {
  return events.map((e) => `
    <tr class="${e.counted_here ? 'counted' : 'not-counted'}">
      <td class="mono">${esc(e.event_id)}</td>
      <td>${esc(t(`explain.type.${e.event_type}`))}</td>
      <td>${esc(e.agent_id)}</td>
      <td>${esc(e.business_date)}</td>
      <td>${esc(fmtStamp(e.occurred_at))}</td>
      <td>${esc(e.source)}</td>
      <td>${esc(e.outlet_id ?? DASH)}</td>
      <td class="num">${e.amount ? esc(fmtMoney(e.amount)) : DASH}</td>
      <td>${esc(outcomeText(e.outcome))}${e.note ? ` · ${esc(t('explain.elsewhere'))}` : ''}${extra(e)}</td>
    </tr>`).join('');
}

function eventTable(events, extra) {
  return `<div class="table-wrap"><table class="tbl explain-events">
    <thead><tr>
      <th scope="col">${esc(t('explain.col.event'))}</th><th scope="col">${esc(t('explain.col.type'))}</th>
      <th scope="col">${esc(t('explain.col.agent'))}</th><th scope="col">${esc(t('explain.col.date'))}</th>
      <th scope="col">${esc(t('explain.col.time'))}</th><th scope="col">${esc(t('explain.col.source'))}</th>
      <th scope="col">${esc(t('explain.col.outlet'))}</th><th scope="col" class="num">${esc(t('explain.col.amount'))}</th>
      <th scope="col">${esc(t('explain.col.outcome'))}</th>
    </tr></thead>
    <tbody>${eventRows(events, extra)}</tbody></table></div>`;
}

async function openExplain(ds) {
  let dialog = $('#explain-dialog');
  if (!dialog) {
    dialog = document.createElement('dialog');
    dialog.id = 'explain-dialog';
    dialog.className = 'explain-dialog';
    document.body.appendChild(dialog);
  }
  const head = `<header class="card-head"><div class="card-title"><h2>${esc(t('explain.title'))}</h2>
    <span class="card-sub">${esc(displayName(ds.explainScope, ds.explainId))} · ${esc(ds.explainPeriod)} ${esc(ds.explainStart)}</span></div>
    <div class="card-extra"><button type="button" class="btn" data-action="close-explain">${esc(t('explain.close'))}</button></div></header>`;
  dialog.innerHTML = `${head}<p class="empty">${esc(t('explain.loading'))}</p>`;
  dialog.querySelector('[data-action="close-explain"]').addEventListener('click', () => dialog.close());
  if (!dialog.open) dialog.showModal();
  const view = viewQuery();
  const url = `api/explain?scope=${ds.explainScope}&id=${encodeURIComponent(ds.explainId)}&period=${ds.explainPeriod}&start=${ds.explainStart}${view ? `&${view}` : ''}`;
  try {
    const d = await api(url);
    const col = ds.kpi;
    const ok = d.adds_up?.[col];
    const figures = `<p class="explain-sum ${ok ? 'good' : 'bad'}">${esc(t(`col.${col}`))}: ${esc(t('explain.figure'))} ${esc(fmtColumn(col, d.kpi?.[col]))} ·
      ${esc(t('explain.sum'))} ${esc(fmtColumn(col, d.explained?.[col]))} — ${esc(t(ok ? 'explain.addsUp' : 'explain.differs'))}</p>`;
    const body = d.events.length ? eventTable(d.events) : `<p class="empty">${esc(t('explain.empty'))}</p>`;
    dialog.innerHTML = `${head}${figures}${body}`;
  } catch (e) {
    dialog.innerHTML = `${head}<p class="empty">${esc(e.message)}</p>`;
  }
  dialog.querySelector('[data-action="close-explain"]').addEventListener('click', () => dialog.close());
}

// Fills the "what changed since yesterday" card of a scope page, when it has one.
async function fillChanges(route) {
  const slot = $('#view [data-card="changes"] .changes-body');
  if (!slot || !route?.id) return;
  const view = viewQuery(route);
  try {
    const d = await api(`api/changes?scope=${route.scope}&id=${encodeURIComponent(route.id)}${view ? `&${view}` : ''}`);
    if (!d.previous_as_of) {
      slot.innerHTML = `<p class="empty">${esc(t('changes.noPrevious'))}</p>`;
      return;
    }
    const since = `<p class="card-sub">${esc(t('changes.since', { date: d.previous_as_of }))}</p>`;
    if (!d.moved.length) {
      slot.innerHTML = `${since}<p class="empty">${esc(t('changes.none'))}</p>`;
      return;
    }
    const moved = d.moved.map((m) => `<li>${esc(displayName(m.scope, m.scope_id))} · ${esc(m.period)} ${esc(m.period_start)}: ${
      m.columns.map((c) => `${esc(t(`col.${c.column}`))} ${esc(fmtColumn(c.column, c.before))} → ${esc(fmtColumn(c.column, c.now))}`).join('，')}</li>`).join('');
    const events = d.events.length
      ? `<h3>${esc(t('changes.events'))}</h3>${eventTable(d.events, (e) => ` · <strong>${esc(t(`changes.cause.${e.cause}`))}</strong>`)}`
      : '';
    slot.innerHTML = `${since}<h3>${esc(t('changes.moved'))}</h3><ul class="changes-moved">${moved}</ul>${events}`;
  } catch (e) {
    slot.innerHTML = `<p class="empty">${esc(e.message)}</p>`;
  }
}

function renderUser() {
  const me = state.me;
  const form = $('#user');
  if (!me || !form) return;
  $('#user-name').textContent = me.user;
  $('#user-role').textContent = t(`role.${me.role}`) + (me.scope?.id ? ` · ${me.scope.id}` : '');
  $('#user-csrf').value = me.csrf;
  form.dataset.role = me.role;
  form.hidden = false;
}

function renderError(e) {
  destroyCharts();
  const view = $('#view');
  let detail;
  if (e.network) detail = t('error.network');
  else if (e.status === 403) detail = t('error.forbidden');
  else if (e.status === 404) detail = t('error.notFound', { msg: e.message });
  else if (e.status) detail = t('error.server', { status: e.status, msg: e.message });
  else detail = e.message;
  view.innerHTML = `
    <section class="card error-card" role="alert">
      <div class="error-icon" aria-hidden="true">!</div>
      <div>
        <h2>${esc(t('error.title'))}</h2>
        <p class="error-detail">${esc(detail)}</p>
        <div class="error-actions">
          <button type="button" class="btn primary" data-action="retry">${esc(t('error.retry'))}</button>
          <a class="btn" href="#">${esc(t('error.home'))}</a>
        </div>
      </div>
    </section>`;
  view.dataset.state = 'error';
  view.dataset.viewScope = state.route?.scope ?? '';
  view.dataset.viewId = state.route?.id ?? '';
}

// Export buttons of a table: a plain form posted to api/export, so that the browser
// downloads the answer. The server filters the table to the user's scope and audits it.
function exportForm(table) {
  const route = state.route;
  if (!state.me || !route || route.scope === 'root' || route.print) return '';
  const fields = {
    csrf: state.me.csrf, table, scope: route.scope, id: route.id, lang: getLang(),
    as_of: route.as_of ?? '', month: route.month ?? '',
  };
  const hidden = Object.entries(fields).map(([k, v]) => `<input type="hidden" name="${k}" value="${esc(v)}">`).join('');
  return `<form class="export" method="post" action="api/export" data-export="${esc(table)}" title="${esc(t('export.title'))}">${hidden}`
    + `<button type="submit" class="btn-mini" name="format" value="xlsx" data-format="xlsx">${esc(t('export.xlsx'))}</button>`
    + `<button type="submit" class="btn-mini" name="format" value="csv" data-format="csv">${esc(t('export.csv'))}</button></form>`;
}

// The weekly review sheets of every team under a node, one A4 landscape page each.
function renderPrint(d) {
  const teams = d.teams ?? [];
  const back = hrefFor(d.scope, d.id);
  const toolbar = `
    <div class="print-toolbar">
      <button type="button" class="btn primary" data-action="print">${esc(t('print.now'))}</button>
      <a class="btn" href="${back}">${esc(t('print.back'))}</a>
    </div>`;
  if (teams.length === 0) return `${toolbar}<p class="empty">${esc(t('print.none'))}</p>`;
  const sheets = teams.map((team) => {
    const weekStart = team.review?.week_start ?? state.meta?.week_start;
    const n = weekStart ? isoWeek(weekStart) : '';
    const parents = team.parents ?? {};
    const where = [parents.region_id && displayName('region', parents.region_id), parents.branch_id && displayName('branch', parents.branch_id)].filter(Boolean).join(' · ');
    return `
      <section class="print-sheet" data-print-team="${esc(team.id)}">
        <header class="print-head">
          <h1>${esc(t('print.title', { name: team.name ?? team.id, n }))}</h1>
          <p>${esc(where)}${where ? ' · ' : ''}${esc(t('tiles.note', { date: state.meta?.as_of ?? DASH }))}</p>
        </header>
        ${reviewCard(team, 'team', 'print-card')}
      </section>`;
  }).join('');
  return `${toolbar}<div class="print-sheets">${sheets}</div>`;
}

// The outlet page (网点分析): the month's summaries by grade, 破零 and dormancy, and the
// outlets with grade, dormant flag and days since the last visit, dormant first.
const GRADES = ['A', 'B', 'C', 'D'];
function outletCell(row, col, text = null) {
  const v = row ? row[col] : null;
  let shown = text;
  if (shown === null) {
    if (v === null || v === undefined) shown = DASH;
    else if (['premium', 'gross_premium', 'refunds', 'grade_basis_premium'].includes(col)) shown = fmtMoney(v);
    else if (typeof v === 'number') shown = fmtInt(v);
    else if (typeof v === 'boolean') shown = v ? t('outlets.yes') : '';
    else shown = String(v);
  }
  return `<span class="kv" data-kpi="${esc(col)}" data-raw="${esc(rawOf(v))}">${esc(shown)}</span>`;
}
function outletRowAttrs(row) {
  return `data-row-scope="${esc(row.scope)}" data-row-id="${esc(row.scope_id)}" data-row-month="${esc(row.month)}"`;
}
function gradeChip(grade) {
  return grade ? `<span class="grade grade-${esc(grade.toLowerCase())}">${esc(grade)}</span>` : DASH;
}
function outletSummaryCard(rows) {
  const head = cardHead(t('outlets.summary.title'), '', t('outlets.summary.sub'));
  if (rows.length === 0) return card('span-12', head, `<p class="empty">${esc(t('outlets.empty'))}</p>`);
  const body = rows.map((r) => `
    <tr class="nav-row" tabindex="0" data-nav-scope="${esc(r.scope)}" data-nav-id="${esc(r.scope_id)}" data-nav-page="outlets" ${outletRowAttrs(r)}>
      <td class="name"><span class="chip chip-${esc(r.scope)}">${esc(t(`scope.${r.scope}`))}</span> <span class="cell-name">${esc(displayName(r.scope, r.scope_id))}</span></td>
      <td class="num">${outletCell(r, 'outlets')}</td>
      ${GRADES.map((g) => `<td class="num">${outletCell(r, `grade_${g.toLowerCase()}_outlets`)}</td>`).join('')}
      <td class="num">${outletCell(r, 'first_sale_outlets')}</td>
      <td class="num">${outletCell(r, 'outlets_with_sale')}</td>
      <td class="num tone-text-bad">${outletCell(r, 'dormant_outlets')}</td>
      <td class="num">${outletCell(r, 'visits')}</td>
      <td class="num">${outletCell(r, 'premium')}</td>
    </tr>`).join('');
  const table = `
    <div class="table-wrap">
      <table class="table">
        <thead><tr>
          <th scope="col">${esc(t('col.name'))}</th>
          <th class="num" scope="col">${esc(t('outlets.col.outlets'))}</th>
          ${GRADES.map((g) => `<th class="num" scope="col">${esc(t('outlets.col.grade', { g }))}</th>`).join('')}
          <th class="num" scope="col">${esc(t('outlets.col.breaksZero'))}</th>
          <th class="num" scope="col">${esc(t('outlets.col.withSale'))}</th>
          <th class="num" scope="col">${esc(t('outlets.col.dormant'))}</th>
          <th class="num" scope="col">${esc(t('col.visits'))}</th>
          <th class="num" scope="col">${esc(t('col.premium'))}</th>
        </tr></thead>
        <tbody>${body}</tbody>
      </table>
    </div>`;
  return card('span-12', head, table, 'data-card="outlet-summary"');
}
function outletListCard(rows) {
  const dormant = rows.filter((r) => r.dormant === true).length;
  const head = cardHead(t('outlets.list.title'), `${dormant ? `<span class="count-badge tone-bad">${dormant}</span>` : ''}${exportForm('outlets')}`, t('outlets.list.sub'));
  if (rows.length === 0) return card('span-12', head, `<p class="empty">${esc(t('outlets.empty'))}</p>`);
  const body = rows.map((r) => {
    const name = r.outlet_name ? `<span class="cell-name">${esc(r.outlet_name)}</span><span class="cell-id">${esc(r.scope_id)}</span>` : `<span class="cell-name mono">${esc(r.scope_id)}</span>`;
    const agent = r.agent_id ? esc(displayName('agent', r.agent_id)) : esc(t('outlets.unassigned'));
    const flags = [
      r.dormant === true ? `<span class="badge tone-bad" data-kpi="dormant" data-raw="true">${esc(t('outlets.dormant'))}</span>` : '',
      r.breaks_zero === true ? `<span class="badge tone-good" data-kpi="breaks_zero" data-raw="true">${esc(t('outlets.breaksZero'))}</span>` : '',
    ].join(' ');
    return `
      <tr class="${r.dormant === true ? 'is-dormant' : ''}" ${outletRowAttrs(r)}>
        <td class="name">${name}</td>
        <td>${agent}${r.team_id ? `<span class="cell-id">${esc(displayName('team', r.team_id))}</span>` : ''}</td>
        <td><span data-kpi="grade" data-raw="${esc(rawOf(r.grade))}">${gradeChip(r.grade)}</span></td>
        <td class="num">${outletCell(r, 'grade_basis_premium')}</td>
        <td class="num">${outletCell(r, 'days_since_last_visit', isNum(r.days_since_last_visit) ? t('outlets.days', { n: r.days_since_last_visit }) : t('outlets.neverVisited'))}</td>
        <td class="num">${outletCell(r, 'working_days_without_visit')}</td>
        <td class="num">${outletCell(r, 'visits')}</td>
        <td class="num">${outletCell(r, 'sales')}</td>
        <td class="num">${outletCell(r, 'premium')}</td>
        <td>${outletCell(r, 'first_sale_date')}</td>
        <td class="status-cell">${flags}</td>
      </tr>`;
  }).join('');
  const table = `
    <div class="table-wrap">
      <table class="table">
        <thead><tr>
          <th scope="col">${esc(t('outlets.col.outlet'))}</th>
          <th scope="col">${esc(t('outlets.col.agent'))}</th>
          <th scope="col">${esc(t('outlets.col.gradeOnly'))}</th>
          <th class="num" scope="col">${esc(t('outlets.col.basis'))}</th>
          <th class="num" scope="col">${esc(t('outlets.col.sinceVisit'))}</th>
          <th class="num" scope="col">${esc(t('outlets.col.workingDays'))}</th>
          <th class="num" scope="col">${esc(t('col.visits'))}</th>
          <th class="num" scope="col">${esc(t('outlets.col.sales'))}</th>
          <th class="num" scope="col">${esc(t('col.premium'))}</th>
          <th scope="col">${esc(t('outlets.col.firstSale'))}</th>
          <th scope="col">${esc(t('col.status'))}</th>
        </tr></thead>
        <tbody>${body}</tbody>
      </table>
    </div>`;
  return card('span-12', head, table, 'data-card="outlet-list"');
}
function renderOutlets(d) {
  const scope = d.scope ?? 'root';
  const id = d.id ?? null;
  const name = scope === 'root' ? t('scope.overview') : displayName(scope, id);
  const back = `<a class="btn" href="${hrefFor(scope, id)}" data-action="outlets-back">${esc(t('outlets.back'))}</a>`;
  return `
    ${viewHead(scope, id, name, t('outlets.title'), periodHtml()).replace(/<a class="btn" href="[^"]*" data-action="outlets-view">[^<]*<\/a>/, back)}
    <div class="grid">
      ${outletSummaryCard(d.summary ?? [])}
      ${outletListCard(d.outlets ?? [])}
    </div>`;
}

// Filled once the page is shown (fillChanges): it reads the log, so it never holds the page up.
function changesCard(span) {
  return card(span, cardHead(t('changes.title')), `<div class="changes-body"><p class="empty">${esc(t('explain.loading'))}</p></div>`, 'data-card="changes"');
}

function card(cls, head, body, attrs = '') {
  return `<section class="card ${cls}" ${attrs}>${head}${body}</section>`;
}
function cardHead(title, extra = '', sub = '') {
  return `<header class="card-head"><div class="card-title"><h2>${esc(title)}</h2>${sub ? `<span class="card-sub">${esc(sub)}</span>` : ''}</div>${extra ? `<div class="card-extra">${extra}</div>` : ''}</header>`;
}

function viewHead(scope, id, name, subtitle, periodHtml) {
  const chip = scope === 'root' ? '' : `<span class="chip chip-${esc(scope)}">${esc(t(`scope.${scope}`))}</span>`;
  const idTag = scope === 'root' || !id || name === id ? '' : `<span class="view-id">${esc(id)}</span>`;
  return `
    <div class="view-head">
      <div>
        <div class="eyebrow">${chip}${idTag}${subtitle ? `<span class="eyebrow-sub${chip || idTag ? ' after' : ''}">${esc(subtitle)}</span>` : ''}</div>
        <h1>${esc(name)}</h1>
      </div>
      <div class="view-side">
        <div class="view-period">${periodHtml}</div>
        ${['root', 'region', 'branch', 'team'].includes(scope) ? `<a class="btn" href="${hrefFor(scope, id, { page: 'outlets' })}" data-action="outlets-view">${esc(t('outlets.open'))}</a>` : ''}
        ${['root', 'region', 'branch'].includes(scope) ? `<a class="btn" href="${hrefFor(scope, id, { page: 'supervisors' })}" data-action="supervisors-view">${esc(t('sup.open'))}</a>` : ''}
        ${scope === 'team' ? `<a class="btn" href="${hrefFor(scope, id, { page: 'supervisor' })}" data-action="supervisor-view">${esc(t('sup.teamOpen'))}</a>` : ''}
        ${['region', 'branch', 'team'].includes(scope) ? `<a class="btn btn-print" href="${hrefFor(scope, id, { print: 'review' })}" data-action="print-view">${esc(t('print.review'))}</a>` : ''}
      </div>
    </div>`;
}

function periodHtml() {
  const meta = state.meta ?? {};
  const asOf = meta.as_of;
  const weekStart = meta.week_start ?? (asOf ? addDays(asOf, -((new Date(`${asOf}T00:00:00Z`).getUTCDay() + 6) % 7)) : null);
  return `
    <div class="period-main">${esc(asOf ? monthLabel(meta.month_start ?? asOf) : DASH)}</div>
    <div class="period-sub">${weekStart ? `${esc(t('week.label', { n: isoWeek(weekStart) }))} · ` : ''}${esc(t('tiles.note', { date: asOf ?? DASH }))}</div>`;
}

function renderRoot(d, charts) {
  const rows = d.regions.map((r) => r.month).filter(Boolean);
  const ranking = d.regions.flatMap((r) => r.ranking ?? []);
  const atRisk = d.regions.flatMap((r) => r.at_risk ?? [])
    .sort((a, b) => (a.projected_attainment ?? 0) - (b.projected_attainment ?? 0));
  return `
    ${viewHead('root', null, t('scope.overview'), t('scope.overview.note'), periodHtml())}
    <div class="grid">
      <div class="stack span-8">
        ${childrenCard({ scope: 'root', children: rows }, 'region', '')}
        ${rankingCard(ranking, null, charts, '', 'team')}
      </div>
      <div class="stack span-4">${riskCard(atRisk, null, '')}</div>
    </div>`;
}

// Layout: pacing and activity on top; then the table of children with the weekly trend under
// it, beside the at-risk list with the ranking under it; then the coaching quadrant and the
// weekly review sheet. An agent has no children, ranking or at-risk list of its own.
function renderScope(d, charts) {
  const scope = d.scope ?? state.route.scope;
  const id = d.id ?? state.route.id;
  const name = d.name ?? displayName(scope, id);
  const parents = d.parents ?? {};
  const parentName = scope === 'agent' && parents.team_id ? displayName('team', parents.team_id)
    : scope === 'team' && parents.branch_id ? displayName('branch', parents.branch_id)
      : scope === 'branch' && parents.region_id ? displayName('region', parents.region_id) : '';
  const m = d.month;
  const parts = [viewHead(scope, id, name, parentName, periodHtml())];
  parts.push('<div class="grid">');
  if (m) {
    parts.push(pacingCard(m, 'span-5'));
    parts.push(tilesCard(m, scope, 'span-7'));
    if (scope === 'agent' || scope === 'team') parts.push(quotaCard(m, d, scope, 'span-12'));
  } else {
    parts.push(card('span-12 empty-card', cardHead(t('pacing.title')), `<p class="empty">${esc(t('empty.noData'))}</p>`));
  }
  if (scope !== 'agent') {
    const useAgents = scope === 'team' && (d.ranking ?? []).length <= 1 && (d.children ?? []).length > 0;
    parts.push(`<div class="stack span-8">${childrenCard(d, CHILD[scope], '')}${trendCard(d.trend ?? [], charts, '')}</div>`);
    parts.push(`<div class="stack span-4">${riskCard(d.at_risk ?? [], m, '')}${rankingCard(useAgents ? d.children : d.ranking ?? [], m, charts, '', useAgents ? 'agent' : 'team')}</div>`);
    parts.push(quadrantCard(d.quadrant ?? [], scope, charts, 'span-12 wide'));
    if (scope === 'team') parts.push(reviewCard(d, scope, 'span-12'));
    parts.push(changesCard('span-12'));
  } else {
    parts.push(trendCard(d.trend ?? [], charts, 'span-12'));
    parts.push(quadrantCard(d.quadrant ?? [], scope, charts, 'span-7'));
    parts.push(reviewCard(d, scope, 'span-5'));
    parts.push(sup.coachingCard(H, d.coaching, 'span-12'));
    parts.push(changesCard('span-12'));
  }
  parts.push('</div>');
  return parts.join('');
}

// 1. Pacing ---------------------------------------------------------------------------------

function pacingCard(m, span) {
  const tone = paceTone(m);
  const att = m.premium_attainment;
  const tp = m.time_progress;
  const pct = (x) => `${Math.max(0, Math.min(1, x)) * 100}%`;
  const hasTarget = isNum(att);
  const marker = isNum(tp) ? `<div class="marker" style="left:${pct(tp)}" title="${esc(t('pacing.timeProgress'))}"></div>` : '';
  const bars = `
    <div class="bars">
      <div class="bar-row">
        <span class="bar-label">${esc(t('pacing.bar.premium'))}</span>
        <div class="track"><div class="fill tone-${tone}" style="width:${hasTarget ? pct(att) : '0%'}"></div>${marker}<div class="tick-100"></div></div>
        ${kpi(m, 'premium_attainment', `bar-val tone-text-${tone}`)}
      </div>
      <div class="bar-row">
        <span class="bar-label">${esc(t('pacing.bar.time'))}</span>
        <div class="track thin"><div class="fill time" style="width:${isNum(tp) ? pct(tp) : '0%'}"></div><div class="tick-100"></div></div>
        ${kpi(m, 'time_progress', 'bar-val')}
      </div>
    </div>`;
  const thr = threshold();
  const pTone = projectedTone(m, thr);
  const gapTone = !isNum(m.pace_gap) ? 'neutral' : m.pace_gap < 0 ? (m.at_risk ? 'bad' : 'warn') : 'good';
  const stats = `
    <div class="stats">
      <div class="stat"><div class="stat-label">${esc(t('pacing.attainment'))}</div><div class="stat-value tone-text-${tone}">${kpi(m, 'premium_attainment')}</div></div>
      <div class="stat"><div class="stat-label">${esc(t('pacing.timeProgress'))}</div><div class="stat-value">${kpi(m, 'time_progress')}</div></div>
      <div class="stat" title="${esc(t('pacing.paceGap.hint'))}"><div class="stat-label">${esc(t('pacing.paceGap'))}</div><div class="stat-value tone-text-${gapTone}">${kpi(m, 'pace_gap')}</div></div>
      <div class="stat" title="${esc(t('pacing.projected.hint'))}"><div class="stat-label">${esc(t('pacing.projected'))}</div><div class="stat-value tone-text-${pTone}">${kpi(m, 'projected_attainment')}</div><div class="stat-note">${esc(t('pacing.threshold', { p: fmtPct(thr) }))}</div></div>
    </div>`;
  let note = '';
  const premium = moneyNumber(m.premium);
  const target = moneyNumber(m.premium_target);
  if (!hasTarget) {
    note = `<p class="pacing-note">${esc(t('pacing.noTarget'))}</p>`;
  } else if (isNum(tp) && tp >= 1) {
    note = `<p class="pacing-note">${esc(t('pacing.closed'))}</p>`;
  } else if (isNum(tp) && tp > 0 && premium !== null && target !== null) {
    const forecast = premium / tp;
    const diff = forecast - target;
    const tail = diff < 0 ? t('pacing.shortfall', { amount: fmtMoneyShort(-diff) }) : t('pacing.ahead', { amount: fmtMoneyShort(diff) });
    note = `<p class="pacing-note tone-text-${pTone === 'good' ? 'neutral' : pTone}">${esc(t('pacing.forecast', { amount: fmtMoneyShort(forecast) }) + tail)}</p>`;
  }
  const body = `
    <div class="premium-line">
      <div class="premium-big">${kpi(m, 'premium')}</div>
      <div class="premium-target">${esc(t('pacing.target'))} ${kpi(m, 'premium_target')}</div>
    </div>
    ${bars}
    ${stats}
    ${note}`;
  return card(`pacing ${span} edge-${tone}`, cardHead(t('pacing.title'), badge(m)), body, rowAttrs(m));
}

// Activity tiles ----------------------------------------------------------------------------

function tile(label, value, sub = '', cls = '') {
  return `<div class="tile ${cls}"><div class="tile-label">${esc(label)}</div><div class="tile-value">${value}</div>${sub ? `<div class="tile-sub">${sub}</div>` : ''}</div>`;
}
function planSub(m, plannedCol, adhCol) {
  return `${esc(t('kpi.planned'))} ${kpi(m, plannedCol)}<span class="dot-sep">·</span>${kpi(m, adhCol, `tone-text-${adherenceTone(m[adhCol])}`)}`;
}
function tilesCard(m, scope, span) {
  const tiles = [
    tile(t('kpi.visits'), kpi(m, 'visits'), planSub(m, 'planned_visits', 'plan_adherence_visits')),
    tile(t('kpi.outlets_visited'), kpi(m, 'outlets_visited'), `${esc(t('kpi.assigned_outlets'))} ${kpi(m, 'assigned_outlets')}`),
    tile(t('kpi.consultations'), kpi(m, 'consultations'), planSub(m, 'planned_consultations', 'plan_adherence_consultations')),
    tile(t('kpi.customers_consulted'), kpi(m, 'customers_consulted'), `${esc(t('kpi.customers_interested'))} ${kpi(m, 'customers_interested')}`),
    tile(t('kpi.sales'), kpi(m, 'sales'), planSub(m, 'planned_sales', 'plan_adherence_sales')),
    tile(t('kpi.close_rate'), kpi(m, 'close_rate'), scope === 'agent'
      ? `${esc(t('kpi.team_median'))} ${kpi(m, 'team_median_close_rate')}`
      : esc(t('kpi.close_rate.formula'))),
    tile(t('kpi.outlet_activity_rate'), kpi(m, 'outlet_activity_rate'), isNum(m.outlet_activity_rate_target)
      ? `${esc(t('kpi.target'))} ${kpi(m, 'outlet_activity_rate_target')}<span class="dot-sep">·</span>${kpi(m, 'outlet_activity_rate_attainment', `tone-text-${adherenceTone(m.outlet_activity_rate_attainment)}`)}`
      : `${esc(t('kpi.target'))} ${kpi(m, 'outlet_activity_rate_target')}`),
    tile(t('kpi.visit_coverage'), kpi(m, 'visit_coverage'), esc(t('kpi.visit_coverage.formula'))),
  ];
  if (scope !== 'agent') {
    tiles.push(tile(t('kpi.agent_activity_rate'), kpi(m, 'agent_activity_rate'),
      `${esc(t('kpi.active_agents'))} ${kpi(m, 'active_agents')} / ${kpi(m, 'agents_on_roster')}`));
  }
  tiles.push(tile(t('kpi.premium_per_sale'), kpi(m, 'premium_per_sale'), esc(t('kpi.premium_per_sale.formula'))));
  if (scope === 'agent') {
    const q = m.coaching_quadrant;
    tiles.push(tile(t('quad.agentCause'), kpi(m, 'coaching_quadrant', q ? `quad-text q-${q}` : ''),
      q ? esc(t(`quad.${q}.action`)) : esc(t('quad.title')), 'tile-quad'));
  }
  return card(`tiles-card ${span}`, cardHead(t('tiles.title'), '', t('tiles.note', { date: m.as_of ?? state.meta?.as_of ?? DASH })),
    `<div class="tiles">${tiles.join('')}</div>`, rowAttrs(m));
}

// Activity needed and quota balance ---------------------------------------------------------

// Whether a row carries a column: runs computed before it existed do not (shown without it).
const has = (row, col) => !!row && Object.hasOwn(row, col);

// 实收保费 = 活动量 × 签单率 worked backwards: what the month still needs, in a supervisor's words.
function neededHtml(m) {
  if (!has(m, 'needed_rates_basis')) return '';
  const lines = [];
  const perDay = (col, key) => (isNum(m[col])
    ? `<p class="need-line">${esc(t(`${key}.before`))} ${kpi(m, col, 'need-figure', fmtCount(m[col]))} ${esc(t(`${key}.after`))}</p>`
    : '');
  if (m.premium_needed !== null && m.premium_needed !== undefined) {
    const daily = perDay('customers_needed_per_working_day', 'need.customers') + perDay('sales_needed_per_working_day', 'need.sales');
    lines.push(daily || `<p class="need-line">${esc(t('need.noDayLeft'))}</p>`);
    lines.push(`<p class="need-total">${esc(t('need.gap'))} ${kpi(m, 'premium_needed')}<span class="dot-sep">·</span>${esc(t('need.totalSales'))} ${kpi(m, 'sales_needed')}<span class="dot-sep">·</span>${esc(t('need.totalCustomers'))} ${kpi(m, 'customers_needed')}<span class="dot-sep">·</span>${esc(t('need.daysLeft'))} ${kpi(m, 'working_days_remaining')}</p>`);
  } else if (m.needed_rates_basis) {
    const met = isNum(m.premium_attainment) && m.premium_attainment >= 1;
    lines.push(`<p class="need-line">${esc(t(met ? 'need.met' : 'need.noTarget'))}</p>`);
  } else {
    return '';
  }
  if (m.needed_rates_basis) {
    lines.push(`<p class="need-basis">${esc(t('need.basisLead'))} ${kpi(m, 'needed_rates_basis')}<span class="dot-sep">·</span>${esc(t('kpi.premium_per_sale'))} ${kpi(m, 'trailing_premium_per_sale')}<span class="dot-sep">·</span>${esc(t('kpi.close_rate'))} ${kpi(m, 'trailing_close_rate')}<span class="dot-sep">·</span>${esc(t('need.ownSales'))} ${kpi(m, 'trailing_sales')}</p>`);
  }
  return `<div class="need"><h3>${esc(t('need.title'))}</h3>${lines.join('')}</div>`;
}

// 平衡的责任额: a row's drift finding with its reason, in words.
function driftHtml(row, label) {
  if (!has(row, 'balance_drift') || row.balance_drift === null) return '';
  if (row.balance_drift !== true) {
    return `<p class="drift-line" ${rowAttrs(row)}>${esc(label)} ${kpi(row, 'balance_drift', 'badge tone-good')}</p>`;
  }
  const pct = (col) => (isNum(row[col]) ? fmtPct(row[col]) : DASH);
  const reason = t(`drift.explain.${row.balance_drift_reason}`, {
    v: pct('plan_adherence_visits'), c: pct('plan_adherence_consultations'), s: pct('plan_adherence_sales'),
  });
  return `<p class="drift-line" ${rowAttrs(row)}>${esc(label)} ${kpi(row, 'balance_drift', 'badge tone-bad')} ${kpi(row, 'balance_drift_reason', 'drift-reason', reason)}</p>`;
}

function mixHtml(m, scope) {
  if (!has(m, 'visits_share')) return '';
  const kinds = ['visits', 'consultations', 'sales'];
  const row = (label, prefix) => `<tr><th>${esc(label)}</th>${kinds.map((k) => `<td>${kpi(m, `${prefix}${k}_share`)}</td>`).join('')}</tr>`;
  return `<table class="mix"><thead><tr><th></th>${kinds.map((k) => `<th>${esc(t(`kpi.${k}`))}</th>`).join('')}</tr></thead><tbody>
    ${row(t('mix.actual'), '')}${row(t('mix.planned'), 'planned_')}${row(t(scope === 'agent' ? 'mix.normTeam' : 'mix.normBranch'), 'norm_')}</tbody></table>`;
}

function quotaCard(m, d, scope, span) {
  if (!has(m, 'needed_rates_basis') && !has(m, 'balance_drift')) return '';
  const findings = [driftHtml(m, t('drift.month')), driftHtml(d.week, t('drift.week'))].join('');
  // On a team's page: the agents whose month drifts, with why.
  const drifting = scope === 'team'
    ? (d.children ?? []).filter((r) => r.scope === 'agent' && r.balance_drift === true)
    : [];
  const members = drifting.length
    ? `<p class="drift-members">${esc(t('drift.members'))} ${drifting.map((r) => `<a href="#scope=agent&id=${encodeURIComponent(r.scope_id)}">${esc(displayName('agent', r.scope_id))}</a> (${esc(t(`drift.${r.balance_drift_reason}`))})`).join('，')}</p>`
    : '';
  const balance = `<div class="balance"><h3>${esc(t('mix.title'))}</h3>${mixHtml(m, scope)}${findings || `<p class="drift-line">${esc(t('drift.unjudged'))}</p>`}${members}</div>`;
  return card(`quota ${span}`, cardHead(t('quota.title'), '', t('quota.subtitle')), `<div class="quota-body">${neededHtml(m)}${balance}</div>`, rowAttrs(m));
}

// 2. Children table -------------------------------------------------------------------------

const SORTERS = {
  name: (r) => r.scope_id,
  premium: (r) => moneyNumber(r.premium),
  premium_attainment: (r) => r.premium_attainment,
  projected_attainment: (r) => r.projected_attainment,
  visits: (r) => r.visits,
  close_rate: (r) => r.close_rate,
  outlet_activity_rate: (r) => r.outlet_activity_rate,
};
function sortRows(rows) {
  const { key, dir } = state.sort;
  if (!key || !SORTERS[key]) return rows;
  const get = SORTERS[key];
  return [...rows].sort((a, b) => {
    const x = get(a);
    const y = get(b);
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    if (typeof x === 'string') return dir * x.localeCompare(y);
    return dir * (x - y);
  });
}
function miniBar(row) {
  const att = row.premium_attainment;
  if (!isNum(att)) return '';
  const tone = paceTone(row);
  const tp = row.time_progress;
  return `<span class="mini"><span class="mini-fill tone-${tone}" style="width:${Math.min(1, Math.max(0, att)) * 100}%"></span>${isNum(tp) ? `<span class="mini-marker" style="left:${Math.min(1, tp) * 100}%"></span>` : ''}</span>`;
}
function childrenCard(d, childScope, span) {
  const rows = sortRows(d.children ?? []);
  const thr = threshold();
  const titleKey = d.scope === 'root' ? 'children.title.region' : `children.title.${childScope}`;
  const head = cardHead(t(titleKey), `<span class="hint">${esc(t('children.hint'))}</span>${d.scope === 'root' ? '' : exportForm('children')}`);
  if (rows.length === 0) return card(`children ${span}`, head, `<p class="empty">${esc(t('children.empty'))}</p>`);
  const th = (key, label, cls = '') => {
    const active = state.sort.key === key;
    const arrow = active ? (state.sort.dir > 0 ? '▲' : '▼') : '';
    return `<th class="${cls} sortable${active ? ' sorted' : ''}" data-sort="${key}" scope="col"><button type="button">${esc(label)}<span class="arrow">${arrow}</span></button></th>`;
  };
  const body = rows.map((r) => {
    const nm = displayName(r.scope, r.scope_id);
    const nameCell = nm !== r.scope_id
      ? `<span class="cell-name">${esc(nm)}</span><span class="cell-id">${esc(r.scope_id)}</span>`
      : `<span class="cell-name mono">${esc(r.scope_id)}</span>`;
    return `
      <tr class="nav-row" tabindex="0" data-child-id="${esc(r.scope_id)}" data-nav-scope="${esc(r.scope)}" data-nav-id="${esc(r.scope_id)}" ${rowAttrs(r)}>
        <td class="name">${nameCell}</td>
        <td class="num">${kpi(r, 'premium')}</td>
        <td class="num attain">${miniBar(r)}${kpi(r, 'premium_attainment', `tone-text-${paceTone(r)}`)}</td>
        <td class="num">${kpi(r, 'projected_attainment', `tone-text-${projectedTone(r, thr)}`)}</td>
        <td class="num">${kpi(r, 'visits')}</td>
        <td class="num">${kpi(r, 'close_rate')}</td>
        <td class="num">${kpi(r, 'outlet_activity_rate')}</td>
        <td class="status-cell">${badge(r)}</td>
      </tr>`;
  }).join('');
  const table = `
    <div class="table-wrap">
      <table class="table">
        <thead><tr>
          ${th('name', childScope === 'agent' ? t('col.agent') : t('col.name'))}
          ${th('premium', t('col.premium'), 'num')}
          ${th('premium_attainment', t('col.attainment'), 'num')}
          ${th('projected_attainment', t('col.projected'), 'num')}
          ${th('visits', t('col.visits'), 'num')}
          ${th('close_rate', t('col.close_rate'), 'num')}
          ${th('outlet_activity_rate', t('col.outlet_activity_rate'), 'num')}
          <th scope="col">${esc(t('col.status'))}</th>
        </tr></thead>
        <tbody>${body}</tbody>
      </table>
    </div>`;
  return card(`children ${span}`, head, table, `data-card="children"`);
}

// 4. At-risk list ---------------------------------------------------------------------------

function riskCard(rows, m, span) {
  const thr = threshold();
  const count = rows.length;
  const head = cardHead(t('risk.title'), `${count ? `<span class="count-badge tone-bad">${count}</span>` : ''}${m ? exportForm('at_risk') : ''}`, t('risk.subtitle', { p: fmtPct(thr) }));
  if (m && isNum(m.time_progress) && m.time_progress >= 1) {
    return card(`risk ${span}`, head, `<p class="empty">${esc(t('risk.closed'))}</p>`);
  }
  if (count === 0) {
    return card(`risk ${span}`, head, `<div class="all-clear"><span class="check" aria-hidden="true">✓</span>${esc(t('risk.empty', { p: fmtPct(thr) }))}</div>`);
  }
  const items = rows.map((r) => `
    <li class="risk-item nav-row" tabindex="0" data-nav-scope="${esc(r.scope)}" data-nav-id="${esc(r.scope_id)}" ${rowAttrs(r)}>
      <span class="chip chip-${esc(r.scope)}">${esc(t(`scope.${r.scope}`))}</span>
      <span class="risk-name">${esc(displayName(r.scope, r.scope_id))}</span>
      <span class="risk-figs">
        <span class="risk-att">${kpi(r, 'premium_attainment')}</span>
        <span class="risk-arrow" aria-hidden="true">→</span>
        ${kpi(r, 'projected_attainment', 'risk-proj tone-text-bad')}
      </span>
    </li>`).join('');
  const legend = `<div class="risk-legend"><span>${esc(t('col.attainment'))}</span><span aria-hidden="true">→</span><span>${esc(t('col.projected'))}</span></div>`;
  return card(`risk ${span}`, head, `${legend}<ul class="risk-list">${items}</ul>`, `data-card="at-risk"`);
}

// 3. Ranking --------------------------------------------------------------------------------

function rankingCard(rows, m, charts, span, kind) {
  const byAtt = rows.some((r) => isNum(r.premium_attainment));
  const title = kind === 'agent' ? t('ranking.title.agents') : t('ranking.title');
  const sub = byAtt ? t('ranking.byAttainment') : t('ranking.byPremium');
  const head = cardHead(title, m ? exportForm(kind === 'agent' ? 'children' : 'ranking') : '', sub);
  if (rows.length === 0) return card(`ranking ${span}`, head, `<p class="empty">${esc(t('ranking.empty'))}</p>`);
  const sorted = [...rows].sort((a, b) => {
    const x = byAtt ? a.premium_attainment : moneyNumber(a.premium);
    const y = byAtt ? b.premium_attainment : moneyNumber(b.premium);
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return y - x;
  });
  const tp = m?.time_progress ?? sorted.find((r) => isNum(r.time_progress))?.time_progress ?? null;
  const height = Math.max(140, 34 * sorted.length + 56);
  const canvasId = `chart-ranking-${charts.length}`;
  charts.push(() => rankingChart(canvasId, sorted, byAtt, tp));
  return card(`ranking ${span}`, head, `<div class="chart-box" style="min-height:${height}px"><canvas id="${canvasId}" role="img" aria-label="${esc(title)}"></canvas></div>`, 'data-card="ranking"');
}

// 5. Weekly trend ---------------------------------------------------------------------------

function trendCard(rows, charts, span) {
  const head = cardHead(t('trend.title'), '', t('trend.subtitle'));
  if (rows.length === 0) return card(`trend ${span}`, head, `<p class="empty">${esc(t('trend.empty'))}</p>`);
  const asOf = state.meta?.as_of;
  const last = rows[rows.length - 1];
  const open = asOf && last.period_end && last.period_end > asOf;
  charts.push(() => trendActivityChart('chart-trend-activity', rows, open));
  charts.push(() => trendCloseChart('chart-trend-close', rows, open));
  const foot = open ? `<p class="chart-foot">* ${esc(t('trend.openWeek', { date: asOf }))}</p>` : '';
  return card(`trend ${span}`, head, `
    <div class="trend-grid">
      <figure class="trend-fig"><figcaption>${esc(t('trend.activity'))}</figcaption><div class="chart-box" style="min-height:240px"><canvas id="chart-trend-activity" role="img" aria-label="${esc(t('trend.activity'))}"></canvas></div></figure>
      <figure class="trend-fig"><figcaption>${esc(t('trend.closeRate'))}</figcaption><div class="chart-box" style="min-height:240px"><canvas id="chart-trend-close" role="img" aria-label="${esc(t('trend.closeRate'))}"></canvas></div></figure>
    </div>${foot}`, 'data-card="trend"');
}

// 6. Coaching quadrant ----------------------------------------------------------------------

// The API gives each quadrant row the will its quadrant was judged on.
function willOf(r) {
  return isNum(r.will) ? r.will : null;
}
function quadrantCard(rows, scope, charts, span) {
  const head = cardHead(t('quad.title'), '', t('quad.subtitle'));
  const points = [];
  let unrated = 0;
  for (const r of rows) {
    const will = willOf(r);
    const median = r.team_median_close_rate;
    if (!isNum(will) || !isNum(r.close_rate) || !isNum(median) || median === 0 || !r.coaching_quadrant) {
      unrated += 1;
      continue;
    }
    points.push({ x: will, y: r.close_rate / median, row: r, q: r.coaching_quadrant });
  }
  const groups = Object.fromEntries(QUADRANTS.map((q) => [q, points.filter((p) => p.q === q)]));
  const legend = QUADRANTS.map((q) => {
    const members = groups[q];
    const chips = members.slice(0, 8).map((p) => `<a class="agent-chip" href="${hrefFor('agent', p.row.scope_id)}" title="${esc(p.row.scope_id)}">${esc(displayName('agent', p.row.scope_id))}</a>`).join('');
    const more = members.length > 8 ? `<span class="agent-chip more">${esc(t('quad.more', { n: members.length - 8 }))}</span>` : '';
    return `
      <div class="quad-cell q-${q}" data-quadrant="${q}">
        <div class="quad-cell-head"><span class="quad-dot" style="background:${QUAD_COLOR[q]}"></span><span class="quad-name">${esc(t(`quad.${q}`))}</span><span class="quad-count">${members.length}</span></div>
        <div class="quad-action">${esc(t(`quad.${q}.action`))}</div>
        <div class="quad-desc">${esc(t(`quad.${q}.desc`))}</div>
        <div class="quad-chips">${chips}${more}</div>
      </div>`;
  }).join('');
  const foot = unrated ? `<p class="chart-foot">${esc(t('quad.unrated', { n: unrated }))}</p>` : '';
  const plot = points.length === 0
    ? `<div class="quad-empty"><p>${esc(t('quad.empty'))}</p>${unrated ? `<p class="muted">${esc(t('quad.unrated', { n: unrated }))}</p>` : ''}</div>`
    : `<div class="chart-box quad-chart" style="height:330px"><canvas id="chart-quadrant" role="img" aria-label="${esc(t('quad.title'))}"></canvas></div>`;
  if (points.length > 0) charts.push(() => quadrantChart('chart-quadrant', points, scope));
  return card(`quadrant ${span}`, head, `
    <div class="quad-layout">
      ${plot}
      <div class="quad-legend">${legend}</div>
    </div>${points.length ? foot : ''}`, 'data-card="quadrant"');
}

// 7. Weekly review sheet --------------------------------------------------------------------

function reviewCard(d, scope, span) {
  const review = d.review ?? {};
  const weekStart = review.week_start ?? state.meta?.week_start;
  const n = weekStart ? isoWeek(weekStart) : '';
  const range = weekStart ? t('week.range', { from: shortDate(weekStart), to: shortDate(addDays(weekStart, 6)) }) : '';
  const head = cardHead(t('review.title', { n }), exportForm('review'), t('review.subtitle', { range, date: state.meta?.as_of ?? DASH }));
  const agents = review.agents ?? [];
  if (agents.length === 0) return card(`review ${span}`, head, `<p class="empty">${esc(t('review.empty'))}</p>`, 'data-card="review"');
  const nextDate = review.next_week_start ? shortDate(review.next_week_start) : '';
  const kinds = [['visits', 'planned_visits', 'plan_adherence_visits'], ['consultations', 'planned_consultations', 'plan_adherence_consultations'], ['sales', 'planned_sales', 'plan_adherence_sales']];
  const adh = (row, col) => kpi(row, col, `adh tone-text-${adherenceTone(row?.[col])}`);
  const plan = (p, k) => `<span class="plan-val" data-plan="${k}" data-raw="${esc(rawOf(p?.[k]))}">${p ? esc(fmtCount(p[k])) : DASH}</span>`;

  if (scope === 'agent') {
    const a = agents[0];
    const w = a.this_week;
    const rows = kinds.map(([k, p, h]) => `
      <tr><th scope="row">${esc(t(`review.${k}`))}</th>
        <td class="num">${kpi(w, p)}</td><td class="num">${kpi(w, k)}</td><td class="num">${adh(w, h)}</td>
        <td class="num next">${plan(a.next_week_plan, k)}</td></tr>`).join('');
    // Plan against actual as bullet bars: the bar is the actual count, the tick the plan.
    const bullets = kinds.map(([k, p]) => {
      const planned = w?.[p];
      const actual = w?.[k];
      const scale = Math.max(isNum(planned) ? planned : 0, isNum(actual) ? actual : 0, isNum(a.next_week_plan?.[k]) ? a.next_week_plan[k] : 0) * 1.1 || 1;
      const pos = (v) => `${Math.max(0, Math.min(1, v / scale)) * 100}%`;
      const tone = adherenceTone(isNum(planned) && planned > 0 && isNum(actual) ? actual / planned : null);
      return `
        <div class="bullet-row">
          <span class="bullet-label">${esc(t(`review.${k}`))}</span>
          <div class="bullet-track">
            ${isNum(actual) ? `<div class="bullet-fill tone-${tone}" style="width:${pos(actual)}"></div>` : ''}
            ${isNum(planned) ? `<div class="bullet-plan" style="left:${pos(planned)}" title="${esc(t('review.plan'))}"></div>` : ''}
            ${isNum(a.next_week_plan?.[k]) ? `<div class="bullet-next" style="left:${pos(a.next_week_plan[k])}" title="${esc(t('review.next', { date: nextDate }))}"></div>` : ''}
          </div>
        </div>`;
    }).join('');
    const key = `
      <div class="bullet-key">
        <span><i class="key-fill"></i>${esc(t('review.actual'))}</span>
        <span><i class="key-plan"></i>${esc(t('review.plan'))}</span>
        <span><i class="key-next"></i>${esc(t('review.next', { date: nextDate }))}</span>
      </div>`;
    return card(`review ${span}`, head, `
      <div class="table-wrap"><table class="table review-table agent-review" ${rowAttrs(w)}>
        <thead><tr><th></th><th class="num">${esc(t('review.plan'))}</th><th class="num">${esc(t('review.actual'))}</th><th class="num">${esc(t('review.adherence'))}</th><th class="num next">${esc(t('review.next', { date: nextDate }))}</th></tr></thead>
        <tbody>${rows}</tbody></table></div>
      ${kinds.some(([, p]) => isNum(w?.[p])) ? `<div class="bullets">${bullets}${key}</div>` : ''}`, 'data-card="review"');
  }

  const body = agents.map((a) => {
    const w = a.this_week;
    const cells = kinds.map(([k, p, h]) => `<td class="num grp-start">${kpi(w, p)}</td><td class="num">${kpi(w, k)}</td><td class="num">${adh(w, h)}</td>`).join('');
    const next = a.next_week_plan
      ? kinds.map(([k]) => `<td class="num next${k === 'visits' ? ' grp-start' : ''}">${plan(a.next_week_plan, k)}</td>`).join('')
      : `<td class="num next grp-start muted" colspan="3"><span class="plan-val" data-plan="none" data-raw="">${esc(t('review.noPlan'))}</span></td>`;
    return `<tr class="nav-row" tabindex="0" data-nav-scope="agent" data-nav-id="${esc(a.agent_id)}" data-review-agent="${esc(a.agent_id)}" ${rowAttrs(w)}>
      <td class="name">${displayName('agent', a.agent_id) !== a.agent_id ? `<span class="cell-name">${esc(displayName('agent', a.agent_id))}</span><span class="cell-id">${esc(a.agent_id)}</span>` : `<span class="cell-name mono">${esc(a.agent_id)}</span>`}</td>${cells}${next}</tr>`;
  }).join('');
  const total = d.week;
  const nextSum = (k) => {
    const vals = agents.map((a) => a.next_week_plan?.[k]).filter(isNum);
    return vals.length ? vals.reduce((s, v) => s + v, 0) : null;
  };
  const foot = total ? `
    <tfoot><tr ${rowAttrs(total)}>
      <th scope="row">${esc(t('review.total'))}</th>
      ${kinds.map(([k, p, h]) => `<td class="num grp-start">${kpi(total, p)}</td><td class="num">${kpi(total, k)}</td><td class="num">${adh(total, h)}</td>`).join('')}
      ${kinds.map(([k]) => `<td class="num next${k === 'visits' ? ' grp-start' : ''}">${esc(fmtCount(nextSum(k)))}</td>`).join('')}
    </tr></tfoot>` : '';
  const sub = kinds.map(() => `<th class="num grp-start">${esc(t('review.plan'))}</th><th class="num">${esc(t('review.actual'))}</th><th class="num">${esc(t('review.adherence'))}</th>`).join('');
  const table = `
    <div class="table-wrap"><table class="table review-table">
      <thead>
        <tr class="grp"><th rowspan="2" scope="col">${esc(t('review.agent'))}</th>
          ${kinds.map(([k]) => `<th colspan="3" class="grp-start">${esc(t(`review.${k}`))}</th>`).join('')}
          <th colspan="3" class="grp-start next">${esc(t('review.next', { date: nextDate }))}</th></tr>
        <tr>${sub}${kinds.map(([k], i) => `<th class="num next${i === 0 ? ' grp-start' : ''}">${esc(t(`review.${k}`))}</th>`).join('')}</tr>
      </thead>
      <tbody>${body}</tbody>${foot}
    </table></div>`;
  return card(`review ${span}`, head, `${table}${sup.reviewSupervisorRows(H, d.supervision)}`, 'data-card="review"');
}

// ---------------------------------------------------------------------------------------------
// Charts

function chartLib() {
  return window.Chart ?? null;
}
let chartDefaultsSet = false;
function chartDefaults(Chart) {
  if (chartDefaultsSet) return;
  chartDefaultsSet = true;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = COLOR.muted;
  Chart.defaults.borderColor = COLOR.grid;
  Chart.defaults.plugins.legend.labels.boxWidth = 10;
  Chart.defaults.plugins.legend.labels.boxHeight = 10;
  Chart.defaults.plugins.tooltip.backgroundColor = 'rgba(29,39,53,0.92)';
  Chart.defaults.plugins.tooltip.padding = 10;
  Chart.defaults.plugins.tooltip.cornerRadius = 6;
  Chart.defaults.plugins.tooltip.titleFont = { weight: '600' };
}
function makeCharts(makers, animate) {
  const Chart = chartLib();
  if (!Chart) {
    for (const c of document.querySelectorAll('#view canvas')) c.outerHTML = '<p class="empty">Chart.js failed to load</p>';
    return;
  }
  chartDefaults(Chart);
  Chart.defaults.animation = animate ? { duration: 350 } : false;
  for (const make of makers) {
    try {
      const c = make(Chart);
      if (c) state.charts.push(c);
    } catch (e) {
      console.error('chart', e);
    }
  }
}

function weekLabels(rows, open) {
  return rows.map((r, i) => {
    const star = open && i === rows.length - 1 ? '*' : '';
    return [`W${isoWeek(r.period_start)}${star}`, shortDate(r.period_start)];
  });
}

function trendActivityChart(id, rows, open) {
  const Chart = chartLib();
  const el = document.getElementById(id);
  if (!el) return null;
  const hasPlan = rows.some((r) => isNum(r.planned_visits));
  const lastAlpha = (base, faded) => rows.map((_, i) => (open && i === rows.length - 1 ? faded : base));
  const datasets = [
    { type: 'bar', label: t('trend.visits'), data: rows.map((r) => r.visits), backgroundColor: lastAlpha(COLOR.brand, 'rgba(31,78,121,0.45)'), borderRadius: 3, barPercentage: 0.9, categoryPercentage: 0.7, order: 3, yAxisID: 'y' },
    { type: 'bar', label: t('trend.consultations'), data: rows.map((r) => r.consultations), backgroundColor: lastAlpha(COLOR.brand3, 'rgba(183,205,228,0.5)'), borderRadius: 3, barPercentage: 0.9, categoryPercentage: 0.7, order: 2, yAxisID: 'y' },
  ];
  if (hasPlan) {
    datasets.push({ type: 'line', label: t('trend.plannedVisits'), data: rows.map((r) => r.planned_visits), borderColor: COLOR.neutral, borderDash: [4, 4], borderWidth: 1.5, pointRadius: 0, pointHoverRadius: 3, fill: false, order: 1, yAxisID: 'y', tension: 0 });
  }
  datasets.push({ type: 'line', label: t('trend.sales'), data: rows.map((r) => r.sales), borderColor: COLOR.warn, backgroundColor: COLOR.warn, borderWidth: 2, pointRadius: 3, pointHoverRadius: 5, order: 0, yAxisID: 'y2', cubicInterpolationMode: 'monotone' });
  return new Chart(el, {
    data: { labels: weekLabels(rows, open), datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      plugins: {
        legend: { position: 'top', align: 'end', labels: { usePointStyle: true, pointStyle: 'rectRounded', sort: (a, b) => a.datasetIndex - b.datasetIndex } },
        tooltip: { callbacks: { label: (c) => ` ${c.dataset.label}: ${fmtCount(c.parsed.y)}` } },
      },
      scales: {
        x: { grid: { display: false } },
        y: { beginAtZero: true, grid: { color: COLOR.grid }, border: { display: false }, ticks: { precision: 0 } },
        y2: { beginAtZero: true, position: 'right', grid: { display: false }, border: { display: false }, ticks: { precision: 0, color: COLOR.warn }, title: { display: true, text: t('trend.sales'), color: COLOR.warn } },
      },
    },
  });
}

function trendCloseChart(id, rows, open) {
  const Chart = chartLib();
  const el = document.getElementById(id);
  if (!el) return null;
  const data = rows.map((r) => (isNum(r.close_rate) ? r.close_rate * 100 : null));
  return new Chart(el, {
    type: 'line',
    data: {
      labels: weekLabels(rows, open),
      datasets: [{
        label: t('trend.closeRate'),
        data,
        borderColor: COLOR.brand,
        backgroundColor: 'rgba(31,78,121,0.08)',
        fill: 'origin',
        borderWidth: 2,
        pointRadius: rows.map((_, i) => (open && i === rows.length - 1 ? 4 : 3)),
        pointBackgroundColor: rows.map((_, i) => (open && i === rows.length - 1 ? '#fff' : COLOR.brand)),
        pointBorderColor: COLOR.brand,
        spanGaps: true,
        cubicInterpolationMode: 'monotone',
      }],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: (c) => ` ${t('trend.closeRate')}: ${fmtPct(c.parsed.y / 100)}` } },
      },
      scales: {
        x: { grid: { display: false } },
        y: { beginAtZero: true, suggestedMax: 20, grid: { color: COLOR.grid }, border: { display: false }, ticks: { callback: (v) => `${v}%` } },
      },
    },
  });
}

// Draws a dashed vertical line at a value of the x scale (time progress on the ranking).
function vLinePlugin(value, label) {
  return {
    id: 'vline',
    afterDatasetsDraw(chart) {
      if (!isNum(value)) return;
      const { ctx, chartArea, scales } = chart;
      const x = scales.x.getPixelForValue(value);
      if (x < chartArea.left || x > chartArea.right) return;
      ctx.save();
      ctx.strokeStyle = COLOR.ink;
      ctx.globalAlpha = 0.55;
      ctx.setLineDash([4, 4]);
      ctx.lineWidth = 1.25;
      ctx.beginPath();
      ctx.moveTo(x, chartArea.top - 4);
      ctx.lineTo(x, chartArea.bottom);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.globalAlpha = 0.8;
      ctx.fillStyle = COLOR.ink;
      ctx.font = `11px ${Chart_font()}`;
      ctx.textAlign = x > chartArea.right - 90 ? 'right' : 'left';
      ctx.fillText(label, x + (ctx.textAlign === 'right' ? -4 : 4), chartArea.top - 6);
      ctx.restore();
    },
  };
}
function Chart_font() {
  return getComputedStyle(document.body).fontFamily;
}

function rankingChart(id, rows, byAtt, tp) {
  const Chart = chartLib();
  const el = document.getElementById(id);
  if (!el) return null;
  const labels = rows.map((r) => {
    const name = displayName(r.scope, r.scope_id);
    return byAtt && !isNum(r.premium_attainment) ? `${name} (${t('ranking.noTarget')})` : name;
  });
  const values = rows.map((r) => (byAtt ? (isNum(r.premium_attainment) ? r.premium_attainment * 100 : null) : moneyNumber(r.premium)));
  const colors = rows.map((r) => {
    const tone = paceTone(r);
    return tone === 'bad' ? COLOR.bad : tone === 'warn' ? '#d9a441' : tone === 'good' ? COLOR.brand : COLOR.neutral;
  });
  const max = Math.max(100, ...values.filter(isNum)) * (byAtt ? 1.08 : 1.05);
  return new Chart(el, {
    type: 'bar',
    data: { labels, datasets: [{ data: values, backgroundColor: colors, borderRadius: 4, barPercentage: 0.72, categoryPercentage: 0.9, maxBarThickness: 24 }] },
    options: {
      indexAxis: 'y',
      responsive: true,
      maintainAspectRatio: false,
      layout: { padding: { top: 14, right: 8 } },
      onClick: (_e, els) => {
        if (els.length) go(rows[els[0].index].scope, rows[els[0].index].scope_id);
      },
      onHover: (e, els) => {
        e.native.target.style.cursor = els.length ? 'pointer' : 'default';
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) => `${displayName(rows[items[0].dataIndex].scope, rows[items[0].dataIndex].scope_id)} · ${rows[items[0].dataIndex].scope_id}`,
            label: (c) => {
              const r = rows[c.dataIndex];
              return byAtt
                ? [` ${t('col.attainment')}: ${fmtPct(r.premium_attainment)}`, ` ${t('col.projected')}: ${fmtPct(r.projected_attainment)}`, ` ${t('col.premium')}: ${fmtMoney(r.premium)}`]
                : [` ${t('col.premium')}: ${fmtMoney(r.premium)}`];
            },
          },
        },
      },
      scales: {
        x: {
          beginAtZero: true,
          max: byAtt ? Math.ceil(max / 20) * 20 : undefined,
          grid: { color: COLOR.grid },
          border: { display: false },
          ticks: { callback: (v) => (byAtt ? `${v}%` : fmtMoneyShort(v)) },
        },
        y: { grid: { display: false }, border: { display: false }, ticks: { color: COLOR.ink } },
      },
    },
    plugins: byAtt && isNum(tp) ? [vLinePlugin(tp * 100, t('ranking.timeLine', { p: fmtPct(tp) }))] : [],
  });
}

// Tinted quadrants, the two threshold lines and a name in each corner.
function quadrantPlugin(xThr, yThr) {
  return {
    id: 'quadrants',
    beforeDatasetsDraw(chart) {
      const { ctx, chartArea: a, scales } = chart;
      const x = Math.min(Math.max(scales.x.getPixelForValue(xThr), a.left), a.right);
      const y = Math.min(Math.max(scales.y.getPixelForValue(yThr), a.top), a.bottom);
      const tint = (q) => `${QUAD_COLOR[q]}12`;
      ctx.save();
      ctx.fillStyle = tint('does_not_do_enough');
      ctx.fillRect(a.left, a.top, x - a.left, y - a.top);
      ctx.fillStyle = tint('on_track');
      ctx.fillRect(x, a.top, a.right - x, y - a.top);
      ctx.fillStyle = tint('unwilling');
      ctx.fillRect(a.left, y, x - a.left, a.bottom - y);
      ctx.fillStyle = tint('does_not_know_how');
      ctx.fillRect(x, y, a.right - x, a.bottom - y);
      ctx.strokeStyle = 'rgba(29,39,53,0.45)';
      ctx.setLineDash([5, 4]);
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, a.top);
      ctx.lineTo(x, a.bottom);
      ctx.moveTo(a.left, y);
      ctx.lineTo(a.right, y);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.font = `600 12px ${Chart_font()}`;
      const label = (q, px, py, align, base) => {
        ctx.fillStyle = QUAD_COLOR[q];
        ctx.globalAlpha = 0.85;
        ctx.textAlign = align;
        ctx.textBaseline = base;
        ctx.fillText(t(`quad.${q}`), px, py);
      };
      label('does_not_do_enough', a.left + 8, a.top + 6, 'left', 'top');
      label('on_track', a.right - 8, a.top + 6, 'right', 'top');
      label('unwilling', a.left + 8, a.bottom - 6, 'left', 'bottom');
      label('does_not_know_how', a.right - 8, a.bottom - 6, 'right', 'bottom');
      ctx.restore();
    },
  };
}

function quadrantChart(id, points, scope) {
  const Chart = chartLib();
  const el = document.getElementById(id);
  if (!el) return null;
  const xThr = willThreshold();
  const yThr = skillRatio();
  const xMax = Math.max(Math.ceil(xThr * 1.6 * 5) / 5, Math.ceil((Math.max(...points.map((p) => p.x)) + 0.08) * 5) / 5);
  const yMax = Math.max(Math.ceil(yThr * 2 * 2) / 2, Math.ceil((Math.max(...points.map((p) => p.y)) + 0.1) * 2) / 2);
  const datasets = QUADRANTS.map((q) => ({
    label: t(`quad.${q}`),
    data: points.filter((p) => p.q === q),
    backgroundColor: QUAD_COLOR[q],
    borderColor: '#fff',
    borderWidth: 1.5,
    pointRadius: scope === 'agent' ? 8 : 6,
    pointHoverRadius: 9,
  }));
  return new Chart(el, {
    type: 'scatter',
    data: { datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      onClick: (_e, els) => {
        if (!els.length) return;
        const p = datasets[els[0].datasetIndex].data[els[0].index];
        if (p.row.scope_id !== state.route.id) go('agent', p.row.scope_id);
      },
      onHover: (e, els) => {
        e.native.target.style.cursor = els.length ? 'pointer' : 'default';
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) => displayName('agent', items[0].raw.row.scope_id),
            label: (c) => {
              const r = c.raw.row;
              return [
                ` ${t(`quad.${c.raw.q}`)} · ${t(`quad.${c.raw.q}.action`)}`,
                ` ${t('quad.tooltip.will', { v: fmtPct(c.raw.x) })}`,
                ` ${t('quad.tooltip.close', { v: fmtPct(r.close_rate), m: fmtPct(r.team_median_close_rate) })}`,
              ];
            },
          },
        },
      },
      scales: {
        x: {
          min: 0,
          max: xMax,
          grid: { color: COLOR.grid },
          border: { display: false },
          title: { display: true, text: t('quad.x'), color: COLOR.muted },
          ticks: { callback: (v) => `${Math.round(v * 100)}%`, stepSize: 0.2 },
        },
        y: {
          min: 0,
          max: yMax,
          grid: { color: COLOR.grid },
          border: { display: false },
          title: { display: true, text: t('quad.y'), color: COLOR.muted },
          ticks: { callback: (v) => `${Number(v).toFixed(1)}×`, stepSize: 0.5 },
        },
      },
    },
    plugins: [quadrantPlugin(xThr, yThr)],
  });
}

// ---------------------------------------------------------------------------------------------
// Events

function onViewClick(e) {
  const figure = e.target.closest('[data-explain-scope]');
  if (figure) {
    e.stopPropagation();
    openExplain(figure.dataset);
    return;
  }
  const sortTh = e.target.closest('th[data-sort]');
  if (sortTh) {
    const key = sortTh.dataset.sort;
    state.sort = state.sort.key === key ? { key, dir: -state.sort.dir } : { key, dir: key === 'name' ? 1 : -1 };
    rerenderChildren();
    return;
  }
  if (e.target.closest('[data-action="retry"]')) {
    load();
    return;
  }
  if (e.target.closest('[data-action="print"]')) {
    window.print();
    return;
  }
  if (e.target.closest('form.export')) return;
  if (e.target.closest('a')) return;
  const row = e.target.closest('[data-nav-id]');
  if (row && !(row.dataset.navScope === state.route?.scope && row.dataset.navId === state.route?.id)) {
    goRow(row);
  }
}

// A row of a list opens its node's page (on the outlet page: the node's outlet page).
function goRow(row) {
  if (row.dataset.navPage === 'outlets') window.location.hash = hrefFor(row.dataset.navScope, row.dataset.navId, { page: 'outlets' });
  else go(row.dataset.navScope, row.dataset.navId);
}
function onViewKey(e) {
  if (e.key !== 'Enter' && e.key !== ' ') return;
  const figure = e.target.closest('[data-explain-scope]');
  if (figure) {
    e.preventDefault();
    openExplain(figure.dataset);
    return;
  }
  const row = e.target.closest('[data-nav-id]');
  if (row && e.target === row) {
    e.preventDefault();
    goRow(row);
  }
}
function rerenderChildren() {
  const old = $('#view [data-card="children"]');
  if (!old || !state.data) return;
  const d = state.route.scope === 'root' ? { scope: 'root', children: state.data.regions.map((r) => r.month).filter(Boolean) } : state.data;
  const span = [...old.classList].filter((c) => c.startsWith('span-')).join(' ');
  old.outerHTML = childrenCard(d, state.route.scope === 'root' ? 'region' : CHILD[state.route.scope], span);
}

function switchLang(lang) {
  if (lang === getLang()) return;
  setLang(lang);
  searchKey = '';
  renderChrome();
  renderUser();
  if (state.error) renderError(state.error);
  else if (state.data) render({ animate: false });
}

function init() {
  setLang(getLang());
  applyStatic();
  renderChrome();
  $('#view').addEventListener('click', onViewClick);
  $('#view').addEventListener('keydown', onViewKey);
  for (const b of document.querySelectorAll('.lang-btn')) b.addEventListener('click', () => switchLang(b.dataset.lang));
  const input = $('#search-input');
  const jump = () => {
    const e = findEntry(input.value);
    if (e) {
      input.value = '';
      input.blur();
      go(e.scope, e.id);
    } else if (input.value.trim()) {
      input.setCustomValidity(t('search.none', { q: input.value.trim() }));
      input.reportValidity();
    }
  };
  input.addEventListener('input', () => {
    input.setCustomValidity('');
    // Picking an entry from the list fills the input with its exact label: go at once.
    const q = input.value.trim().toLowerCase();
    const exact = [...state.index.values()].find((x) => (x.name && x.name !== x.id ? `${x.name} · ${x.id}` : x.id).toLowerCase() === q);
    if (exact) jump();
  });
  $('#search').addEventListener('submit', (e) => {
    e.preventDefault();
    jump();
  });
  $('#history').addEventListener('change', (e) => {
    const select = e.target.closest('select[data-history]');
    if (select) pickHistory(select.dataset.history, select.value);
  });
  window.addEventListener('hashchange', () => load());
  setInterval(() => load({ silent: true }), REFRESH_MS);
  setInterval(() => { if (state.meta) renderStatus(); }, 15_000);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.lastRefresh && Date.now() - state.lastRefresh.getTime() > REFRESH_MS) load({ silent: true });
  });
  load();
}

init();
