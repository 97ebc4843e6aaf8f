//! The sales supervisor's facts (销售主管活动管理): coaching, accompanied visits, team
//! meetings, skill-and-will evaluations and improvement measures with their reviews. Payload
//! types of event schema v1, like those of [`crate::event`]; what each counts for is defined
//! in analytics/README.md ("Supervisors").

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dates::{BusinessDate, ContractMonth, business_date, contract_month};
use crate::event::{Id, Scope};
use crate::time::YearMonth;

/// Longest meeting or coaching session accepted, in minutes (a working day).
pub const MAX_SESSION_MINUTES: u32 = 720;

/// What a coaching session worked on: one of the coaching quadrant's causes, or else.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CoachingTopic {
    /// Activity management: the agent does not do enough (活动量管理).
    Activity,
    /// Selling skill: the agent does not know how (技能辅导).
    Skill,
    /// Motivation: the agent is unwilling (意愿激励).
    Will,
    /// Anything else; say what in `note`.
    Other,
}

/// The kinds of team meeting the method asks for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MeetingKind {
    /// 早会.
    Morning,
    /// 夕会: the day's results reviewed before leaving.
    Evening,
    /// 周例会: the weekly meeting of the whole team, about two hours.
    Weekly,
    /// 月度会议.
    Monthly,
}

/// A supervisor's judgement of one side of the coaching quadrant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    High,
    Low,
}

/// Where an improvement measure stood when reviewed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MeasureStatus {
    /// Carried out: the measure is closed.
    Done,
    /// Partly carried out: still open.
    Partly,
    /// Not carried out: still open.
    NotDone,
}

macro_rules! names {
    ($($kind:ident { $($variant:ident = $name:literal),* })*) => {$(
        impl $kind {
            pub const ALL: &'static [$kind] = &[$($kind::$variant),*];

            /// The name in events and in the ledger table.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($kind::$variant => $name,)*
                }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|value| value.as_str() == name)
            }
        }
    )*};
}

names! {
    CoachingTopic { Activity = "activity", Skill = "skill", Will = "will", Other = "other" }
    MeetingKind { Morning = "morning", Evening = "evening", Weekly = "weekly", Monthly = "monthly" }
    Rating { High = "high", Low = "low" }
    MeasureStatus { Done = "done", Partly = "partly", NotDone = "not_done" }
}

/// Individual coaching (个别辅导) of the envelope's agent by a supervisor, on the event's
/// business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CoachingSession {
    /// The supervisor who coached (not the agent coached).
    #[schemars(with = "Id")]
    pub supervisor_id: String,
    /// Length of the session, 1 to 720 minutes.
    #[schemars(range(min = 1, max = 720))]
    pub duration_minutes: u32,
    pub topic: CoachingTopic,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub note: Option<String>,
}

/// A field visit (陪同展业) on which a supervisor accompanied the envelope's agent, on the
/// event's business date. It is the supervisor's fact and never adds a visit to the agent:
/// when the agent logs the same visit as an `outlet_visit` of their own, that event is the
/// agent's visit and `visit_event_id` may name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccompaniedVisit {
    #[schemars(with = "Id")]
    pub supervisor_id: String,
    #[schemars(with = "Id")]
    pub outlet_id: String,
    /// The agent's own `outlet_visit` event of the same visit, when the agent logged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Id>")]
    pub visit_event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub note: Option<String>,
}

/// A meeting of a team held on the event's business date; it counts for the supervisor who
/// leads the team on that date (the team definition in force).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamMeeting {
    #[schemars(with = "Id")]
    pub team_id: String,
    pub kind: MeetingKind,
    /// Length of the meeting, 1 to 720 minutes.
    #[schemars(range(min = 1, max = 720))]
    pub duration_minutes: u32,
    /// Agents present.
    pub attendees: u32,
}

/// A supervisor's monthly skill-and-will evaluation (技能/意愿评估) of the envelope's agent.
/// For one agent and month the latest (by `occurred_at`, then `event_id`, then `source`) is
/// in force; retracting it brings back the one before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillWillEvaluation {
    #[schemars(with = "Id")]
    pub supervisor_id: String,
    /// The month evaluated.
    #[serde(deserialize_with = "contract_month")]
    #[schemars(with = "ContractMonth")]
    pub month: YearMonth,
    pub skill: Rating,
    pub will: Rating,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub note: Option<String>,
}

/// A monthly improvement measure (业务改善措施计划) for a unit, owned by the supervisor
/// accountable for it. The event's id is the measure's id: status updates name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImprovementMeasure {
    /// The unit the measure improves: an agent, a team, a branch or a region.
    pub scope: Scope,
    #[schemars(with = "Id")]
    pub scope_id: String,
    /// The month the measure is planned for.
    #[serde(deserialize_with = "contract_month")]
    #[schemars(with = "ContractMonth")]
    pub month: YearMonth,
    /// What will be done, 1 to 2000 characters.
    #[schemars(length(min = 1, max = 2000))]
    pub measure: String,
    /// The supervisor accountable for it.
    #[schemars(with = "Id")]
    pub owner_id: String,
    /// When it is due, on or after the first day of `month`.
    #[serde(deserialize_with = "business_date")]
    #[schemars(with = "BusinessDate")]
    pub due_date: NaiveDate,
}

/// A review of an improvement measure (上月改善措施进展检讨), from the event's business date
/// on. A measure's status on a date is its latest review on or before it (by `occurred_at`,
/// then `event_id`, then `source`); without one the measure is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImprovementMeasureStatus {
    /// The `event_id` of the `improvement_measure` reviewed (of the same source).
    #[schemars(with = "Id")]
    pub measure_event_id: String,
    pub status: MeasureStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub note: Option<String>,
}
