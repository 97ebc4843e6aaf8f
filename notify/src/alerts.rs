//! Alert rules over a KPI run (pure). Each alert's period is part of its idempotency key, so
//! it fires once per scope and period however often the run is read.

use chrono::{Datelike, Duration, NaiveDate};

use crate::message::{Audience, Kind, Language, Message};
use crate::run::{Run, flag, float, text};

/// Which rules run and their thresholds (`AQS_ALERT_*`).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct AlertRules {
    /// Alert when an agent is at risk for the first time in a month.
    #[arg(long, env = "AQS_ALERT_AT_RISK", default_value_t = true, action = clap::ArgAction::Set)]
    pub at_risk: bool,
    /// Shares of the premium target whose crossing is announced, for agents and teams
    /// (comma-separated; none to turn the rule off).
    #[arg(
        long,
        env = "AQS_ALERT_TARGET_SHARES",
        value_delimiter = ',',
        default_value = "0.5,1.0"
    )]
    pub target_shares: Vec<f64>,
    /// Alert on Monday when a team visited fewer than this share of its assigned outlets in
    /// the week just ended (0 turns the rule off).
    #[arg(long, env = "AQS_ALERT_COVERAGE_BELOW", default_value_t = 0.5)]
    pub coverage_below: f64,
    /// Alert when an agent's month drifts towards the easy activity (quota balance).
    #[arg(long, env = "AQS_ALERT_BALANCE_DRIFT", default_value_t = true, action = clap::ArgAction::Set)]
    pub balance_drift: bool,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            at_risk: true,
            target_shares: vec![0.5, 1.0],
            coverage_below: 0.5,
            balance_drift: true,
        }
    }
}

fn pct(value: Option<f64>) -> String {
    value.map_or("—".to_owned(), |v| format!("{:.0}%", v * 100.0))
}

/// The alerts of a run read on `day` (the run is as of the day before).
pub fn alerts(run: &Run, rules: &AlertRules, day: NaiveDate, lang: Language) -> Vec<Message> {
    let Some(month_start) = run.as_of.with_day(1) else {
        return Vec::new();
    };
    let month = format!("{}-{:02}", month_start.year(), month_start.month());
    let branch_of = run.branch_of();
    let audience = |team: &str| Audience {
        team_id: Some(team.to_owned()).filter(|t| !t.is_empty()),
        branch_id: branch_of.get(team).cloned(),
    };
    let mut out = Vec::new();
    let month_rows = run.rows.iter().filter(|r| {
        text(r, "period") == "month" && text(r, "period_start") == month_start.to_string()
    });
    for row in month_rows {
        let scope = text(row, "scope");
        let id = text(row, "scope_id");
        let team = if scope == "team" {
            id
        } else {
            text(row, "team_id")
        };
        let name = match scope {
            "agent" => run.agent_name(id),
            "team" => run.team_name(id),
            _ => continue,
        };
        if scope == "agent" && rules.at_risk && flag(row, "at_risk") {
            let title = format!(
                "{} · {name}",
                lang.pick("首次进度落后", "At risk for the first time")
            );
            out.push(Message {
                kind: Kind::AtRiskFirst,
                scope_id: id.to_owned(),
                period: month.clone(),
                audience: audience(team),
                markdown: format!(
                    "### {title}\n{name}（{id}，{}）{}：{} {}，{} {}",
                    run.team_name(team),
                    lang.pick(
                        "本月首次进入进度落后名单",
                        "is at risk this month for the first time"
                    ),
                    lang.pick("预计达成", "projected attainment"),
                    pct(float(row, "projected_attainment")),
                    lang.pick("时间进度", "time progress"),
                    pct(float(row, "time_progress")),
                ),
                title,
            });
        }
        if scope == "agent" && rules.balance_drift && flag(row, "balance_drift") {
            let title = format!("{} · {name}", lang.pick("活动量失衡", "Activity drifting"));
            out.push(Message {
                kind: Kind::BalanceDrift,
                scope_id: id.to_owned(),
                period: month.clone(),
                audience: audience(team),
                markdown: format!(
                    "### {title}\n{name}（{id}）{}：{} {}，{} {}",
                    lang.pick(
                        "本月偏向容易的拜访",
                        "leans towards the easy visits this month"
                    ),
                    lang.pick("拜访占比", "visit share"),
                    pct(float(row, "visits_share")),
                    lang.pick("计划占比", "planned"),
                    pct(float(row, "planned_visits_share")),
                ),
                title,
            });
        }
        let attainment = float(row, "premium_attainment");
        for share in &rules.target_shares {
            if attainment.is_some_and(|a| a >= *share) {
                let level = format!("{:.0}%", share * 100.0);
                let title = format!(
                    "{} {level} · {name}",
                    lang.pick("保费目标达成", "Premium target reached")
                );
                out.push(Message {
                    kind: Kind::TargetCrossed,
                    scope_id: id.to_owned(),
                    period: format!("{month}@{level}"),
                    audience: audience(team),
                    markdown: format!(
                        "### {title}\n{name}（{id}）{} {}（{} {}）",
                        lang.pick("本月保费达成", "has attained"),
                        pct(attainment),
                        lang.pick("时间进度", "time progress"),
                        pct(float(row, "time_progress")),
                    ),
                    title,
                });
            }
        }
    }
    if rules.coverage_below > 0.0 && day.weekday().num_days_from_monday() == 0 {
        let week_start = day - Duration::days(7);
        let week = week_start.iso_week();
        for row in run.rows.iter().filter(|r| {
            text(r, "scope") == "team"
                && text(r, "period") == "week"
                && text(r, "period_start") == week_start.to_string()
        }) {
            let Some(coverage) = float(row, "visit_coverage") else {
                continue;
            };
            if coverage >= rules.coverage_below {
                continue;
            }
            let id = text(row, "scope_id");
            let name = run.team_name(id);
            let title = format!(
                "{} · {name}",
                lang.pick("网点拜访覆盖不足", "Visit coverage low")
            );
            out.push(Message {
                kind: Kind::CoverageLow,
                scope_id: id.to_owned(),
                period: format!("{}-W{:02}", week.year(), week.week()),
                audience: audience(id),
                markdown: format!(
                    "### {title}\n{name}（{id}）{} {}，{} {}",
                    lang.pick("上周网点拜访覆盖率", "visited last week"),
                    pct(Some(coverage)),
                    lang.pick("低于", "of its outlets, below"),
                    pct(Some(rules.coverage_below)),
                ),
                title,
            });
        }
    }
    out
}
