//! A seeded generator of realistic event streams for demos, tests and benchmarks.
//!
//! It writes one region-sized organisation (regions → branches → teams → agents, outlets of
//! several banks), then day by day: monthly targets, weekly plans, roster and assignment
//! changes, and each agent's activity following the funnel visits → consultations →
//! interested customers → sales. Agents differ in will (how much they do) and skill (how
//! often interest becomes a sale), and a few drift towards visits (many visits, few
//! consultations, against a balanced plan); weekends and holidays are quiet. A share of events
//! arrives late, twice, retracted or followed by a cancellation, as upstream systems do.
//!
//! Output is streamed day by day: memory stays bounded by the agents and the few days of
//! events held back as late arrivals, whatever the length of the run.

mod names;
mod rng;
mod supervision;

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Weekday};

pub use names::chinese_name;
pub use rng::Rng;
pub use supervision::{NOT_COACHING_EVERY, is_not_coaching, supervisor_id};

use crate::calendar::WorkingCalendar;
use crate::decimal::{Money, Rate};
use crate::event::*;
use crate::time::{OccurredAt, YearMonth};

/// Agents per team, teams per branch and branches per region.
pub const AGENTS_PER_TEAM: u32 = 10;
pub const TEAMS_PER_BRANCH: u32 = 7;
pub const BRANCHES_PER_REGION: u32 = 8;

/// Mean outlet visits per working day of an agent of average will.
pub const MEAN_VISITS_PER_DAY: f64 = 3.0;
/// Share of visits followed by a consultation at the same outlet.
pub const CONSULTATION_PER_VISIT: f64 = 0.55;
/// Chance that a consulted customer is interested.
pub const INTEREST_RATE: f64 = 0.38;
/// Median chance that an interested customer buys (an agent's skill varies around it).
pub const MEDIAN_SKILL: f64 = 0.18;
/// Activity on a weekend day or holiday relative to a working day.
pub const QUIET_DAY_FACTOR: f64 = 0.15;
/// Share of agents drifting towards the easy activity (平衡的责任额 lost): they plan like
/// the others but visit more and consult after few of their visits.
pub const DRIFTING_SHARE: f64 = 0.06;
/// A drifting agent's visits relative to its plan's pace, and its consultations per visit
/// relative to the others'.
pub const DRIFT_VISITS_FACTOR: f64 = 1.3;
pub const DRIFT_CONSULTATION_FACTOR: f64 = 0.25;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub seed: u64,
    pub agents: u32,
    pub start: NaiveDate,
    pub days: u32,
    pub calendar: WorkingCalendar,
    /// Share of activity events that arrive one to five days late.
    pub late_share: f64,
    /// Share of events delivered twice (same id, same bytes).
    pub duplicate_share: f64,
    /// Share of activity events later retracted as entered in error.
    pub retraction_share: f64,
    /// Share of sales cancelled within the cooling-off period.
    pub cancellation_share: f64,
    /// Share of outlets their agent stops visiting from a day of the run drawn for each
    /// (nobody else visits them either): they turn dormant.
    pub neglected_outlet_share: f64,
    /// Teams that move to another branch from a date (an effective-dated team definition).
    pub team_moves: Vec<TeamMove>,
    /// The supervisors' coaching, accompanied visits, meetings, evaluations and improvement
    /// measures (see `supervision`), some supervisors not coaching at all.
    pub supervision: bool,
}

/// A team moving to another branch of its region from `effective_from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMove {
    /// The team's index (`team_id(team)`).
    pub team: u32,
    /// The new branch's index (`branch_id(to_branch)`).
    pub to_branch: u32,
    pub effective_from: NaiveDate,
}

impl GeneratorConfig {
    pub fn new(seed: u64, agents: u32, start: NaiveDate, days: u32) -> Self {
        Self {
            seed,
            agents,
            start,
            days,
            calendar: WorkingCalendar::default(),
            late_share: 0.03,
            duplicate_share: 0.01,
            retraction_share: 0.005,
            cancellation_share: 0.03,
            neglected_outlet_share: 0.0,
            team_moves: Vec::new(),
            supervision: false,
        }
    }
}

/// The first day of the demo region of `aqs up --demo` as of `today`: the first day of the
/// quarter before the current one. The outlet grades of this quarter rest on those three
/// months, and last month is whole for the dashboard's comparisons.
pub fn demo_start(today: NaiveDate) -> NaiveDate {
    let month = YearMonth::of(today).first_day();
    let quarter_start = month - chrono::Months::new(month.month0() % 3);
    quarter_start - chrono::Months::new(3)
}

/// The demo region of `aqs up --demo` as of `today`: `agents` agents from [`demo_start`]
/// through yesterday (today belongs to the live trickle), with the demo calendar through the
/// end of this month, agents drifting towards visits, a tenth of the outlets neglected from
/// some day on (dormant outlets), and team `T0007` moving from branch `B001` to `B002` on
/// the 16th of last month (when there is a second branch).
pub fn demo_config(seed: u64, agents: u32, today: NaiveDate) -> GeneratorConfig {
    let start = demo_start(today);
    let days = (today - start).num_days().max(1) as u32;
    let last_month = YearMonth::of(today).first_day() - chrono::Months::new(1);
    let teams = agents.div_ceil(AGENTS_PER_TEAM);
    let team_moves = if teams > TEAMS_PER_BRANCH {
        vec![TeamMove {
            team: TEAMS_PER_BRANCH - 1,
            to_branch: 1,
            effective_from: last_month + Duration::days(15),
        }]
    } else {
        Vec::new()
    };
    GeneratorConfig {
        calendar: demo_calendar(start, YearMonth::of(today).last_day()),
        neglected_outlet_share: 0.1,
        team_moves,
        supervision: true,
        ..GeneratorConfig::new(seed, agents, start, days)
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateStats {
    /// Lines written, duplicates included.
    pub lines: u64,
    pub by_type: BTreeMap<EventType, u64>,
    pub duplicates: u64,
    pub late: u64,
}

const BANKS: [(&str, &str, f64); 7] = [
    ("ICBC", "工商银行", 0.22),
    ("ABC", "农业银行", 0.2),
    ("BOC", "中国银行", 0.16),
    ("CCB", "建设银行", 0.18),
    ("BOCOM", "交通银行", 0.08),
    ("PSBC", "邮储银行", 0.1),
    ("CMB", "招商银行", 0.06),
];
const CITIES: [&str; 12] = [
    "苏州", "无锡", "常州", "南京", "扬州", "镇江", "南通", "泰州", "盐城", "淮安", "宿迁", "徐州",
];
const PURPOSE_WEIGHTS: [f64; 5] = [0.35, 0.15, 0.30, 0.15, 0.05];
const REGULAR_YEARS: [u32; 5] = [3, 5, 10, 15, 20];
const SINGLE_PRODUCTS: [&str; 3] = ["ZX-WL-SP", "ZX-ANN-SP", "ZX-END-SP"];
const REGULAR_PRODUCTS: [&str; 4] = ["ZX-ANN-10", "ZX-WL-RP", "ZX-CI-RP", "ZX-END-RP"];

fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

struct Agent {
    id: String,
    team: u32,
    will: f64,
    skill: f64,
    outlets: Vec<u32>,
    active: bool,
    /// Visits a lot and consults little (a stream of its own, so that the others' draws
    /// stay as they were).
    drifting: bool,
}

/// Serialised events waiting for their delivery day.
type Held = BTreeMap<u32, Vec<Vec<u8>>>;

/// Writes the whole stream to `out`.
pub fn generate<W: Write>(config: &GeneratorConfig, out: W) -> io::Result<GenerateStats> {
    Generator::new(config, out).run()
}

struct Generator<'c, W: Write> {
    config: &'c GeneratorConfig,
    out: W,
    stats: GenerateStats,
    agents: Vec<Agent>,
    teams: u32,
    outlets: u32,
    /// Outlets nobody visits any more, from the day index given.
    neglected: BTreeMap<u32, u32>,
    /// Events held back to arrive late, by delivery day index.
    late: Held,
    /// Follow-ups (cancellations, retractions) by the day index they happen on.
    follow_ups: BTreeMap<u32, Vec<Event>>,
    /// Reused serialisation buffer.
    buffer: Vec<u8>,
    supervision: supervision::Supervision,
}

impl<'c, W: Write> Generator<'c, W> {
    fn new(config: &'c GeneratorConfig, out: W) -> Self {
        let mut rng = Rng::stream(config.seed, &[0]);
        let teams = config.agents.div_ceil(AGENTS_PER_TEAM).max(1);
        let mut next_outlet = 0;
        let mut drift = Rng::stream(config.seed, &[10]);
        let agents = (0..config.agents)
            .map(|i| {
                let count = rng.between(3, 6) as u32;
                let outlets = (next_outlet..next_outlet + count).collect();
                next_outlet += count;
                Agent {
                    id: agent_id(i),
                    team: i / AGENTS_PER_TEAM,
                    will: rng.log_normal(1.0, 0.35).clamp(0.25, 2.5),
                    skill: rng.log_normal(MEDIAN_SKILL, 0.45).clamp(0.03, 0.6),
                    outlets,
                    active: true,
                    drifting: drift.chance(DRIFTING_SHARE),
                }
            })
            .collect();
        // A stream of its own, so that the rest of the stream stays as it was without neglect.
        let mut neglect = Rng::stream(config.seed, &[11]);
        let mut neglected = BTreeMap::new();
        if config.neglected_outlet_share > 0.0 {
            for outlet in 0..next_outlet {
                if neglect.chance(config.neglected_outlet_share) {
                    let from = neglect.between(0, u64::from(config.days.max(1) - 1)) as u32;
                    neglected.insert(outlet, from);
                }
            }
        }
        Self {
            config,
            out,
            stats: GenerateStats::default(),
            agents,
            teams,
            outlets: next_outlet,
            neglected,
            late: BTreeMap::new(),
            follow_ups: BTreeMap::new(),
            buffer: Vec::with_capacity(512),
            supervision: supervision::Supervision::new(config.seed, teams),
        }
    }

    fn run(mut self) -> io::Result<GenerateStats> {
        for day_index in 0..self.config.days {
            let day = self.config.start + Duration::days(i64::from(day_index));
            if let Some(arrivals) = self.late.remove(&day_index) {
                for line in arrivals {
                    self.write_line(&line)?;
                }
            }
            if day_index == 0 {
                self.reference_data(day)?;
            }
            if day_index == 0 || day.day() == 1 {
                self.targets(day)?;
            }
            if day_index == 0 || day.weekday() == Weekday::Mon {
                self.plans(day, day_index, 1)?;
            }
            if day.weekday() == Weekday::Wed {
                self.plans(day, day_index, 2)?;
            }
            self.roster_changes(day, day_index)?;
            self.team_moves(day)?;
            for agent in 0..self.agents.len() {
                self.activity(agent, day, day_index)?;
            }
            if self.config.supervision {
                self.supervisors_day(day, day_index)?;
                self.supervision.first_visits.clear();
            }
            if let Some(events) = self.follow_ups.remove(&day_index) {
                for event in events {
                    self.emit(&event, false)?;
                }
            }
        }
        // Whatever is still held back arrives after the period.
        for (_, arrivals) in std::mem::take(&mut self.late) {
            for line in arrivals {
                self.write_line(&line)?;
            }
        }
        self.out.flush()?;
        Ok(self.stats)
    }

    fn at(&self, day: NaiveDate, minutes: u32) -> OccurredAt {
        let time = NaiveTime::from_num_seconds_from_midnight_opt(minutes.min(24 * 60 - 1) * 60, 0)
            .expect("minutes within the day");
        OccurredAt::new(
            shanghai()
                .from_local_datetime(&day.and_time(time))
                .single()
                .expect("fixed offsets are unambiguous"),
        )
    }

    fn reference_data(&mut self, day: NaiveDate) -> io::Result<()> {
        // The calendar first: every consumer counts working days from these events.
        let calendar = self.config.calendar.clone();
        let declared = calendar
            .holidays
            .iter()
            .map(|date| (*date, DayKind::Holiday, "假日"))
            .chain(
                calendar
                    .working_days
                    .iter()
                    .map(|date| (*date, DayKind::WorkingDay, "调休")),
            );
        for (date, kind, name) in declared {
            let event = Event {
                event_id: format!("calendar-{date}"),
                occurred_at: self.at(day, 6 * 60 + 50),
                source: "hr-calendar".to_owned(),
                agent_id: None,
                payload: Payload::CalendarDay(CalendarDay {
                    date,
                    kind,
                    name: Some(name.to_owned()),
                }),
            };
            self.emit(&event, false)?;
        }
        for team in 0..self.teams {
            let event = self.team_definition(team, team / TEAMS_PER_BRANCH, day, None);
            self.emit(&event, false)?;
        }
        let mut rng = Rng::stream(self.config.seed, &[1]);
        let weights: Vec<f64> = BANKS.iter().map(|b| b.2).collect();
        // Each outlet's first owner, found once: a search per outlet made regions of 100,000
        // agents and more take hours to generate.
        let mut first_owner: Vec<Option<usize>> = vec![None; self.outlets as usize];
        for (index, agent) in self.agents.iter().enumerate() {
            for &outlet in &agent.outlets {
                first_owner[outlet as usize].get_or_insert(index);
            }
        }
        for outlet in 0..self.outlets {
            let (bank, bank_name, _) = BANKS[rng.weighted(&weights)];
            let owner = first_owner[outlet as usize].unwrap_or(0);
            let region = self.agents[owner].team / TEAMS_PER_BRANCH / BRANCHES_PER_REGION;
            let city =
                CITIES[(self.agents[owner].team / TEAMS_PER_BRANCH % CITIES.len() as u32) as usize];
            let event = Event {
                event_id: format!("outlet-{}", outlet_id(outlet)),
                occurred_at: self.at(day, 7 * 60 + 5),
                source: "hr-roster".to_owned(),
                agent_id: None,
                payload: Payload::OutletRegistered(OutletRegistered {
                    outlet_id: outlet_id(outlet),
                    bank: bank.to_owned(),
                    name: format!("{bank_name}{city}第{}支行", outlet % 97 + 1),
                    region_id: region_id(region),
                }),
            };
            self.emit(&event, false)?;
        }
        // Names from a stream of their own, so that the rest of the stream stays as it was.
        let mut names = Rng::stream(self.config.seed, &[9]);
        for index in 0..self.agents.len() {
            let agent = &self.agents[index];
            let (agent_id, team, outlets) = (agent.id.clone(), agent.team, agent.outlets.clone());
            let name = chinese_name(&mut names);
            let join = Event {
                event_id: format!("join-{agent_id}-{}", compact(day)),
                occurred_at: self.at(day, 7 * 60 + 10),
                source: "hr-roster".to_owned(),
                agent_id: Some(agent_id.clone()),
                payload: Payload::AgentJoinedTeam(AgentJoinedTeam {
                    team_id: team_id(team),
                    effective_date: day,
                    agent_name: Some(name.clone()),
                }),
            };
            self.emit(&join, false)?;
            let profile = Event {
                event_id: format!("profile-{agent_id}"),
                occurred_at: self.at(day, 7 * 60 + 12),
                source: "hr-roster".to_owned(),
                agent_id: Some(agent_id.clone()),
                payload: Payload::AgentProfile(AgentProfile { display_name: name }),
            };
            self.emit(&profile, false)?;
            for outlet in outlets {
                self.assignment(&agent_id, outlet, day, true)?;
            }
        }
        Ok(())
    }

    /// Team `team` under branch `branch` (and that branch's region), from `effective_from`
    /// (none: from the beginning), declared on `day`.
    fn team_definition(
        &self,
        team: u32,
        branch: u32,
        day: NaiveDate,
        effective_from: Option<NaiveDate>,
    ) -> Event {
        let region = branch / BRANCHES_PER_REGION;
        let city = |branch: u32| CITIES[(branch % CITIES.len() as u32) as usize];
        let home_city = city(team / TEAMS_PER_BRANCH);
        Event {
            event_id: match effective_from {
                Some(from) => format!("team-{}-{}", team_id(team), compact(from)),
                None => format!("team-{}", team_id(team)),
            },
            occurred_at: self.at(day, 7 * 60),
            source: "hr-roster".to_owned(),
            agent_id: None,
            payload: Payload::TeamDefined(TeamDefined {
                team_id: team_id(team),
                team_name: format!("{home_city}{}组", team % TEAMS_PER_BRANCH + 1),
                branch_id: branch_id(branch),
                branch_name: Some(format!("{}营业部", city(branch))),
                region_id: region_id(region),
                region_name: Some(format!("第{}分公司", region + 1)),
                supervisor_id: Some(supervisor_id(team)),
                effective_from,
            }),
        }
    }

    /// The teams that move to another branch on `day`.
    fn team_moves(&mut self, day: NaiveDate) -> io::Result<()> {
        let moves: Vec<TeamMove> = self
            .config
            .team_moves
            .iter()
            .filter(|m| m.effective_from == day && m.team < self.teams)
            .cloned()
            .collect();
        for team_move in moves {
            let event = self.team_definition(team_move.team, team_move.to_branch, day, Some(day));
            self.emit(&event, false)?;
        }
        Ok(())
    }

    /// Whether nobody visits `outlet` any more on day `day_index`.
    fn is_neglected(&self, outlet: u32, day_index: u32) -> bool {
        self.neglected
            .get(&outlet)
            .is_some_and(|from| day_index >= *from)
    }

    fn assignment(
        &mut self,
        agent: &str,
        outlet: u32,
        day: NaiveDate,
        assigned: bool,
    ) -> io::Result<()> {
        let outlet_id = outlet_id(outlet);
        let (prefix, payload) = if assigned {
            (
                "asg",
                Payload::OutletAssigned(OutletAssigned {
                    outlet_id: outlet_id.clone(),
                    effective_date: day,
                }),
            )
        } else {
            (
                "una",
                Payload::OutletUnassigned(OutletUnassigned {
                    outlet_id: outlet_id.clone(),
                    effective_date: day,
                }),
            )
        };
        let event = Event {
            event_id: format!("{prefix}-{}-{agent}-{outlet_id}", compact(day)),
            occurred_at: self.at(day, 7 * 60 + 15),
            source: "hr-roster".to_owned(),
            agent_id: Some(agent.to_owned()),
            payload,
        };
        self.emit(&event, false)
    }

    fn targets(&mut self, day: NaiveDate) -> io::Result<()> {
        let month = YearMonth::of(day);
        let working_days = f64::from(
            self.config
                .calendar
                .working_days_between(month.first_day(), month.last_day()),
        );
        let mut rng = Rng::stream(
            self.config.seed,
            &[2, u64::from(month.year() as u32), u64::from(month.month())],
        );
        let mut team_premium = vec![0_i64; self.teams as usize];
        let occurred_at = self.at(day, 8 * 60 + 30);
        for index in 0..self.agents.len() {
            let agent = &self.agents[index];
            if !agent.active {
                continue;
            }
            let visits = MEAN_VISITS_PER_DAY * working_days * rng.log_normal(1.0, 0.1);
            let expected_sales =
                visits * CONSULTATION_PER_VISIT * 2.8 * INTEREST_RATE * MEDIAN_SKILL;
            let premium_yuan =
                (expected_sales * 26_000.0 * rng.log_normal(1.1, 0.15) / 1000.0).round() * 1000.0;
            let premium = Money::from_units((premium_yuan as i64).max(1000) * 100);
            team_premium[agent.team as usize] += premium.units();
            let event = Event {
                event_id: format!("tgt-{month}-{}", agent.id),
                occurred_at,
                source: "planning".to_owned(),
                agent_id: Some(agent.id.clone()),
                payload: Payload::Target(Target {
                    month,
                    scope: Scope::Agent,
                    scope_id: agent.id.clone(),
                    premium: Some(premium),
                    outlet_activity_rate: Some(Rate::from_units(rng.between(30, 60) as i64 * 100)),
                    visits: Some(visits.round() as u32),
                    consultations: Some((visits * CONSULTATION_PER_VISIT).round() as u32),
                    sales: Some(expected_sales.ceil() as u32),
                }),
            };
            self.emit(&event, false)?;
        }
        let mut branch_premium: BTreeMap<u32, i64> = BTreeMap::new();
        for (team, premium) in team_premium.iter().enumerate() {
            let team = team as u32;
            // Supervisors stretch the team's target a little above the sum of its agents'.
            let stretched = Money::from_units(premium * 105 / 100 / 100_000 * 100_000);
            *branch_premium.entry(team / TEAMS_PER_BRANCH).or_default() += stretched.units();
            self.scope_target(month, Scope::Team, team_id(team), stretched, occurred_at)?;
        }
        let mut region_premium: BTreeMap<u32, i64> = BTreeMap::new();
        for (branch, premium) in branch_premium {
            *region_premium
                .entry(branch / BRANCHES_PER_REGION)
                .or_default() += premium;
            self.scope_target(
                month,
                Scope::Branch,
                branch_id(branch),
                Money::from_units(premium),
                occurred_at,
            )?;
        }
        for (region, premium) in region_premium {
            self.scope_target(
                month,
                Scope::Region,
                region_id(region),
                Money::from_units(premium),
                occurred_at,
            )?;
        }
        Ok(())
    }

    fn scope_target(
        &mut self,
        month: YearMonth,
        scope: Scope,
        scope_id: String,
        premium: Money,
        occurred_at: OccurredAt,
    ) -> io::Result<()> {
        let event = Event {
            event_id: format!("tgt-{month}-{scope_id}"),
            occurred_at,
            source: "planning".to_owned(),
            agent_id: None,
            payload: Payload::Target(Target {
                month,
                scope,
                scope_id,
                premium: Some(premium),
                outlet_activity_rate: Some(Rate::from_units(4000)),
                visits: None,
                consultations: None,
                sales: None,
            }),
        };
        self.emit(&event, false)
    }

    /// Weekly plans on Mondays (revision 1) and, for a few agents, a revised plan on
    /// Wednesdays (revision 2) that replaces the first.
    fn plans(&mut self, day: NaiveDate, day_index: u32, revision: u32) -> io::Result<()> {
        let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
        let period_start = monday.max(self.config.start);
        let period_end = monday + Duration::days(6);
        let working = f64::from(
            self.config
                .calendar
                .working_days_between(period_start, period_end),
        );
        let mut rng = Rng::stream(
            self.config.seed,
            &[3, u64::from(day_index), u64::from(revision)],
        );
        for index in 0..self.agents.len() {
            let agent = &self.agents[index];
            if !agent.active || (revision > 1 && !rng.chance(0.05)) {
                continue;
            }
            // Agents plan near what they usually do; the keen ones over-plan a little.
            let ambition = rng.log_normal(1.05, 0.15);
            let visits = (MEAN_VISITS_PER_DAY * working * agent.will * ambition).round() as u32;
            let consultations = (f64::from(visits) * CONSULTATION_PER_VISIT).round() as u32;
            let sales =
                (f64::from(consultations) * 2.8 * INTEREST_RATE * agent.skill).round() as u32;
            if visits == 0 {
                continue;
            }
            let promotion = visits * 2 / 5;
            let event = Event {
                event_id: format!("pln-{}-{}-{revision}", compact(period_start), agent.id),
                occurred_at: self.at(day, 8 * 60 + revision),
                source: "mobile-worklog".to_owned(),
                agent_id: Some(agent.id.clone()),
                payload: Payload::ActivityPlan(ActivityPlan {
                    period_start,
                    period_end,
                    visits: Some(visits),
                    consultations: Some(consultations),
                    sales: Some(sales),
                    visits_by_purpose: Some(VisitsByPurpose {
                        relationship: Some(visits - promotion),
                        promotion: Some(promotion),
                        ..VisitsByPurpose::default()
                    }),
                }),
            };
            self.emit(&event, false)?;
        }
        Ok(())
    }

    /// Transfers between teams of a branch, outlets moving between teammates, departures.
    /// Per agent and working day: 0.07% transfer (about 1.5% a month), 0.1% hand an outlet
    /// to a teammate, 0.1% leave (about 2% a month, a typical attrition for bancassurance).
    fn roster_changes(&mut self, day: NaiveDate, day_index: u32) -> io::Result<()> {
        if day_index == 0 || !self.config.calendar.is_working_day(day) {
            return Ok(());
        }
        let mut rng = Rng::stream(self.config.seed, &[4, u64::from(day_index)]);
        for index in 0..self.agents.len() {
            if !self.agents[index].active {
                continue;
            }
            let roll = rng.unit();
            if roll < 0.0007 && self.teams > 1 {
                let branch = self.agents[index].team / TEAMS_PER_BRANCH;
                let first = branch * TEAMS_PER_BRANCH;
                let last = (first + TEAMS_PER_BRANCH).min(self.teams) - 1;
                let target = rng.between(u64::from(first), u64::from(last)) as u32;
                if target == self.agents[index].team {
                    continue;
                }
                self.agents[index].team = target;
                let agent_id = self.agents[index].id.clone();
                let event = Event {
                    event_id: format!("join-{agent_id}-{}", compact(day)),
                    occurred_at: self.at(day, 7 * 60 + 30),
                    source: "hr-roster".to_owned(),
                    agent_id: Some(agent_id),
                    payload: Payload::AgentJoinedTeam(AgentJoinedTeam {
                        team_id: team_id(target),
                        effective_date: day,
                        agent_name: None,
                    }),
                };
                self.emit(&event, false)?;
            } else if roll < 0.0017 && self.agents[index].outlets.len() > 1 {
                // One outlet moves to the next active teammate.
                let team = self.agents[index].team;
                let Some(receiver) = (1..self.agents.len())
                    .map(|step| (index + step) % self.agents.len())
                    .find(|&j| self.agents[j].active && self.agents[j].team == team)
                else {
                    continue;
                };
                let outlet = self.agents[index].outlets.remove(0);
                self.agents[receiver].outlets.push(outlet);
                let (from, to) = (
                    self.agents[index].id.clone(),
                    self.agents[receiver].id.clone(),
                );
                self.assignment(&from, outlet, day, false)?;
                self.assignment(&to, outlet, day, true)?;
            } else if roll < 0.0027 {
                self.agents[index].active = false;
                let agent_id = self.agents[index].id.clone();
                for outlet in std::mem::take(&mut self.agents[index].outlets) {
                    self.assignment(&agent_id, outlet, day, false)?;
                }
                let event = Event {
                    event_id: format!("left-{agent_id}"),
                    occurred_at: self.at(day, 17 * 60),
                    source: "hr-roster".to_owned(),
                    agent_id: Some(agent_id),
                    payload: Payload::AgentLeft(AgentLeft {
                        effective_date: day,
                    }),
                };
                self.emit(&event, false)?;
            }
        }
        Ok(())
    }

    fn activity(&mut self, index: usize, day: NaiveDate, day_index: u32) -> io::Result<()> {
        let agent = &self.agents[index];
        if !agent.active {
            return Ok(());
        }
        let mut rng = Rng::stream(self.config.seed, &[5, index as u64, u64::from(day_index)]);
        let factor = if self.config.calendar.is_working_day(day) {
            1.0
        } else {
            QUIET_DAY_FACTOR
        };
        let (visit_pace, consultation_chance) = if agent.drifting {
            (
                DRIFT_VISITS_FACTOR,
                CONSULTATION_PER_VISIT * DRIFT_CONSULTATION_FACTOR,
            )
        } else {
            (1.0, CONSULTATION_PER_VISIT)
        };
        let visits = rng.poisson(MEAN_VISITS_PER_DAY * agent.will * factor * visit_pace);
        let (agent_id, skill) = (agent.id.clone(), agent.skill);
        let own_outlets: Vec<u32> = agent
            .outlets
            .iter()
            .copied()
            .filter(|outlet| !self.is_neglected(*outlet, day_index))
            .collect();
        let mut minute = 9 * 60 + rng.between(0, 40) as u32;
        let mut sequence = 0_u32;
        let mut next_id = |prefix: &str| {
            sequence += 1;
            format!("{prefix}-{}-{agent_id}-{sequence:03}", compact(day))
        };
        let mut events = Vec::new();
        for _ in 0..visits {
            let outlet = if own_outlets.is_empty() || rng.chance(0.08) {
                rng.between(0, u64::from(self.outlets.max(1) - 1)) as u32
            } else {
                *rng.pick(&own_outlets)
            };
            if self.is_neglected(outlet, day_index) {
                continue;
            }
            let purpose = VisitPurpose::ALL[rng.weighted(&PURPOSE_WEIGHTS)];
            events.push(Event {
                event_id: next_id("vis"),
                occurred_at: self.at(day, minute),
                source: "mobile-worklog".to_owned(),
                agent_id: Some(agent_id.clone()),
                payload: Payload::OutletVisit(OutletVisit {
                    outlet_id: outlet_id(outlet),
                    purpose,
                    outcome_note: rng.chance(0.3).then(|| "约定下周驻点".to_owned()),
                }),
            });
            minute += 20 + rng.between(0, 40) as u32;
            if rng.chance(consultation_chance) {
                let consulted = 1 + rng.poisson(1.8);
                let interested = rng.binomial(consulted, INTEREST_RATE);
                events.push(Event {
                    event_id: next_id("con"),
                    occurred_at: self.at(day, minute),
                    source: "mobile-worklog".to_owned(),
                    agent_id: Some(agent_id.clone()),
                    payload: Payload::Consultation(Consultation {
                        outlet_id: outlet_id(outlet),
                        customers_consulted: consulted,
                        customers_interested: interested,
                    }),
                });
                for _ in 0..rng.binomial(interested, skill) {
                    minute += 10 + rng.between(0, 30) as u32;
                    let sale_id = next_id("sal");
                    let sale = self.sale(&mut rng, &sale_id, &agent_id, outlet, day, minute);
                    if rng.chance(self.config.cancellation_share) {
                        self.schedule_cancellation(&mut rng, &sale, day_index);
                    }
                    events.push(sale);
                }
            }
            minute += 30 + rng.between(0, 60) as u32;
        }
        if self.config.supervision
            && let Some(first) = events.first()
            && let Payload::OutletVisit(visit) = &first.payload
        {
            let visit = (first.event_id.clone(), visit.outlet_id.clone());
            self.supervision.first_visits.insert(index, visit);
        }
        for event in events {
            if rng.chance(self.config.retraction_share) {
                let delay = rng.between(0, 2) as u32;
                let retraction = Event {
                    event_id: format!("ret-{}", event.event_id),
                    occurred_at: self.at(day + Duration::days(i64::from(delay)), 18 * 60 + 30),
                    source: event.source.clone(),
                    agent_id: event.agent_id.clone(),
                    payload: Payload::Retraction(Retraction {
                        retracted_event_id: event.event_id.clone(),
                        reason: "entered in error".to_owned(),
                    }),
                };
                self.follow_ups
                    .entry(day_index + delay)
                    .or_default()
                    .push(retraction);
            }
            let late = rng.chance(self.config.late_share);
            let duplicate = rng.chance(self.config.duplicate_share);
            let mut event = event;
            if rng.chance(0.04) {
                // Some systems send UTC; the business date must still come out right.
                event.occurred_at = OccurredAt::new(
                    event
                        .occurred_at
                        .as_datetime()
                        .with_timezone(&FixedOffset::east_opt(0).expect("utc")),
                );
            }
            if late {
                self.hold(&event, day_index + rng.between(1, 5) as u32, duplicate)?;
            } else {
                self.emit(&event, duplicate)?;
            }
        }
        Ok(())
    }

    fn sale(
        &self,
        rng: &mut Rng,
        event_id: &str,
        agent_id: &str,
        outlet: u32,
        day: NaiveDate,
        minute: u32,
    ) -> Event {
        let regular = rng.chance(0.65);
        let (premium_yuan, product, years) = if regular {
            let annual = (rng.log_normal(10_000.0, 0.6) / 10.0).round() * 10.0;
            (
                annual.max(1000.0),
                *rng.pick(&REGULAR_PRODUCTS),
                Some(*rng.pick(&REGULAR_YEARS)),
            )
        } else {
            let single = (rng.log_normal(50_000.0, 0.7) / 100.0).round() * 100.0;
            (single.max(5000.0), *rng.pick(&SINGLE_PRODUCTS), None)
        };
        Event {
            event_id: event_id.to_owned(),
            occurred_at: self.at(day, minute),
            source: "core-policy".to_owned(),
            agent_id: Some(agent_id.to_owned()),
            payload: Payload::SaleClosed(SaleClosed {
                outlet_id: outlet_id(outlet),
                policy_id: format!("P{}", event_id.trim_start_matches("sal-").replace('-', "")),
                product_code: product.to_owned(),
                premium: Money::from_units(premium_yuan as i64 * 100),
                payment_mode: if regular {
                    PaymentMode::Regular
                } else {
                    PaymentMode::Single
                },
                payment_years: years,
                pre_collected: rng.chance(0.08),
            }),
        }
    }

    fn schedule_cancellation(&mut self, rng: &mut Rng, sale: &Event, day_index: u32) {
        let Payload::SaleClosed(closed) = &sale.payload else {
            return;
        };
        let delay = rng.between(1, 15) as u32;
        let day = self.config.start + Duration::days(i64::from(day_index + delay));
        // Most cancellations in the cooling-off period refund in full; some keep a fee.
        let refund = if rng.chance(0.85) {
            closed.premium
        } else {
            Money::from_units(closed.premium.units() * 9 / 10)
        };
        let cancellation = Event {
            event_id: format!("can-{}", sale.event_id),
            occurred_at: self.at(day, 11 * 60 + rng.between(0, 300) as u32),
            source: "core-policy".to_owned(),
            agent_id: sale.agent_id.clone(),
            payload: Payload::PolicyCancelled(PolicyCancelled {
                policy_id: closed.policy_id.clone(),
                refund,
                reason: CancellationReason::CoolingOff,
                note: None,
            }),
        };
        self.follow_ups
            .entry(day_index + delay)
            .or_default()
            .push(cancellation);
    }

    fn serialise(&mut self, event: &Event) -> io::Result<()> {
        self.buffer.clear();
        serde_json::to_writer(&mut self.buffer, event)?;
        self.buffer.push(b'\n');
        Ok(())
    }

    /// Holds an event back until `delivery_day`, as an upstream system that syncs late.
    fn hold(&mut self, event: &Event, delivery_day: u32, twice: bool) -> io::Result<()> {
        self.serialise(event)?;
        *self.stats.by_type.entry(event.event_type()).or_default() += 1;
        self.stats.late += 1;
        let held = self.late.entry(delivery_day).or_default();
        held.push(self.buffer.clone());
        if twice {
            held.push(self.buffer.clone());
            self.stats.duplicates += 1;
        }
        Ok(())
    }

    fn emit(&mut self, event: &Event, twice: bool) -> io::Result<()> {
        self.serialise(event)?;
        self.out.write_all(&self.buffer)?;
        self.stats.lines += 1;
        *self.stats.by_type.entry(event.event_type()).or_default() += 1;
        if twice {
            self.out.write_all(&self.buffer)?;
            self.stats.lines += 1;
            self.stats.duplicates += 1;
        }
        Ok(())
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.stats.lines += 1;
        self.out.write_all(line)
    }
}

fn compact(day: NaiveDate) -> String {
    day.format("%Y%m%d").to_string()
}

/// A calendar for a demo from `first` to `last`: in every month they touch, the second
/// Monday a holiday and the Saturday before it a swapped working day (调休), so that both
/// show in the figures. Illustrative dates, not any year's official ones.
pub fn demo_calendar(first: NaiveDate, last: NaiveDate) -> WorkingCalendar {
    let mut calendar = WorkingCalendar::default();
    let mut month = YearMonth::of(first);
    while month.first_day() <= last {
        let first_day = month.first_day();
        let to_monday = (7 - first_day.weekday().num_days_from_monday()) % 7;
        let second_monday = first_day + Duration::days(i64::from(to_monday) + 7);
        calendar.holidays.insert(second_monday);
        calendar
            .working_days
            .insert(second_monday - Duration::days(2));
        month = month.next();
    }
    calendar
}

pub fn agent_id(index: u32) -> String {
    format!("A{:06}", index + 1)
}

pub fn team_id(index: u32) -> String {
    format!("T{:04}", index + 1)
}

pub fn branch_id(index: u32) -> String {
    format!("B{:03}", index + 1)
}

pub fn region_id(index: u32) -> String {
    format!("R{:02}", index + 1)
}

pub fn outlet_id(index: u32) -> String {
    format!("O{:07}", index + 1)
}
