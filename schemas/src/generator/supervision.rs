//! The supervisors' side of a generated region (销售主管活动管理), off unless asked for
//! (`GeneratorConfig::supervision`), from streams of their own so that the rest of a seeded
//! stream stays what it was.
//!
//! Each team's supervisor (`team_defined.supervisor_id`) has a diligence drawn once; the
//! supervisors of every sixth team (T0006, T0012, …) do not coach at all: no coaching
//! session, no accompanied visit, few evaluations and meetings — the finding a branch
//! manager looks for. On a working day a supervisor holds a morning meeting most days and an
//! evening one some days, coaches about one agent (weak sellers on skill, reluctant ones on
//! will), and accompanies an agent on about three days a week, most often on a visit the
//! agent logs too (linked by `visit_event_id`); on Fridays the weekly meeting. Around the
//! 25th they evaluate their agents' skill and will (as the agents are, with some misjudged);
//! on the first working day of a month they set one or two improvement measures due at its
//! end, checked on the 15th and reviewed early the next month.

use std::io::{self, Write};

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use super::rng::Rng;
use super::{Generator, MEDIAN_SKILL, compact, outlet_id, team_id};
use crate::event::*;
use crate::time::YearMonth;

/// Every this many teams, the supervisor of the last does not coach.
pub const NOT_COACHING_EVERY: u32 = 6;

/// The improvement measures a supervisor sets, one or two a month.
const MEASURES: [&str; 4] = [
    "新人每周陪同展业两次",
    "每日夕会检查工作日志填写",
    "重点网点驻点频次提高到每周两次",
    "低意愿人员一对一面谈",
];

/// Where a supervisor's side of the run stands.
#[derive(Debug, Default)]
pub(super) struct Supervision {
    /// Each team's supervisor's diligence (0: does not coach).
    diligence: Vec<f64>,
    /// Measures waiting for their review: (event id, review day).
    open_measures: Vec<(String, NaiveDate)>,
    /// Each agent's first visit of the day (event id, outlet), for the accompanied visits.
    pub(super) first_visits: std::collections::BTreeMap<usize, (String, String)>,
}

impl Supervision {
    pub(super) fn new(seed: u64, teams: u32) -> Self {
        let mut rng = Rng::stream(seed, &[12]);
        let diligence = (0..teams)
            .map(|team| {
                let drawn = rng.log_normal(1.0, 0.3).clamp(0.4, 1.6);
                if is_not_coaching(team) { 0.0 } else { drawn }
            })
            .collect();
        Self {
            diligence,
            ..Self::default()
        }
    }
}

/// Whether the supervisor of `team` is one who does not coach.
pub fn is_not_coaching(team: u32) -> bool {
    team % NOT_COACHING_EVERY == NOT_COACHING_EVERY - 1
}

/// The supervisor of `team` (as its definition names them).
pub fn supervisor_id(team: u32) -> String {
    format!("S{:05}", team + 1)
}

/// Whether `day` is the first working day of its month.
fn first_working_day(calendar: &crate::calendar::WorkingCalendar, day: NaiveDate) -> bool {
    calendar.is_working_day(day)
        && (1..day.day())
            .filter_map(|d| day.with_day(d))
            .all(|d| !calendar.is_working_day(d))
}

impl<W: Write> Generator<'_, W> {
    /// The supervisors' facts of `day`, after the agents' activity of the day.
    pub(super) fn supervisors_day(&mut self, day: NaiveDate, day_index: u32) -> io::Result<()> {
        let calendar = self.config.calendar.clone();
        let reviews: Vec<String> = {
            let state = &mut self.supervision;
            let due: Vec<String> = state
                .open_measures
                .iter()
                .filter(|(_, review)| *review == day)
                .map(|(id, _)| id.clone())
                .collect();
            state.open_measures.retain(|(_, review)| *review != day);
            due
        };
        for (i, measure) in reviews.into_iter().enumerate() {
            let mut rng = Rng::stream(self.config.seed, &[13, u64::from(day_index), i as u64]);
            let team: u32 = measure
                .rsplit('-')
                .nth(1)
                .and_then(|t| t.trim_start_matches('T').parse::<u32>().ok())
                .map_or(0, |t| t - 1);
            let diligence = self
                .supervision
                .diligence
                .get(team as usize)
                .copied()
                .unwrap_or(1.0);
            let status = if rng.chance((0.5 * diligence).min(0.9)) {
                MeasureStatus::Done
            } else if rng.chance(0.5) {
                MeasureStatus::Partly
            } else {
                MeasureStatus::NotDone
            };
            let event = Event {
                event_id: format!("review-{measure}-{}", compact(day)),
                occurred_at: self.at(day, 17 * 60 + 30),
                source: "mobile-worklog".to_owned(),
                agent_id: None,
                payload: Payload::ImprovementMeasureStatus(ImprovementMeasureStatus {
                    measure_event_id: measure,
                    status,
                    note: None,
                }),
            };
            self.emit(&event, false)?;
        }
        if !calendar.is_working_day(day) {
            return Ok(());
        }
        let first_of_month = first_working_day(&calendar, day);
        for team in 0..self.teams {
            let mut rng = Rng::stream(
                self.config.seed,
                &[14, u64::from(team), u64::from(day_index)],
            );
            let diligence = self.supervision.diligence[team as usize];
            let supervisor = supervisor_id(team);
            let members: Vec<usize> = (0..self.agents.len())
                .filter(|&a| self.agents[a].active && self.agents[a].team == team)
                .collect();
            let meeting =
                |kind: MeetingKind, minute: u32, duration: u32, attendees: usize, this: &Self| {
                    Event {
                        event_id: format!(
                            "meeting-{}-{}-{}",
                            team_id(team),
                            compact(day),
                            kind.as_str()
                        ),
                        occurred_at: this.at(day, minute),
                        source: "mobile-worklog".to_owned(),
                        agent_id: None,
                        payload: Payload::TeamMeeting(TeamMeeting {
                            team_id: team_id(team),
                            kind,
                            duration_minutes: duration,
                            attendees: attendees as u32,
                        }),
                    }
                };
            let present = members.len().saturating_sub(rng.between(0, 2) as usize);
            if rng.chance(if diligence > 0.0 { 0.85 } else { 0.4 }) {
                let event = meeting(
                    MeetingKind::Morning,
                    8 * 60 + 30,
                    20 + rng.between(0, 20) as u32,
                    present,
                    self,
                );
                self.emit(&event, false)?;
            }
            if rng.chance((0.35 * diligence).min(0.8)) {
                let event = meeting(
                    MeetingKind::Evening,
                    17 * 60 + 30,
                    20 + rng.between(0, 30) as u32,
                    present,
                    self,
                );
                self.emit(&event, false)?;
            }
            if day.weekday() == Weekday::Fri && rng.chance(if diligence > 0.0 { 0.9 } else { 0.3 })
            {
                let event = meeting(
                    MeetingKind::Weekly,
                    15 * 60,
                    100 + rng.between(0, 40) as u32,
                    present,
                    self,
                );
                self.emit(&event, false)?;
            }
            if first_of_month {
                let event = meeting(MeetingKind::Monthly, 16 * 60, 90, present, self);
                self.emit(&event, false)?;
                for n in 0..1 + rng.between(0, 1) as usize {
                    let month = YearMonth::of(day);
                    let id = format!(
                        "measure-{}-{}-{}",
                        compact(month.first_day()),
                        team_id(team),
                        n + 1
                    );
                    let event = Event {
                        event_id: id.clone(),
                        occurred_at: self.at(day, 18 * 60),
                        source: "mobile-worklog".to_owned(),
                        agent_id: None,
                        payload: Payload::ImprovementMeasure(ImprovementMeasure {
                            scope: Scope::Team,
                            scope_id: team_id(team),
                            month,
                            measure: MEASURES[(team as usize + n) % MEASURES.len()].to_owned(),
                            owner_id: supervisor.clone(),
                            due_date: month.last_day(),
                        }),
                    };
                    self.emit(&event, false)?;
                    // Checked mid-month, reviewed early the next month (上月改善措施进展检讨).
                    let mid_month = month.first_day() + Duration::days(14);
                    let next_month = month.next().first_day() + Duration::days(4);
                    self.supervision.open_measures.push((id.clone(), mid_month));
                    self.supervision.open_measures.push((id, next_month));
                }
            }
            if members.is_empty() || diligence == 0.0 {
                if day.day() >= 25 && day.day() < 28 && !members.is_empty() && rng.chance(0.1) {
                    // Even a supervisor who does not coach evaluates someone now and then.
                    self.evaluation(&mut rng, team, members[0], day)?;
                }
                continue;
            }
            let sessions = rng.poisson(1.1 * diligence);
            for n in 0..sessions {
                let agent = *rng.pick(&members);
                let (will, skill) = (self.agents[agent].will, self.agents[agent].skill);
                let topic = if skill < MEDIAN_SKILL * 0.8 {
                    CoachingTopic::Skill
                } else if will < 0.8 {
                    CoachingTopic::Will
                } else if rng.chance(0.7) {
                    CoachingTopic::Activity
                } else {
                    CoachingTopic::Other
                };
                let event = Event {
                    event_id: format!("coach-{}-{}-{}", compact(day), supervisor, n + 1),
                    occurred_at: self.at(day, 17 * 60 + 40 + 25 * n),
                    source: "mobile-worklog".to_owned(),
                    agent_id: Some(self.agents[agent].id.clone()),
                    payload: Payload::CoachingSession(CoachingSession {
                        supervisor_id: supervisor.clone(),
                        duration_minutes: 20 + rng.between(0, 40) as u32,
                        topic,
                        note: None,
                    }),
                };
                self.emit(&event, false)?;
            }
            if rng.chance((0.7 * diligence).min(0.95)) {
                let agent = *rng.pick(&members);
                let logged = self.supervision.first_visits.get(&agent).cloned();
                let (visit_event_id, outlet) = match logged {
                    Some((id, outlet)) if rng.chance(0.8) => (Some(id), outlet),
                    _ => (None, outlet_id(*rng.pick(&self.agents[agent].outlets))),
                };
                let event = Event {
                    event_id: format!("accompany-{}-{}", compact(day), supervisor),
                    occurred_at: self.at(day, 10 * 60),
                    source: "mobile-worklog".to_owned(),
                    agent_id: Some(self.agents[agent].id.clone()),
                    payload: Payload::AccompaniedVisit(AccompaniedVisit {
                        supervisor_id: supervisor.clone(),
                        outlet_id: outlet,
                        visit_event_id,
                        note: None,
                    }),
                };
                self.emit(&event, false)?;
            }
            if (25..28).contains(&day.day()) && day.day() == 25 + (team % 3) {
                for &agent in &members {
                    if rng.chance((0.8 * diligence).min(0.98)) {
                        self.evaluation(&mut rng, team, agent, day)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The supervisor of `team` evaluates `agent` for the month of `day`: skill and will as
    /// the agent is, one judgement in six the other way.
    fn evaluation(
        &mut self,
        rng: &mut Rng,
        team: u32,
        agent: usize,
        day: NaiveDate,
    ) -> io::Result<()> {
        let (will, skill) = (self.agents[agent].will, self.agents[agent].skill);
        let judge = |rng: &mut Rng, high: bool| {
            if high != rng.chance(1.0 / 6.0) {
                Rating::High
            } else {
                Rating::Low
            }
        };
        let event = Event {
            event_id: format!("evaluate-{}-{}", compact(day), self.agents[agent].id),
            occurred_at: self.at(day, 18 * 60 + 30),
            source: "mobile-worklog".to_owned(),
            agent_id: Some(self.agents[agent].id.clone()),
            payload: Payload::SkillWillEvaluation(SkillWillEvaluation {
                supervisor_id: supervisor_id(team),
                month: YearMonth::of(day),
                skill: judge(rng, skill >= MEDIAN_SKILL),
                will: judge(rng, will >= 0.9),
                note: None,
            }),
        };
        self.emit(&event, false)
    }
}
