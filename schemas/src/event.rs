//! Event schema v1: the envelope and one payload type per event.
//!
//! The wire form is an object: envelope fields plus `payload`, whose shape is chosen by
//! `type`. These Rust types are the single source of the published JSON Schema.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dates::{
    BusinessDate, ContractMonth, business_date, contract_month, optional_business_date,
};
use crate::decimal::{Money, Rate};
use crate::time::{BusinessClock, OccurredAt, YearMonth};

pub use crate::supervision::{
    AccompaniedVisit, CoachingSession, CoachingTopic, ImprovementMeasure, ImprovementMeasureStatus,
    MeasureStatus, MeetingKind, Rating, SkillWillEvaluation, TeamMeeting,
};

/// The newest schema version this build reads and the version it writes.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// Longest identifier accepted (event, agent, outlet, team, policy, source ids).
pub const MAX_ID_LEN: usize = 64;

/// One activity, plan, target or reference-data fact from an upstream system.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique per fact; the same id delivered again is the same fact.
    pub event_id: String,
    /// When it happened; its business date is this instant in the organisation's zone.
    pub occurred_at: OccurredAt,
    /// The emitting system (a CRM, a mobile work-log app, the core policy system).
    pub source: String,
    /// The customer manager the event concerns, for agent-scoped events.
    pub agent_id: Option<String>,
    pub payload: Payload,
}

impl Event {
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }

    pub fn business_date(&self, clock: &BusinessClock) -> NaiveDate {
        clock.business_date(&self.occurred_at)
    }
}

macro_rules! event_types {
    ($($variant:ident($payload:ident) = $name:literal, $agent:ident, $class:ident;)*) => {
        /// The kind of an event, as written in its `type` field.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum EventType {
            $($variant,)*
        }

        /// The typed body of an event.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Payload {
            $($variant($payload),)*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The name used on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(EventType::$variant),)*
                    _ => None,
                }
            }

            /// Whether the envelope must, may or must not name an agent.
            pub const fn agent_rule(self) -> AgentRule {
                match self {
                    $(EventType::$variant => AgentRule::$agent,)*
                }
            }

            /// The class of facts this type belongs to; publishing a class is granted per
            /// source.
            pub const fn class(self) -> EventClass {
                match self {
                    $(EventType::$variant => EventClass::$class,)*
                }
            }

            pub(crate) fn payload_schema(self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                match self {
                    $(EventType::$variant => generator.subschema_for::<$payload>(),)*
                }
            }

            /// Reads the payload of this type; only a JSON object is one (serde would also
            /// read an array field by field).
            pub(crate) fn decode_payload<'de, D: serde::Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
                match self {
                    $(EventType::$variant => crate::objects::object::<D, $payload>(d).map(Payload::$variant),)*
                }
            }
        }

        impl Payload {
            pub const fn event_type(&self) -> EventType {
                match self {
                    $(Payload::$variant(_) => EventType::$variant,)*
                }
            }

            pub(crate) fn serialize_into<S: serde::ser::SerializeMap>(&self, map: &mut S) -> Result<(), S::Error> {
                match self {
                    $(Payload::$variant(p) => map.serialize_entry("payload", p),)*
                }
            }
        }
    };
}

/// Schema of an identifier (ids of events, agents, outlets, teams, policies, sources):
/// 1 to 64 characters, no control characters, no leading or trailing spaces.
#[derive(Debug)]
pub(crate) struct Id;

/// The pattern behind [`Id`]: no control character (C0, DEL, C1), no space of any kind at
/// either end (emptiness is left to `minLength`, so an empty id gets one clear error). The
/// characters are listed rather than written `\s`, whose meaning differs between regex
/// engines; [`is_valid_id`] checks the same sets.
pub(crate) const ID_PATTERN: &str = concat!(
    r"^([^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]",
    r"([^\x00-\x1f\x7f-\x9f]*",
    r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff])?)?$"
);

/// A space that an id must not start or end with: every Unicode and ECMAScript white space
/// that is not a control character already.
const fn is_id_edge_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// Whether `id` is a well-formed identifier: 1 to [`MAX_ID_LEN`] characters, no control
/// character (U+0000–U+001F, U+007F–U+009F), no space at either end. The published
/// schema's pattern says the same.
pub fn is_valid_id(id: &str) -> bool {
    let length = id.chars().count();
    (1..=MAX_ID_LEN).contains(&length)
        && !id.chars().any(char::is_control)
        && !id.starts_with(is_id_edge_space)
        && !id.ends_with(is_id_edge_space)
}

impl JsonSchema for Id {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Id".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Identifier: 1 to 64 characters, no control characters (U+0000 to U+001F, U+007F to U+009F), no leading or trailing spaces",
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_LEN,
            "pattern": ID_PATTERN,
        })
    }
}

/// What kind of fact an event type publishes. Which classes a source may publish is
/// granted per source (the ingest tokens file); a retraction only ever touches its own
/// source's events, so every source may send one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventClass {
    /// Teams, outlets and the working-day calendar: `team_defined`, `outlet_registered`,
    /// `calendar_day`.
    Reference,
    /// Who belongs where and under which name: `agent_joined_team`, `agent_left`,
    /// `outlet_assigned`, `outlet_unassigned`, `agent_profile`.
    Roster,
    /// Monthly targets: `target`.
    Targets,
    /// Agents' activity plans: `activity_plan`.
    Plans,
    /// The work itself: `outlet_visit`, `consultation`, `sale_closed`, `policy_cancelled`,
    /// and the supervisors' work: `coaching_session`, `accompanied_visit`, `team_meeting`,
    /// `skill_will_evaluation`, `improvement_measure`, `improvement_measure_status`.
    Activity,
    /// Withdrawing one's own event: `retraction`.
    Retraction,
}

impl EventClass {
    pub const ALL: [EventClass; 6] = [
        EventClass::Reference,
        EventClass::Roster,
        EventClass::Targets,
        EventClass::Plans,
        EventClass::Activity,
        EventClass::Retraction,
    ];

    /// The name used in tokens files and error messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventClass::Reference => "reference",
            EventClass::Roster => "roster",
            EventClass::Targets => "targets",
            EventClass::Plans => "plans",
            EventClass::Activity => "activity",
            EventClass::Retraction => "retraction",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.as_str() == name)
    }

    /// Whether a source needs a grant to publish this class (all but retractions).
    pub const fn needs_grant(self) -> bool {
        !matches!(self, EventClass::Retraction)
    }
}

impl std::fmt::Display for EventClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an event type relates to the envelope's `agent_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentRule {
    Required,
    /// Required exactly when the payload says the event is about one agent.
    Conditional,
    Forbidden,
}

event_types! {
    OutletVisit(OutletVisit) = "outlet_visit", Required, Activity;
    Consultation(Consultation) = "consultation", Required, Activity;
    SaleClosed(SaleClosed) = "sale_closed", Required, Activity;
    PolicyCancelled(PolicyCancelled) = "policy_cancelled", Required, Activity;
    ActivityPlan(ActivityPlan) = "activity_plan", Required, Plans;
    Target(Target) = "target", Conditional, Targets;
    TeamDefined(TeamDefined) = "team_defined", Forbidden, Reference;
    AgentJoinedTeam(AgentJoinedTeam) = "agent_joined_team", Required, Roster;
    AgentLeft(AgentLeft) = "agent_left", Required, Roster;
    OutletRegistered(OutletRegistered) = "outlet_registered", Forbidden, Reference;
    OutletAssigned(OutletAssigned) = "outlet_assigned", Required, Roster;
    OutletUnassigned(OutletUnassigned) = "outlet_unassigned", Required, Roster;
    AgentProfile(AgentProfile) = "agent_profile", Required, Roster;
    CalendarDay(CalendarDay) = "calendar_day", Forbidden, Reference;
    CoachingSession(CoachingSession) = "coaching_session", Required, Activity;
    AccompaniedVisit(AccompaniedVisit) = "accompanied_visit", Required, Activity;
    TeamMeeting(TeamMeeting) = "team_meeting", Forbidden, Activity;
    SkillWillEvaluation(SkillWillEvaluation) = "skill_will_evaluation", Required, Activity;
    ImprovementMeasure(ImprovementMeasure) = "improvement_measure", Forbidden, Activity;
    ImprovementMeasureStatus(ImprovementMeasureStatus) = "improvement_measure_status", Forbidden, Activity;
    Retraction(Retraction) = "retraction", Conditional, Retraction;
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a customer manager visited an outlet (拜访原因).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum VisitPurpose {
    /// Relationship upkeep with outlet staff.
    Relationship,
    /// Training outlet staff.
    Training,
    /// Promoting a product.
    Promotion,
    /// Service or after-sales work.
    Service,
    /// Any other purpose.
    Other,
}

impl VisitPurpose {
    pub const ALL: [VisitPurpose; 5] = [
        VisitPurpose::Relationship,
        VisitPurpose::Training,
        VisitPurpose::Promotion,
        VisitPurpose::Service,
        VisitPurpose::Other,
    ];
}

/// Outlet visit (银行拜访).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutletVisit {
    #[schemars(with = "Id")]
    pub outlet_id: String,
    pub purpose: VisitPurpose,
    /// What the visit achieved (达成效果), free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub outcome_note: Option<String>,
}

/// Customer consultation at an outlet (客户洽谈).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consultation {
    #[schemars(with = "Id")]
    pub outlet_id: String,
    /// Customers consulted (洽谈人数), at least 1.
    #[schemars(range(min = 1))]
    pub customers_consulted: u32,
    /// Of them, customers with purchase intent (有购买意向客户).
    pub customers_interested: u32,
}

/// Single premium (趸交) or regular premium (期交).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMode {
    Single,
    Regular,
}

/// A policy issued (促成/出单).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleClosed {
    /// Outlet where the policy was issued (出单网点).
    #[schemars(with = "Id")]
    pub outlet_id: String,
    #[schemars(with = "Id")]
    pub policy_id: String,
    /// Product code (险种).
    #[schemars(with = "Id")]
    pub product_code: String,
    /// Premium in CNY, greater than zero.
    pub premium: Money,
    pub payment_mode: PaymentMode,
    /// Years of payment; required for regular premium (2 to 99), absent for single.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 99))]
    pub payment_years: Option<u32>,
    /// Premium collected in advance (预收).
    #[serde(default)]
    pub pre_collected: bool,
}

/// Why a policy was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    /// Surrender within the cooling-off period (犹豫期退保).
    CoolingOff,
    /// Surrender after the cooling-off period.
    Surrender,
    /// Policy rescinded by the insurer.
    Rescinded,
    /// Any other reason; say which in `note`.
    Other,
}

/// A policy cancelled: a new fact on its own date; the sale still happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyCancelled {
    #[schemars(with = "Id")]
    pub policy_id: String,
    /// Amount refunded in CNY, zero or more.
    pub refund: Money,
    pub reason: CancellationReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub note: Option<String>,
}

/// Planned visits per purpose, for plans that break visits down.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitsByPurpose {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<u32>,
}

/// An agent's own activity plan (活动计划 / 责任额) for a date range, inclusive.
/// A later plan for the same agent and range replaces the earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityPlan {
    #[serde(deserialize_with = "business_date")]
    #[schemars(with = "BusinessDate")]
    pub period_start: NaiveDate,
    /// Last day of the plan, on or after `period_start`.
    #[serde(deserialize_with = "business_date")]
    #[schemars(with = "BusinessDate")]
    pub period_end: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visits: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consultations: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::optional_object"
    )]
    pub visits_by_purpose: Option<VisitsByPurpose>,
}

/// The organisational level a target or KPI applies to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Agent,
    Team,
    Branch,
    Region,
}

impl Scope {
    /// Every scope, smallest first (the order of KPI rows).
    pub const ALL: [Scope; 4] = [Scope::Agent, Scope::Team, Scope::Branch, Scope::Region];

    /// The name in events, ledger tables and KPI rows (`agent`, `team`, `branch`, `region`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Agent => "agent",
            Scope::Team => "team",
            Scope::Branch => "branch",
            Scope::Region => "region",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == name)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A monthly target (月度目标) for one scope. A later target for the same scope and month
/// replaces the earlier one. For `scope: agent` the envelope's `agent_id` equals `scope_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(deserialize_with = "contract_month")]
    #[schemars(with = "ContractMonth")]
    pub month: YearMonth,
    pub scope: Scope,
    #[schemars(with = "Id")]
    pub scope_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premium: Option<Money>,
    /// Target share of assigned outlets with at least one sale, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlet_activity_rate: Option<Rate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visits: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consultations: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales: Option<u32>,
}

/// A team and its place in the organisation: team → branch → region, in force from
/// `effective_from` on (from the beginning when absent). For a date D the definition in
/// force is the one with the greatest `effective_from` on or before D; of two with the same
/// `effective_from`, the later `occurred_at` wins (then `event_id`, then `source`), and
/// retracting one brings back the one before. Past dates keep the parent they had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamDefined {
    #[schemars(with = "Id")]
    pub team_id: String,
    #[schemars(length(min = 1, max = 200))]
    pub team_name: String,
    #[schemars(with = "Id")]
    pub branch_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub branch_name: Option<String>,
    #[schemars(with = "Id")]
    pub region_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub region_name: Option<String>,
    /// The sales supervisor (销售主管) leading the team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Id>")]
    pub supervisor_id: Option<String>,
    /// The first business date this definition holds for; absent, it holds from the
    /// beginning (a team moving to another branch on the 15th is defined anew from the 15th).
    #[serde(
        default,
        deserialize_with = "optional_business_date",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<BusinessDate>")]
    pub effective_from: Option<NaiveDate>,
}

/// The agent belongs to `team_id` from `effective_date` on; joining another team is a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentJoinedTeam {
    #[schemars(with = "Id")]
    pub team_id: String,
    #[serde(deserialize_with = "business_date")]
    #[schemars(with = "BusinessDate")]
    pub effective_date: NaiveDate,
    /// The agent's name as the roster system knows it: shown until an `agent_profile` of
    /// the agent names them (a profile always wins; among joins, the latest with a name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub agent_name: Option<String>,
}

/// The agent leaves the roster; `effective_date` is the first day no longer on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentLeft {
    #[serde(deserialize_with = "business_date")]
    #[schemars(with = "BusinessDate")]
    pub effective_date: NaiveDate,
}

/// A bank outlet (网点) becomes known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutletRegistered {
    #[schemars(with = "Id")]
    pub outlet_id: String,
    /// The bank, e.g. ICBC, ABC, BOC.
    #[schemars(length(min = 1, max = 200))]
    pub bank: String,
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    #[schemars(with = "Id")]
    pub region_id: String,
}

/// The outlet is assigned to the agent from `effective_date` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutletAssigned {
    #[schemars(with = "Id")]
    pub outlet_id: String,
    #[serde(deserialize_with = "business_date")]
    #[schemars(with = "BusinessDate")]
    pub effective_date: NaiveDate,
}

/// The outlet is no longer the agent's from `effective_date` on (last day is the day before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutletUnassigned {
    #[schemars(with = "Id")]
    pub outlet_id: String,
    #[serde(deserialize_with = "business_date")]
    #[schemars(with = "BusinessDate")]
    pub effective_date: NaiveDate,
}

/// How an agent is named on the dashboard and in exports (the envelope's `agent_id` is the
/// agent). The latest profile of an agent (by `occurred_at`, then `event_id`, then `source`)
/// is the one in force; retracting it brings the previous one back. Personal data is kept
/// to the name: no phone, employee number or identity card belongs here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentProfile {
    /// The name shown to the roles allowed to see agents' names, e.g. 王丽娟.
    #[schemars(length(min = 1, max = 200))]
    pub display_name: String,
}

/// What a date is for the organisation's working-day calendar.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// Not worked, whatever its weekday (a public holiday, 法定节假日).
    Holiday,
    /// Worked, whatever its weekday (a swapped working day, 调休上班).
    WorkingDay,
}

impl DayKind {
    /// The name in events and in the ledger table (`holiday`, `working_day`).
    pub const fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::WorkingDay => "working_day",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [DayKind::Holiday, DayKind::WorkingDay]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// A day of the working-day calendar (工作日历): `date` is declared a holiday or a working
/// day, overriding the rule that Monday to Friday are worked. For one date the latest
/// declaration wins (by `occurred_at`, then `event_id`, then `source`); retracting it brings
/// the previous one back, and a date with none left follows the weekday rule again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarDay {
    /// The business date declared.
    #[serde(deserialize_with = "business_date")]
    #[schemars(with = "BusinessDate")]
    pub date: NaiveDate,
    pub kind: DayKind,
    /// What the day is, e.g. 国庆节 or 国庆节调休.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub name: Option<String>,
}

/// An event entered in error, withdrawn: it then counts nowhere, as if never sent.
/// When the retracted event names an agent, the retraction names the same agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retraction {
    #[schemars(with = "Id")]
    pub retracted_event_id: String,
    #[schemars(length(min = 1, max = 500))]
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use schemars::JsonSchema;

    use super::*;

    /// The published pattern and the fast path's check agree on every character of the
    /// Basic Multilingual Plane and a few beyond, at the start, inside and at the end.
    #[test]
    fn the_id_pattern_says_what_is_valid_id_does() {
        let schema = Id::json_schema(&mut schemars::SchemaGenerator::default()).to_value();
        let validator = jsonschema::validator_for(&schema).expect("schema");
        let astral = ['\u{10000}', '\u{1F600}', '\u{E0001}', '\u{10FFFF}'];
        let characters = (0..=0xFFFF_u32).filter_map(char::from_u32).chain(astral);
        for c in characters {
            for id in [
                format!("{c}"),
                format!("a{c}b"),
                format!("a{c}"),
                format!("{c}b"),
            ] {
                assert_eq!(
                    validator.is_valid(&serde_json::json!(id)),
                    is_valid_id(&id),
                    "U+{:04X} in {id:?}",
                    u32::from(c)
                );
            }
        }
    }

    #[test]
    fn every_type_has_a_class_and_only_retractions_need_no_grant() {
        for &event_type in EventType::ALL {
            let class = event_type.class();
            assert_eq!(
                class.needs_grant(),
                event_type != EventType::Retraction,
                "{event_type}"
            );
            assert_eq!(EventClass::from_name(class.as_str()), Some(class));
        }
    }

    #[test]
    fn a_scope_is_named_as_serde_names_it() {
        for scope in Scope::ALL {
            let json = serde_json::to_string(&scope).expect("json");
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
            assert_eq!(Scope::from_name(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::from_name("Agent"), None);
    }
}
