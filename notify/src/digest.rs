//! The morning digest of a team and the weekly digests of a team and a branch, built from a
//! KPI run alone (pure): what a supervisor reads on the phone before the 8:30 meeting.
//!
//! Group robots render a small Markdown (headings, bold, lists; WeCom shows no tables), so
//! every figure sits in a list line.

use aqs_tables::kpi::KpiRow;
use chrono::{Datelike, Duration, NaiveDate};

use crate::message::{Audience, Kind, Language, Message};
use crate::run::{Run, flag, float, int, money, text};

fn pct(value: Option<f64>) -> String {
    value.map_or("—".to_owned(), |v| format!("{:.0}%", v * 100.0))
}

fn planned(row: Option<&KpiRow>, column: &str) -> String {
    match row.and_then(|r| float(r, column)) {
        Some(v) if (v - v.round()).abs() < 0.05 => format!("{}", v.round() as i64),
        Some(v) => format!("{v:.1}"),
        None => "—".to_owned(),
    }
}

fn week_label(start: NaiveDate) -> String {
    let week = start.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

/// Premium against target and time progress of a month row.
fn pacing_line(row: &KpiRow, lang: Language) -> String {
    let premium = money(row, "premium").unwrap_or_else(|| "0.00".into());
    match money(row, "premium_target") {
        Some(target) => format!(
            "{} ¥{premium} / ¥{target}（{} {}，{} {}，{} {}）",
            lang.pick("本月保费", "Premium this month"),
            lang.pick("达成", "attained"),
            pct(float(row, "premium_attainment")),
            lang.pick("时间进度", "time"),
            pct(float(row, "time_progress")),
            lang.pick("预计", "projected"),
            pct(float(row, "projected_attainment")),
        ),
        None => format!(
            "{} ¥{premium}（{}）",
            lang.pick("本月保费", "Premium this month"),
            lang.pick("未设目标", "no target")
        ),
    }
}

/// The morning digest of `team_id` sent on `day`, from the run as of the day before.
pub fn morning(run: &Run, team_id: &str, day: NaiveDate, lang: Language) -> Option<Message> {
    let yesterday = run.as_of;
    let month_start = yesterday.with_day(1)?;
    let week_start =
        yesterday - Duration::days(i64::from(yesterday.weekday().num_days_from_monday()));
    let team_month = run.row("team", team_id, "month", month_start)?;
    let agents = run.rows_under("agent", "month", month_start, "team_id", team_id);
    let team_name = run.team_name(team_id);
    let title = format!(
        "{} · {team_name} · {day}",
        lang.pick("早会简报", "Morning digest")
    );
    let mut out = vec![
        format!("## {title}"),
        String::new(),
        format!("> {}", pacing_line(team_month, lang)),
    ];

    out.push(String::new());
    out.push(format!(
        "**{} {yesterday}（{}）**",
        lang.pick("昨日计划与实际", "Yesterday, plan vs actual"),
        lang.pick("实际/计划", "actual/plan")
    ));
    for agent in &agents {
        let id = text(agent, "scope_id");
        let day_row = run.row("agent", id, "day", yesterday);
        out.push(format!(
            "- {}：{} {}/{}，{} {}/{}，{} {}/{}，{} ¥{}",
            run.agent_name(id),
            lang.pick("拜访", "visits"),
            day_row.map_or(0, |r| int(r, "visits")),
            planned(day_row, "planned_visits"),
            lang.pick("洽谈", "consultations"),
            day_row.map_or(0, |r| int(r, "consultations")),
            planned(day_row, "planned_consultations"),
            lang.pick("签单", "sales"),
            day_row.map_or(0, |r| int(r, "sales")),
            planned(day_row, "planned_sales"),
            lang.pick("保费", "premium"),
            day_row
                .and_then(|r| money(r, "premium"))
                .unwrap_or_else(|| "0.00".into()),
        ));
    }

    out.push(String::new());
    out.push(format!(
        "**{}**",
        lang.pick(
            "今日计划（本周计划尚余）",
            "Today's plan (what this week's plan still needs)"
        )
    ));
    let today_in_new_week = day.weekday().num_days_from_monday() == 0;
    for agent in &agents {
        let id = text(agent, "scope_id");
        let remaining = |kind: usize, actual: &str| -> String {
            let plan_start = if today_in_new_week { day } else { week_start };
            let plan = run
                .organisation
                .plans
                .get(&(id.to_owned(), plan_start))
                .and_then(|p| p[kind]);
            let done = if today_in_new_week {
                0
            } else {
                run.row("agent", id, "week", week_start)
                    .map_or(0, |r| int(r, actual))
            };
            plan.map_or("—".to_owned(), |p| (p - done).max(0).to_string())
        };
        out.push(format!(
            "- {}：{} {}，{} {}，{} {}",
            run.agent_name(id),
            lang.pick("拜访", "visits"),
            remaining(0, "visits"),
            lang.pick("洽谈", "consultations"),
            remaining(1, "consultations"),
            lang.pick("签单", "sales"),
            remaining(2, "sales"),
        ));
    }

    let at_risk: Vec<&&KpiRow> = agents.iter().filter(|a| flag(a, "at_risk")).collect();
    out.push(String::new());
    out.push(format!("**{}**", lang.pick("进度落后人员", "At risk")));
    if at_risk.is_empty() {
        out.push(format!("- {}", lang.pick("无", "none")));
    }
    for agent in at_risk {
        out.push(format!(
            "- {}：{} {}",
            run.agent_name(text(agent, "scope_id")),
            lang.pick("预计达成", "projected"),
            pct(float(agent, "projected_attainment")),
        ));
    }

    out.push(String::new());
    out.push(format!(
        "**{}**",
        lang.pick(
            "所需活动量（每工作日）",
            "Activity needed (per working day)"
        )
    ));
    let mut any = false;
    for agent in &agents {
        let (Some(customers), Some(sales)) = (
            float(agent, "customers_needed_per_working_day"),
            float(agent, "sales_needed_per_working_day"),
        ) else {
            continue;
        };
        any = true;
        out.push(format!(
            "- {}：{} {customers:.1} {}，{} {sales:.1} {}",
            run.agent_name(text(agent, "scope_id")),
            lang.pick("需再洽谈", "consult"),
            lang.pick("人", "customers"),
            lang.pick("签单", "close"),
            lang.pick("件", "sales"),
        ));
    }
    if !any {
        out.push(format!("- {}", lang.pick("无需追加", "none needed")));
    }
    Some(Message {
        kind: Kind::Morning,
        scope_id: team_id.to_owned(),
        period: day.to_string(),
        audience: Audience {
            team_id: Some(team_id.to_owned()),
            branch_id: run.branch_of().get(team_id).cloned(),
        },
        title,
        markdown: out.join("\n"),
    })
}

fn week_line(name: String, row: Option<&KpiRow>, lang: Language) -> String {
    format!(
        "- {name}：{} {}/{}，{} {}/{}，{} {}/{}，{} ¥{}",
        lang.pick("拜访", "visits"),
        row.map_or(0, |r| int(r, "visits")),
        planned(row, "planned_visits"),
        lang.pick("洽谈", "consultations"),
        row.map_or(0, |r| int(r, "consultations")),
        planned(row, "planned_consultations"),
        lang.pick("签单", "sales"),
        row.map_or(0, |r| int(r, "sales")),
        planned(row, "planned_sales"),
        lang.pick("保费", "premium"),
        row.and_then(|r| money(r, "premium"))
            .unwrap_or_else(|| "0.00".into()),
    )
}

/// The weekly digest of `team_id` sent on Monday `day`: the week just ended (the weekly
/// review sheet, 第N周计划及检讨表) and next week's plans, from the run as of the Sunday.
pub fn weekly_team(run: &Run, team_id: &str, day: NaiveDate, lang: Language) -> Option<Message> {
    let week_start = day - Duration::days(7);
    let team_week = run.row("team", team_id, "week", week_start)?;
    let team_name = run.team_name(team_id);
    let label = week_label(week_start);
    let title = format!(
        "{} · {team_name} · {label}",
        lang.pick("周例会简报", "Weekly digest")
    );
    let mut out = vec![format!("## {title}"), String::new()];
    out.push(format!(
        "**{}（{}）**",
        lang.pick("本周计划与实际", "The week, plan vs actual"),
        lang.pick("实际/计划", "actual/plan")
    ));
    out.push(week_line(
        lang.pick("团队合计", "Team").to_owned(),
        Some(team_week),
        lang,
    ));
    let agents = run.rows_under("agent", "week", week_start, "team_id", team_id);
    for agent in &agents {
        let id = text(agent, "scope_id");
        out.push(week_line(run.agent_name(id), Some(agent), lang));
    }
    out.push(String::new());
    out.push(format!(
        "**{}**",
        lang.pick("下周计划", "Next week's plans")
    ));
    for agent in &agents {
        let id = text(agent, "scope_id");
        let plan = run.organisation.plans.get(&(id.to_owned(), day));
        let shown = |kind: usize| {
            plan.and_then(|p| p[kind])
                .map_or("—".to_owned(), |v| v.to_string())
        };
        out.push(format!(
            "- {}：{} {}，{} {}，{} {}",
            run.agent_name(id),
            lang.pick("拜访", "visits"),
            shown(0),
            lang.pick("洽谈", "consultations"),
            shown(1),
            lang.pick("签单", "sales"),
            shown(2),
        ));
    }
    Some(Message {
        kind: Kind::WeeklyTeam,
        scope_id: team_id.to_owned(),
        period: label,
        audience: Audience {
            team_id: Some(team_id.to_owned()),
            branch_id: run.branch_of().get(team_id).cloned(),
        },
        title,
        markdown: out.join("\n"),
    })
}

/// The weekly digest of `branch_id` sent on Monday `day`: each team's week and the month's
/// pacing.
pub fn weekly_branch(
    run: &Run,
    branch_id: &str,
    day: NaiveDate,
    lang: Language,
) -> Option<Message> {
    let week_start = day - Duration::days(7);
    let branch_week = run.row("branch", branch_id, "week", week_start)?;
    let label = week_label(week_start);
    let title = format!(
        "{} · {} · {label}",
        lang.pick("营业部周报", "Branch weekly digest"),
        run.branch_name(branch_id)
    );
    let mut out = vec![format!("## {title}"), String::new()];
    if let Some(month) = run.row("branch", branch_id, "month", run.as_of.with_day(1)?) {
        out.push(format!("> {}", pacing_line(month, lang)));
        out.push(String::new());
    }
    out.push(format!(
        "**{}（{}）**",
        lang.pick("各团队本周计划与实际", "Teams, plan vs actual"),
        lang.pick("实际/计划", "actual/plan")
    ));
    out.push(week_line(
        lang.pick("营业部合计", "Branch").to_owned(),
        Some(branch_week),
        lang,
    ));
    for team in run.rows_under("team", "week", week_start, "branch_id", branch_id) {
        let id = text(team, "scope_id");
        out.push(week_line(run.team_name(id), Some(team), lang));
    }
    Some(Message {
        kind: Kind::WeeklyBranch,
        scope_id: branch_id.to_owned(),
        period: label,
        audience: Audience {
            team_id: None,
            branch_id: Some(branch_id.to_owned()),
        },
        title,
        markdown: out.join("\n"),
    })
}

/// The teams of a run (with a month row), and the branches.
pub fn teams_and_branches(run: &Run) -> (Vec<String>, Vec<String>) {
    let mut teams: Vec<String> = run
        .organisation
        .teams
        .iter()
        .map(|t| t.team_id.clone())
        .collect();
    teams.sort();
    teams.dedup();
    let mut branches: Vec<String> = run
        .organisation
        .teams
        .iter()
        .map(|t| t.branch_id.clone())
        .collect();
    branches.sort();
    branches.dedup();
    (teams, branches)
}
