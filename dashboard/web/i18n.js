// Interface strings in Chinese (default) and English, and the language choice.
//
// The language comes from the URL (?lang=en / ?lang=zh) when it says one, else from the last
// choice kept in this browser; a choice made on the page is written back into the URL, so a
// link carries it and navigating keeps it.
//
// t('key', {name: value}) looks a string up in the current language and fills {name}
// placeholders. Elements of the static page carry data-i18n="key" (text),
// data-i18n-title / data-i18n-placeholder / data-i18n-aria (attributes); applyStatic() fills them.

const STORAGE_KEY = 'aqs.dashboard.lang';

export const LANGS = ['zh', 'en'];

const zh = {
  'app.title': '银保网点活动量看板',
  'app.subtitle': '活动量管理 · AQS',
  'lang.toggle': '切换语言',
  'lang.zh': '中文',
  'lang.en': 'EN',
  'search.placeholder': '查找分公司、营业部、团队或人员…',
  'search.go': '前往',
  'search.none': '未找到“{q}”',

  'status.asOf': '数据截至',
  'status.generated': '生成于',
  'status.ago.now': '刚刚',
  'status.ago.min': '{n} 分钟前',
  'status.ago.hour': '{n} 小时前',
  'status.ago.day': '{n} 天前',
  'status.refresh': '每 30 秒自动刷新',
  'status.refreshed': '刷新于 {time}',
  'status.refreshFailed': '自动刷新失败（{msg}），显示的是 {time} 的数据',
  'status.stale': '数据已停止更新：{why}',
  'status.degraded': '本页数据仍在更新，但：{why}',
  'status.problem': '{component} 自 {since} 起异常（{reason}）',
  'status.loading': '加载中…',

  'scope.all': '全部',
  'scope.region': '分公司',
  'scope.branch': '营业部',
  'scope.team': '团队',
  'scope.agent': '客户经理',
  'scope.regions': '各分公司',
  'scope.branches': '下属营业部',
  'scope.teams': '下属团队',
  'scope.agents': '团队成员',
  'scope.overview': '全部分公司',
  'scope.overview.note': '选择一个分公司查看进度、活动量与预警。',
  'scope.agentOf': '{team} · 客户经理',

  'month.label': '{y}年{m}月',
  'week.label': '第{n}周',
  'week.range': '{from}–{to}',

  'pacing.title': '本月保费进度',
  'pacing.target': '目标',
  'pacing.noTarget': '本月未设保费目标，无法计算达成率与进度差',
  'pacing.attainment': '保费达成率',
  'pacing.timeProgress': '时间进度',
  'pacing.paceGap': '进度差',
  'pacing.paceGap.hint': '保费达成率 − 时间进度',
  'pacing.projected': '预计达成',
  'pacing.projected.hint': '按当前节奏推算的月末达成率（达成率 ÷ 时间进度）',
  'pacing.threshold': '预警线 {p}',
  'pacing.forecast': '按当前节奏，月末保费约 {amount}',
  'pacing.shortfall': '，距目标尚差 {amount}',
  'pacing.ahead': '，可超出目标 {amount}',
  'pacing.bar.premium': '保费',
  'pacing.bar.time': '时间',
  'pacing.closed': '本月已结束',
  'pacing.motto': '月初没问题、月中没关系、月末没办法——进度要在月中看见。',

  'badge.onPace': '进度正常',
  'badge.behind': '落后进度',
  'badge.atRisk': '预警',
  'badge.noTarget': '未设目标',

  'tiles.title': '本月活动量',
  'tiles.note': '截至 {date}',
  'kpi.visits': '拜访次数',
  'kpi.outlets_visited': '拜访网点数',
  'kpi.consultations': '洽谈次数',
  'kpi.customers_consulted': '洽谈人数',
  'kpi.customers_interested': '有意向客户',
  'kpi.sales': '件数',
  'kpi.premium': '保费',
  'kpi.premium_target': '保费目标',
  'kpi.premium_attainment': '达成率',
  'kpi.projected_attainment': '预计达成',
  'kpi.pace_gap': '进度差',
  'kpi.close_rate': '签单率',
  'kpi.outlet_activity_rate': '网点活动率',
  'kpi.visit_coverage': '网点拜访覆盖率',
  'kpi.agent_activity_rate': '人员活动率',
  'kpi.premium_per_sale': '件均保费',
  'kpi.assigned_outlets': '负责网点',
  'kpi.planned': '计划',
  'kpi.adherence': '计划达成',
  'kpi.target': '目标',
  'kpi.active_agents': '出单人力',
  'kpi.team_median': '团队中位',
  'kpi.close_rate.formula': '件数 ÷ 洽谈人数',
  'kpi.premium_per_sale.formula': '保费 ÷ 件数',
  'kpi.visit_coverage.formula': '已拜访负责网点占比',

  'children.title.branch': '下属营业部',
  'children.title.team': '下属团队',
  'children.title.agent': '团队成员',
  'children.title.region': '各分公司',
  'children.hint': '点击一行查看明细',
  'children.empty': '暂无下级数据',
  'col.name': '名称',
  'col.agent': '客户经理',
  'col.premium': '保费',
  'col.attainment': '达成率',
  'col.projected': '预计达成',
  'col.visits': '拜访',
  'col.close_rate': '签单率',
  'col.outlet_activity_rate': '网点活动率',
  'col.status': '状态',
  'col.scope': '层级',
  'col.pace_gap': '进度差',

  'ranking.title': '团队排名',
  'ranking.title.agents': '组内人员排名',
  'ranking.byAttainment': '按保费达成率',
  'ranking.byPremium': '按保费（未设目标）',
  'ranking.timeLine': '时间进度 {p}',
  'ranking.empty': '暂无排名数据',
  'ranking.noTarget': '未设目标',

  'risk.title': '预警名单',
  'risk.subtitle': '预计达成低于 {p} 的单位',
  'risk.empty': '暂无预警：各单位预计达成均不低于 {p}',
  'risk.closed': '本月已结束，预警仅在月内显示',
  'risk.more': '另有 {n} 项',

  'trend.title': '周趋势',
  'trend.subtitle': '最近 8 个 ISO 周',
  'trend.activity': '活动量',
  'trend.closeRate': '签单率',
  'trend.visits': '拜访',
  'trend.plannedVisits': '计划拜访',
  'trend.consultations': '洽谈',
  'trend.sales': '件数',
  'trend.openWeek': '本周截至 {date}',
  'trend.empty': '暂无周数据',

  'quad.title': '技能/意愿评估框',
  'quad.subtitle': '意愿 = 计划达成率，技能 = 签单率 ÷ 团队中位数',
  'quad.x': '意愿：活动计划达成率',
  'quad.y': '技能：签单率 / 团队中位数',
  'quad.on_track': '达标',
  'quad.on_track.action': '保持节奏，分享经验',
  'quad.does_not_know_how': '不会做',
  'quad.does_not_know_how.action': '技能辅导',
  'quad.does_not_do_enough': '做得不够',
  'quad.does_not_do_enough.action': '活动量管理',
  'quad.unwilling': '不愿做',
  'quad.unwilling.action': '意愿激励',
  'quad.on_track.desc': '计划执行到位，签单率不低于团队中位',
  'quad.does_not_know_how.desc': '活动量达标，但签单率低于团队中位',
  'quad.does_not_do_enough.desc': '签单率不低，活动量未达计划',
  'quad.unwilling.desc': '活动量与签单率都偏低',
  'quad.unrated': '无法评估 {n} 人（无活动计划或无洽谈）',
  'quad.empty': '暂无可评估的人员',
  'quad.tooltip.will': '计划达成 {v}',
  'quad.tooltip.close': '签单率 {v}（团队中位 {m}）',
  'quad.agentCause': '本月评估',
  'quad.more': '+{n}',

  'review.title': '第{n}周计划及检讨表',
  'review.subtitle': '{range}，截至 {date}',
  'review.agent': '客户经理',
  'review.visits': '拜访',
  'review.consultations': '洽谈',
  'review.sales': '件数',
  'review.plan': '计划',
  'review.actual': '实际',
  'review.adherence': '达成',
  'review.next': '下周计划（{date} 起）',
  'review.total': '合计',
  'review.noPlan': '未提交',
  'review.empty': '本周暂无计划与活动记录',

  'error.forbidden': '您无权查看该单位：它不在您的管辖范围内。',
  'user.signOut': '退出',
  'role.headquarters': '总部',
  'role.branch_manager': '营业部经理',
  'role.supervisor': '团队主管',
  'role.analyst': '分析员',
  'error.title': '数据暂时无法加载',
  'error.network': '无法连接数据服务，请检查网络后重试。',
  'error.server': '服务返回错误（{status}）：{msg}',
  'error.notFound': '找不到该单位：{msg}',
  'error.retry': '重试',
  'error.home': '返回总览',
  'empty.noData': '本月暂无数据',
  'history.month': '月份',
  'history.asOf': '数据截至',
  'history.latest': '最新',
  'history.final': '终版',
  'history.open': '进行中',
  'history.viewing': '正在查看 {month} 的数据（截至 {date}）',
  'history.back': '回到最新',
  'export.xlsx': 'XLSX',
  'export.csv': 'CSV',
  'export.title': '导出',
  'print.review': '打印周检讨表',
  'print.now': '打印',
  'print.back': '返回看板',
  'print.title': '{name} · 第{n}周计划及检讨表',
  'print.none': '此范围内没有团队',
  'dash': '—',
};

const en = {
  'app.title': 'Bancassurance Activity Dashboard',
  'app.subtitle': 'Activity quota system · AQS',
  'lang.toggle': 'Switch language',
  'lang.zh': '中文',
  'lang.en': 'EN',
  'search.placeholder': 'Find a region, branch, team or agent…',
  'search.go': 'Go',
  'search.none': 'Nothing matches “{q}”',

  'status.asOf': 'As of',
  'status.generated': 'generated',
  'status.ago.now': 'just now',
  'status.ago.min': '{n} min ago',
  'status.ago.hour': '{n} h ago',
  'status.ago.day': '{n} d ago',
  'status.refresh': 'auto-refresh every 30 s',
  'status.refreshed': 'refreshed {time}',
  'status.refreshFailed': 'Refresh failed ({msg}); showing data from {time}',
  'status.stale': 'Figures are stale: {why}',
  'status.degraded': 'Figures here are current, but: {why}',
  'status.problem': '{component} failing since {since} ({reason})',
  'status.loading': 'Loading…',

  'scope.all': 'All',
  'scope.region': 'Region',
  'scope.branch': 'Branch',
  'scope.team': 'Team',
  'scope.agent': 'Agent',
  'scope.regions': 'Regions',
  'scope.branches': 'Branches',
  'scope.teams': 'Teams',
  'scope.agents': 'Agents',
  'scope.overview': 'All regions',
  'scope.overview.note': 'Pick a region to see pacing, activity and the at-risk list.',
  'scope.agentOf': '{team} · agent',

  'month.label': '{mon} {y}',
  'week.label': 'Week {n}',
  'week.range': '{from}–{to}',

  'pacing.title': 'Premium pacing this month',
  'pacing.target': 'target',
  'pacing.noTarget': 'No premium target this month: attainment and pace cannot be computed',
  'pacing.attainment': 'Attainment',
  'pacing.timeProgress': 'Time progress',
  'pacing.paceGap': 'Pace gap',
  'pacing.paceGap.hint': 'premium attainment − time progress',
  'pacing.projected': 'Projected',
  'pacing.projected.hint': 'Month-end attainment at the current pace (attainment ÷ time progress)',
  'pacing.threshold': 'alert below {p}',
  'pacing.forecast': 'At this pace the month ends near {amount}',
  'pacing.shortfall': ', {amount} short of target',
  'pacing.ahead': ', {amount} above target',
  'pacing.bar.premium': 'Premium',
  'pacing.bar.time': 'Time',
  'pacing.closed': 'Month closed',
  'pacing.motto': 'Fine early, no matter mid-month, too late at month end — see the pace mid-month.',

  'badge.onPace': 'On pace',
  'badge.behind': 'Behind pace',
  'badge.atRisk': 'At risk',
  'badge.noTarget': 'No target',

  'tiles.title': 'Activity this month',
  'tiles.note': 'through {date}',
  'kpi.visits': 'Outlet visits',
  'kpi.outlets_visited': 'Outlets visited',
  'kpi.consultations': 'Consultations',
  'kpi.customers_consulted': 'Customers consulted',
  'kpi.customers_interested': 'interested',
  'kpi.sales': 'Sales',
  'kpi.premium': 'Premium',
  'kpi.premium_target': 'Premium target',
  'kpi.premium_attainment': 'Attainment',
  'kpi.projected_attainment': 'Projected',
  'kpi.pace_gap': 'Pace gap',
  'kpi.close_rate': 'Close rate',
  'kpi.outlet_activity_rate': 'Outlet activity rate',
  'kpi.visit_coverage': 'Visit coverage',
  'kpi.agent_activity_rate': 'Agent activity rate',
  'kpi.premium_per_sale': 'Premium per sale',
  'kpi.assigned_outlets': 'assigned',
  'kpi.planned': 'plan',
  'kpi.adherence': 'adherence',
  'kpi.target': 'target',
  'kpi.active_agents': 'selling agents',
  'kpi.team_median': 'team median',
  'kpi.close_rate.formula': 'sales ÷ customers',
  'kpi.premium_per_sale.formula': 'premium ÷ sales',
  'kpi.visit_coverage.formula': 'of assigned outlets',

  'children.title.branch': 'Branches',
  'children.title.team': 'Teams',
  'children.title.agent': 'Agents',
  'children.title.region': 'Regions',
  'children.hint': 'Click a row to drill down',
  'children.empty': 'No data below this level',
  'col.name': 'Name',
  'col.agent': 'Agent',
  'col.premium': 'Premium',
  'col.attainment': 'Attainment',
  'col.projected': 'Projected',
  'col.visits': 'Visits',
  'col.close_rate': 'Close rate',
  'col.outlet_activity_rate': 'Outlet activity',
  'col.status': 'Status',
  'col.scope': 'Level',
  'col.pace_gap': 'Pace gap',

  'ranking.title': 'Team ranking',
  'ranking.title.agents': 'Agent ranking',
  'ranking.byAttainment': 'by premium attainment',
  'ranking.byPremium': 'by premium (no targets)',
  'ranking.timeLine': 'time progress {p}',
  'ranking.empty': 'No ranking data',
  'ranking.noTarget': 'no target',

  'risk.title': 'At-risk list',
  'risk.subtitle': 'projected attainment below {p}',
  'risk.empty': 'Nobody at risk: every projected attainment is at least {p}',
  'risk.closed': 'The month is closed; the list applies to open months only',
  'risk.more': '{n} more',

  'trend.title': 'Weekly trend',
  'trend.subtitle': 'last 8 ISO weeks',
  'trend.activity': 'Activity',
  'trend.closeRate': 'Close rate',
  'trend.visits': 'Visits',
  'trend.plannedVisits': 'Planned visits',
  'trend.consultations': 'Consultations',
  'trend.sales': 'Sales',
  'trend.openWeek': 'current week through {date}',
  'trend.empty': 'No weekly data',

  'quad.title': 'Skill / will quadrant',
  'quad.subtitle': 'will = plan adherence, skill = close rate ÷ team median',
  'quad.x': 'Will: activity plan adherence',
  'quad.y': 'Skill: close rate / team median',
  'quad.on_track': 'On track',
  'quad.on_track.action': 'keep the rhythm, share practice',
  'quad.does_not_know_how': 'Does not know how',
  'quad.does_not_know_how.action': 'skills coaching',
  'quad.does_not_do_enough': 'Does not do enough',
  'quad.does_not_do_enough.action': 'activity management',
  'quad.unwilling': 'Unwilling',
  'quad.unwilling.action': 'motivation',
  'quad.on_track.desc': 'follows the plan; close rate at or above the team median',
  'quad.does_not_know_how.desc': 'does the activity, but closes below the team median',
  'quad.does_not_do_enough.desc': 'closes well, but falls short of the activity plan',
  'quad.unwilling.desc': 'low activity and a low close rate',
  'quad.unrated': '{n} not rated (no plan or no consultations)',
  'quad.empty': 'Nobody can be rated yet',
  'quad.tooltip.will': 'plan adherence {v}',
  'quad.tooltip.close': 'close rate {v} (team median {m})',
  'quad.agentCause': 'This month',
  'quad.more': '+{n}',

  'review.title': 'Week {n} plan & review',
  'review.subtitle': '{range}, through {date}',
  'review.agent': 'Agent',
  'review.visits': 'Visits',
  'review.consultations': 'Consultations',
  'review.sales': 'Sales',
  'review.plan': 'Plan',
  'review.actual': 'Actual',
  'review.adherence': 'Adh.',
  'review.next': 'Next week plan (from {date})',
  'review.total': 'Total',
  'review.noPlan': 'none',
  'review.empty': 'No plans or activity this week',

  'error.forbidden': 'You may not see this unit: it is outside your scope.',
  'user.signOut': 'Sign out',
  'role.headquarters': 'Headquarters',
  'role.branch_manager': 'Branch manager',
  'role.supervisor': 'Team supervisor',
  'role.analyst': 'Analyst',
  'error.title': 'The data could not be loaded',
  'error.network': 'The data service cannot be reached. Check the connection and retry.',
  'error.server': 'The server answered {status}: {msg}',
  'error.notFound': 'Not found: {msg}',
  'error.retry': 'Retry',
  'error.home': 'Back to overview',
  'empty.noData': 'No data this month',
  'history.month': 'Month',
  'history.asOf': 'As of',
  'history.latest': 'latest',
  'history.final': 'final',
  'history.open': 'open',
  'history.viewing': 'Viewing {month} (figures as of {date})',
  'history.back': 'Back to latest',
  'export.xlsx': 'XLSX',
  'export.csv': 'CSV',
  'export.title': 'Export',
  'print.review': 'Print review sheets',
  'print.now': 'Print',
  'print.back': 'Back to dashboard',
  'print.title': '{name} · Week {n} plan & review',
  'print.none': 'No team in this scope',
  'dash': '—',
};

export const STRINGS = { zh, en };

let current = readStored();

function readStored() {
  const fromUrl = new URLSearchParams(window.location.search).get('lang');
  if (LANGS.includes(fromUrl)) return fromUrl;
  try {
    const v = window.localStorage.getItem(STORAGE_KEY);
    return LANGS.includes(v) ? v : 'zh';
  } catch {
    return 'zh';
  }
}

// Writes the language into the page's URL (?lang=…), keeping the path and the view in the hash.
function writeUrl(lang) {
  const url = new URL(window.location.href);
  if (url.searchParams.get('lang') === lang) return;
  url.searchParams.set('lang', lang);
  window.history.replaceState(window.history.state, '', url);
}

export function getLang() {
  return current;
}

export function setLang(lang) {
  current = LANGS.includes(lang) ? lang : 'zh';
  try {
    window.localStorage.setItem(STORAGE_KEY, current);
  } catch {
    // Private browsing may refuse storage; the choice then lasts for this page only.
  }
  writeUrl(current);
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
}

export function t(key, vars = {}) {
  const table = STRINGS[current];
  let s = table[key] ?? STRINGS.zh[key] ?? key;
  for (const [name, value] of Object.entries(vars)) s = s.split(`{${name}}`).join(String(value));
  return s;
}

export function applyStatic(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
}
