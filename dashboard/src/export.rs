//! Exports of the page's tables (weekly review sheet, members or children table, ranking,
//! at-risk list, the outlet list) as an XLSX workbook or a CSV file, in the page's language, read through the
//! same [`ScopedSnapshot`] as the page and recorded in the audit log.

use axum::Form;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderMap};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_xlsxwriter::{Color, Format, FormatBorder, Workbook, XlsxError};
use serde::Deserialize;
use serde_json::Value;

use crate::DashboardState;
use crate::api::{self, ReviewLine, ScopeView, ViewParams, error, scope_view, with_view};
use crate::auth::audit::{Action, ExportRecord, Record};
use crate::auth::{ClientAddress, SignedIn};
use crate::scoped::ScopedSnapshot;
use crate::store::KpiRow;

/// The form the page posts (a plain form, so that the browser downloads the answer).
#[derive(Debug, Deserialize)]
pub struct ExportForm {
    csrf: String,
    /// `review`, `children`, `ranking`, `at_risk` or `outlets`.
    table: String,
    /// `xlsx` or `csv`.
    format: String,
    scope: String,
    id: String,
    as_of: Option<String>,
    month: Option<String>,
    /// `zh` (the default) or `en`: the language of the headers.
    lang: Option<String>,
}

/// The tables that export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Review,
    Children,
    Ranking,
    AtRisk,
    Outlets,
}

impl Which {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "review" => Some(Which::Review),
            "children" => Some(Which::Children),
            "ranking" => Some(Which::Ranking),
            "at_risk" => Some(Which::AtRisk),
            "outlets" => Some(Which::Outlets),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Which::Review => "review",
            Which::Children => "children",
            Which::Ranking => "ranking",
            Which::AtRisk => "at_risk",
            Which::Outlets => "outlets",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Zh,
    En,
}

impl Lang {
    fn pick(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// How a column's values are typed in the workbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// CNY with two decimals, from the API's decimal strings.
    Money,
    /// A ratio shown as a percentage.
    Percent,
    Int,
    /// A count that may be fractional (a plan's share of a period).
    Count,
}

#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    /// The exact decimal text, e.g. `123456.70`.
    Money(String),
    Number(f64),
    Empty,
}

/// A table as exported: a title, typed columns and rows.
#[derive(Debug, Clone, PartialEq)]
struct Table {
    title: String,
    columns: Vec<(&'static str, Kind)>,
    rows: Vec<Vec<Cell>>,
}

fn value_cell(row: Option<&KpiRow>, key: &str, kind: Kind) -> Cell {
    let Some(value) = row.and_then(|r| r.get(key)) else {
        return Cell::Empty;
    };
    match (kind, value) {
        (_, Value::Null) => Cell::Empty,
        (Kind::Money, Value::String(text)) => Cell::Money(text.clone()),
        (Kind::Money, Value::Number(n)) => Cell::Money(format!("{:.2}", n.as_f64().unwrap_or(0.0))),
        (Kind::Text, Value::String(text)) => Cell::Text(text.clone()),
        (_, Value::Number(n)) => n.as_f64().map_or(Cell::Empty, Cell::Number),
        (_, Value::Bool(b)) => Cell::Text(b.to_string()),
        (_, other) => Cell::Text(other.to_string()),
    }
}

fn text_of<'a>(row: &'a KpiRow, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The page's status of a month row: at risk, behind pace, on pace, or no target.
fn status(row: &KpiRow, lang: Lang) -> Cell {
    let number = |key: &str| row.get(key).and_then(Value::as_f64);
    let text = if number("premium_attainment").is_none() {
        lang.pick("未设目标", "No target")
    } else if row.get("at_risk") == Some(&Value::Bool(true)) {
        lang.pick("预警", "At risk")
    } else if number("pace_gap").is_some_and(|gap| gap < 0.0) {
        lang.pick("落后进度", "Behind")
    } else {
        lang.pick("进度正常", "On pace")
    };
    Cell::Text(text.to_owned())
}

fn level(scope: &str, lang: Lang) -> &'static str {
    match scope {
        "region" => lang.pick("分公司", "Region"),
        "branch" => lang.pick("营业部", "Branch"),
        "team" => lang.pick("团队", "Team"),
        _ => lang.pick("客户经理", "Agent"),
    }
}

/// The display name of a node: an agent's name where the user may see it, else its id.
fn name_of(s: &ScopedSnapshot<'_>, scope: &str, id: &str) -> String {
    let team = |find: &dyn Fn(&crate::store::Team) -> Option<String>| {
        s.teams().find_map(find).unwrap_or_else(|| id.to_owned())
    };
    match scope {
        "agent" => s.agent_name(id).unwrap_or(id).to_owned(),
        "team" => team(&|t| (t.team_id == id).then(|| t.team_name.clone())),
        "branch" => team(&|t| {
            (t.branch_id == id).then(|| t.branch_name.clone().unwrap_or_else(|| id.to_owned()))
        }),
        _ => team(&|t| {
            (t.region_id == id).then(|| t.region_name.clone().unwrap_or_else(|| id.to_owned()))
        }),
    }
}

/// Columns of a month row shared by the children table, the ranking and the at-risk list.
const PACING: [(&str, &str, &str, Kind); 5] = [
    ("premium", "保费", "Premium", Kind::Money),
    ("premium_target", "保费目标", "Premium target", Kind::Money),
    ("premium_attainment", "达成率", "Attainment", Kind::Percent),
    ("time_progress", "时间进度", "Time progress", Kind::Percent),
    (
        "projected_attainment",
        "预计达成",
        "Projected",
        Kind::Percent,
    ),
];

fn children_table(s: &ScopedSnapshot<'_>, view: &ScopeView, lang: Lang) -> Table {
    let agents = view.scope == "team";
    let title = match view.scope.as_str() {
        "team" => lang.pick("团队成员", "Team members"),
        "branch" => lang.pick("下属团队", "Teams"),
        _ => lang.pick("下属营业部", "Branches"),
    };
    let mut columns = vec![
        (
            if agents {
                lang.pick("客户经理", "Agent")
            } else {
                lang.pick("名称", "Name")
            },
            Kind::Text,
        ),
        (lang.pick("编号", "ID"), Kind::Text),
    ];
    let extra: [(&str, &str, &str, Kind); 6] = [
        ("pace_gap", "进度差", "Pace gap", Kind::Percent),
        ("visits", "拜访", "Visits", Kind::Int),
        ("consultations", "洽谈", "Consultations", Kind::Int),
        ("sales", "件数", "Sales", Kind::Int),
        ("close_rate", "签单率", "Close rate", Kind::Percent),
        (
            "outlet_activity_rate",
            "网点活动率",
            "Outlet activity rate",
            Kind::Percent,
        ),
    ];
    let figures: Vec<(&str, &str, &str, Kind)> = PACING.iter().chain(&extra).copied().collect();
    columns.extend(
        figures
            .iter()
            .map(|(_, zh, en, kind)| (lang.pick(zh, en), *kind)),
    );
    columns.push((lang.pick("状态", "Status"), Kind::Text));
    let rows = view
        .children
        .iter()
        .map(|row| {
            let (scope, id) = (text_of(row, "scope"), text_of(row, "scope_id"));
            let mut cells = vec![Cell::Text(name_of(s, scope, id)), Cell::Text(id.to_owned())];
            cells.extend(
                figures
                    .iter()
                    .map(|(key, _, _, kind)| value_cell(Some(row), key, *kind)),
            );
            cells.push(status(row, lang));
            cells
        })
        .collect();
    Table {
        title: title.to_owned(),
        columns,
        rows,
    }
}

fn ranking_table(s: &ScopedSnapshot<'_>, view: &ScopeView, lang: Lang) -> Table {
    let mut columns = vec![
        (lang.pick("排名", "Rank"), Kind::Int),
        (lang.pick("团队", "Team"), Kind::Text),
        (lang.pick("编号", "ID"), Kind::Text),
    ];
    columns.extend(
        PACING
            .iter()
            .map(|(_, zh, en, kind)| (lang.pick(zh, en), *kind)),
    );
    let rows = view
        .ranking
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let id = text_of(row, "scope_id");
            let mut cells = vec![
                Cell::Number((i + 1) as f64),
                Cell::Text(name_of(s, "team", id)),
                Cell::Text(id.to_owned()),
            ];
            cells.extend(
                PACING
                    .iter()
                    .map(|(key, _, _, kind)| value_cell(Some(row), key, *kind)),
            );
            cells
        })
        .collect();
    Table {
        title: lang.pick("团队排名", "Team ranking").to_owned(),
        columns,
        rows,
    }
}

fn at_risk_table(s: &ScopedSnapshot<'_>, view: &ScopeView, lang: Lang) -> Table {
    let mut columns = vec![
        (lang.pick("层级", "Level"), Kind::Text),
        (lang.pick("名称", "Name"), Kind::Text),
        (lang.pick("编号", "ID"), Kind::Text),
    ];
    columns.extend(
        PACING
            .iter()
            .map(|(_, zh, en, kind)| (lang.pick(zh, en), *kind)),
    );
    columns.push((lang.pick("进度差", "Pace gap"), Kind::Percent));
    let rows = view
        .at_risk
        .iter()
        .map(|row| {
            let (scope, id) = (text_of(row, "scope"), text_of(row, "scope_id"));
            let mut cells = vec![
                Cell::Text(level(scope, lang).to_owned()),
                Cell::Text(name_of(s, scope, id)),
                Cell::Text(id.to_owned()),
            ];
            cells.extend(
                PACING
                    .iter()
                    .map(|(key, _, _, kind)| value_cell(Some(row), key, *kind)),
            );
            cells.push(value_cell(Some(row), "pace_gap", Kind::Percent));
            cells
        })
        .collect();
    Table {
        title: lang.pick("预警名单", "At-risk list").to_owned(),
        columns,
        rows,
    }
}

/// The three kinds of the review sheet: (actual column, planned column, adherence column).
const KINDS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "visits",
        "planned_visits",
        "plan_adherence_visits",
        "拜访",
        "Visits",
    ),
    (
        "consultations",
        "planned_consultations",
        "plan_adherence_consultations",
        "洽谈",
        "Consultations",
    ),
    (
        "sales",
        "planned_sales",
        "plan_adherence_sales",
        "件数",
        "Sales",
    ),
];

fn review_table(s: &ScopedSnapshot<'_>, view: &ScopeView, lang: Lang) -> Table {
    // Column headers are 'static: the six of each kind are spelled out.
    const HEADS: [[(&str, &str); 3]; 3] = [
        [
            ("拜访计划", "Visits planned"),
            ("拜访实际", "Visits actual"),
            ("拜访达成", "Visits adherence"),
        ],
        [
            ("洽谈计划", "Consultations planned"),
            ("洽谈实际", "Consultations actual"),
            ("洽谈达成", "Consultations adherence"),
        ],
        [
            ("件数计划", "Sales planned"),
            ("件数实际", "Sales actual"),
            ("件数达成", "Sales adherence"),
        ],
    ];
    const NEXT: [(&str, &str); 3] = [
        ("下周计划拜访", "Next week visits"),
        ("下周计划洽谈", "Next week consultations"),
        ("下周计划件数", "Next week sales"),
    ];
    let mut columns = vec![
        (lang.pick("客户经理", "Agent"), Kind::Text),
        (lang.pick("编号", "ID"), Kind::Text),
    ];
    for heads in HEADS {
        columns.push((lang.pick(heads[0].0, heads[0].1), Kind::Count));
        columns.push((lang.pick(heads[1].0, heads[1].1), Kind::Int));
        columns.push((lang.pick(heads[2].0, heads[2].1), Kind::Percent));
    }
    columns.extend(NEXT.iter().map(|(zh, en)| (lang.pick(zh, en), Kind::Count)));
    let week_cells = |row: Option<&KpiRow>| -> Vec<Cell> {
        KINDS
            .iter()
            .flat_map(|(actual, planned, adherence, _, _)| {
                [
                    value_cell(row, planned, Kind::Count),
                    value_cell(row, actual, Kind::Int),
                    value_cell(row, adherence, Kind::Percent),
                ]
            })
            .collect()
    };
    let plan_cells = |line: &ReviewLine| -> Vec<Cell> {
        (0..3)
            .map(|k| match line.next_week_plan.and_then(|plan| plan[k]) {
                Some(count) => Cell::Number(count as f64),
                None => Cell::Empty,
            })
            .collect()
    };
    let mut rows: Vec<Vec<Cell>> = view
        .review
        .iter()
        .map(|line| {
            let mut cells = vec![
                Cell::Text(name_of(s, "agent", &line.agent_id)),
                Cell::Text(line.agent_id.clone()),
            ];
            cells.extend(week_cells(line.this_week.as_ref()));
            cells.extend(plan_cells(line));
            cells
        })
        .collect();
    if view.scope == "team"
        && let Some(total) = &view.week
    {
        let mut cells = vec![
            Cell::Text(lang.pick("合计", "Total").to_owned()),
            Cell::Text(view.id.clone()),
        ];
        cells.extend(week_cells(Some(total)));
        for k in 0..3 {
            let planned: Vec<i64> = view
                .review
                .iter()
                .filter_map(|line| line.next_week_plan.and_then(|plan| plan[k]))
                .collect();
            cells.push(if planned.is_empty() {
                Cell::Empty
            } else {
                Cell::Number(planned.iter().sum::<i64>() as f64)
            });
        }
        rows.push(cells);
    }
    let week = chrono::Datelike::iso_week(&view.week_start).week();
    let title = match lang {
        Lang::Zh => format!("第{week}周计划及检讨表"),
        Lang::En => format!("Week {week} plan & review"),
    };
    Table {
        title,
        columns,
        rows,
    }
}

/// Columns of the outlet list: the outlet table's column, its headers, its type.
const OUTLET_LIST: [(&str, &str, &str, Kind); 11] = [
    ("grade", "等级", "Grade", Kind::Text),
    (
        "grade_basis_premium",
        "分级月均保费",
        "Grading premium / month",
        Kind::Money,
    ),
    ("dormant", "休眠", "Dormant", Kind::Text),
    (
        "days_since_last_visit",
        "距上次拜访（天）",
        "Days since last visit",
        Kind::Int,
    ),
    (
        "working_days_without_visit",
        "未拜访工作日",
        "Working days unvisited",
        Kind::Int,
    ),
    ("last_visit_date", "上次拜访", "Last visit", Kind::Text),
    ("visits", "拜访", "Visits", Kind::Int),
    ("sales", "件数", "Sales", Kind::Int),
    ("premium", "保费", "Premium", Kind::Money),
    ("first_sale_date", "首次出单", "First sale ever", Kind::Text),
    (
        "breaks_zero",
        "本月破零",
        "First sale this month",
        Kind::Text,
    ),
];

/// The outlet list of the outlet page of `(scope, id)`, as the page shows it.
fn outlets_table(
    s: &ScopedSnapshot<'_>,
    scope: &str,
    id: &str,
    lang: Lang,
) -> Result<Table, api::Refusal> {
    let view = crate::outlets::outlets_view(s, Some((scope, id)))?;
    let mut columns = vec![
        (lang.pick("网点", "Outlet"), Kind::Text),
        (lang.pick("编号", "ID"), Kind::Text),
        (lang.pick("银行", "Bank"), Kind::Text),
        (lang.pick("客户经理", "Agent"), Kind::Text),
        (lang.pick("团队", "Team"), Kind::Text),
    ];
    columns.extend(
        OUTLET_LIST
            .iter()
            .map(|(_, zh, en, kind)| (lang.pick(zh, en), *kind)),
    );
    let rows = view["outlets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .map(|row| {
            let agent = text_of(row, "agent_id");
            let team = text_of(row, "team_id");
            let mut cells = vec![
                value_cell(Some(row), "outlet_name", Kind::Text),
                Cell::Text(text_of(row, "scope_id").to_owned()),
                value_cell(Some(row), "bank", Kind::Text),
                if agent.is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text(name_of(s, "agent", agent))
                },
                if team.is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text(name_of(s, "team", team))
                },
            ];
            cells.extend(
                OUTLET_LIST
                    .iter()
                    .map(|(key, _, _, kind)| value_cell(Some(row), key, *kind)),
            );
            cells
        })
        .collect();
    Ok(Table {
        title: lang.pick("网点清单", "Outlets").to_owned(),
        columns,
        rows,
    })
}

/// The table `which` of the node's page (`view`, of `(scope, id)`), or why it is refused.
fn table(
    s: &ScopedSnapshot<'_>,
    view: &ScopeView,
    (scope, id): (&str, &str),
    which: Which,
    lang: Lang,
) -> Result<Table, api::Refusal> {
    Ok(match which {
        Which::Review => review_table(s, view, lang),
        Which::Children => children_table(s, view, lang),
        Which::Ranking => ranking_table(s, view, lang),
        Which::AtRisk => at_risk_table(s, view, lang),
        Which::Outlets => outlets_table(s, scope, id, lang)?,
    })
}

/// A worksheet name: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(title: &str) -> String {
    title
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '-' } else { c })
        .take(31)
        .collect()
}

/// The table as a workbook of one sheet: a bold header row frozen above typed cells (money
/// with two decimals, ratios as percentages), set for landscape A4 printing.
fn xlsx(table: &Table) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(sheet_name(&table.title))?;
    let header = Format::new()
        .set_bold()
        .set_text_wrap()
        .set_background_color(Color::RGB(0x00DC_E6F1))
        .set_border_bottom(FormatBorder::Thin);
    let money = Format::new().set_num_format("#,##0.00");
    let percent = Format::new().set_num_format("0.0%");
    let int = Format::new().set_num_format("#,##0");
    let count = Format::new().set_num_format("#,##0.0");
    for (column, (title, kind)) in table.columns.iter().enumerate() {
        let column = column as u16;
        sheet.write_string_with_format(0, column, *title, &header)?;
        let width = match kind {
            Kind::Text => 14.0,
            Kind::Money => 16.0,
            _ => 12.0,
        };
        sheet.set_column_width(column, width)?;
    }
    for (index, cells) in table.rows.iter().enumerate() {
        let row = (index + 1) as u32;
        for (column, cell) in cells.iter().enumerate() {
            let kind = table.columns[column].1;
            let column = column as u16;
            match cell {
                Cell::Text(text) => {
                    sheet.write_string(row, column, text)?;
                }
                Cell::Money(text) => match text.parse::<f64>() {
                    Ok(value) => {
                        sheet.write_number_with_format(row, column, value, &money)?;
                    }
                    Err(_) => {
                        sheet.write_string(row, column, text)?;
                    }
                },
                Cell::Number(value) => {
                    let format = match kind {
                        Kind::Percent => &percent,
                        Kind::Int => &int,
                        Kind::Money => &money,
                        _ => &count,
                    };
                    sheet.write_number_with_format(row, column, *value, format)?;
                }
                Cell::Empty => {}
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.set_landscape();
    sheet.set_paper_size(9);
    sheet.set_repeat_rows(0, 0)?;
    workbook.save_to_buffer()
}

/// The table as CSV in UTF-8 with a byte-order mark (so that Excel reads Chinese right):
/// money as exact decimals, ratios as percentages with two decimals, empty for null.
fn csv(table: &Table) -> Result<Vec<u8>, csv::Error> {
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut writer = csv::Writer::from_writer(&mut out);
        writer.write_record(table.columns.iter().map(|(title, _)| *title))?;
        for cells in &table.rows {
            writer.write_record(cells.iter().enumerate().map(|(column, cell)| match cell {
                Cell::Text(text) | Cell::Money(text) => text.clone(),
                Cell::Number(value) => match table.columns[column].1 {
                    Kind::Percent => format!("{:.2}%", value * 100.0),
                    Kind::Int => format!("{value:.0}"),
                    _ => {
                        let text = format!("{value:.2}");
                        text.trim_end_matches('0').trim_end_matches('.').to_owned()
                    }
                },
                Cell::Empty => String::new(),
            }))?;
        }
        writer.flush()?;
    }
    Ok(out)
}

/// A file name of ASCII letters, digits, `-`, `_` and `.` only.
fn file_name(parts: &[&str], extension: &str) -> String {
    let stem: String = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}.{extension}")
}

/// `POST /api/export`: one table of one node's view as XLSX or CSV.
pub async fn export(
    State(state): State<DashboardState>,
    signed_in: SignedIn,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<ExportForm>,
) -> Response {
    if !signed_in.csrf_matches(&form.csrf) || !state.auth().same_origin(&headers) {
        state.auth().audit().record(
            &Record::new(
                Action::SignInRefused,
                signed_in.user(),
                signed_in.method(),
                &client,
            )
            .access(signed_in.access())
            .session(signed_in.session_id())
            .reason("export_without_csrf_token"),
        );
        return error(
            StatusCode::FORBIDDEN,
            "export refused: the form's token is missing or wrong",
        );
    }
    let Some(which) = Which::parse(&form.table) else {
        return error(
            StatusCode::BAD_REQUEST,
            "table must be review, children, ranking, at_risk or outlets",
        );
    };
    let xlsx_wanted = match form.format.as_str() {
        "xlsx" => true,
        "csv" => false,
        _ => return error(StatusCode::BAD_REQUEST, "format must be xlsx or csv"),
    };
    let lang = match form.lang.as_deref() {
        Some("en") => Lang::En,
        _ => Lang::Zh,
    };
    let query = match ViewParams::new(form.as_of.clone(), form.month.clone()).query() {
        Ok(query) => query,
        Err(e) => return api::view_error(&e),
    };
    if !api::is_scope(&form.scope) {
        return error(
            StatusCode::BAD_REQUEST,
            "scope must be region, branch, team or agent",
        );
    }
    let audit_state = state.clone();
    let access = signed_in.access().clone();
    with_view(&state, &access, query, move |s, view, _| {
        let scope_view = match scope_view(s, &form.scope, &form.id) {
            Ok(scope_view) => scope_view,
            Err(refusal) => return refusal.into_response(),
        };
        let table = match table(s, &scope_view, (&form.scope, &form.id), which, lang) {
            Ok(table) => table,
            Err(refusal) => return refusal.into_response(),
        };
        let (bytes, content_type, extension) = if xlsx_wanted {
            match xlsx(&table) {
                Ok(bytes) => (
                    bytes,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "xlsx",
                ),
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        } else {
            match csv(&table) {
                Ok(bytes) => (bytes, "text/csv; charset=utf-8", "csv"),
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        };
        let month = view.month_start.format("%Y-%m").to_string();
        audit_state.auth().audit().record(
            &Record::new(
                Action::Export,
                signed_in.user(),
                signed_in.method(),
                &client,
            )
            .access(signed_in.access())
            .session(signed_in.session_id())
            .export(ExportRecord {
                table: which.as_str().to_owned(),
                format: extension.to_owned(),
                node: format!("{} {}", form.scope, form.id),
                as_of: view.as_of.to_string(),
                month: month.clone(),
                rows: table.rows.len(),
            }),
        );
        let name = file_name(
            &[
                "aqs",
                which.as_str(),
                &form.scope,
                &form.id,
                &month,
                &format!("as-of-{}", view.as_of),
            ],
            extension,
        );
        let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
        (
            [
                (CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (CONTENT_DISPOSITION, disposition),
            ],
            bytes,
        )
            .into_response()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            title: "第47周计划及检讨表".into(),
            columns: vec![
                ("客户经理", Kind::Text),
                ("保费", Kind::Money),
                ("达成率", Kind::Percent),
                ("拜访", Kind::Int),
                ("拜访计划", Kind::Count),
            ],
            rows: vec![
                vec![
                    Cell::Text("王芳".into()),
                    Cell::Money("123456.70".into()),
                    Cell::Number(0.8534),
                    Cell::Number(12.0),
                    Cell::Number(7.5),
                ],
                vec![
                    Cell::Text("A000002".into()),
                    Cell::Money("-20.00".into()),
                    Cell::Empty,
                    Cell::Number(0.0),
                    Cell::Empty,
                ],
            ],
        }
    }

    #[test]
    fn csv_starts_with_a_byte_order_mark_and_keeps_money_exact() {
        let bytes = csv(&sample()).expect("csv");
        assert!(bytes.starts_with("\u{feff}".as_bytes()));
        let text = String::from_utf8(bytes).expect("utf-8");
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(lines[0], "客户经理,保费,达成率,拜访,拜访计划");
        assert_eq!(lines[1], "王芳,123456.70,85.34%,12,7.5");
        assert_eq!(lines[2], "A000002,-20.00,,0,");
    }

    #[test]
    fn the_workbook_holds_typed_cells_under_a_frozen_header() {
        use calamine::{Data, Reader, Xlsx};
        let bytes = xlsx(&sample()).expect("xlsx");
        let mut workbook: Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("workbook");
        let range = workbook
            .worksheet_range("第47周计划及检讨表")
            .expect("the sheet named by the title");
        assert_eq!(range.get((0, 0)), Some(&Data::String("客户经理".into())));
        assert_eq!(range.get((1, 1)), Some(&Data::Float(123456.7)));
        assert_eq!(range.get((1, 2)), Some(&Data::Float(0.8534)));
        assert_eq!(range.get((2, 0)), Some(&Data::String("A000002".into())));
        assert!(matches!(range.get((2, 2)), None | Some(Data::Empty)));
    }

    #[test]
    fn sheet_and_file_names_are_safe() {
        assert_eq!(sheet_name("a/b:c"), "a-b-c");
        assert_eq!(sheet_name(&"长".repeat(40)).chars().count(), 31);
        assert_eq!(
            file_name(&["aqs", "review", "team", "T 1/é"], "csv"),
            "aqs-review-team-T_1__.csv"
        );
    }
}
