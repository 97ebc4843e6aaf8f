//! A message to send: its idempotency key, title and Markdown body, in one language.

use serde::{Deserialize, Serialize};

/// The language of a destination's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Zh,
    En,
}

impl Language {
    /// The Chinese or the English text.
    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Language::Zh => zh,
            Language::En => en,
        }
    }
}

/// What a message is about: a digest or an alert rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The morning digest of a team (早会).
    Morning,
    /// The weekly digest of a team (周例会).
    WeeklyTeam,
    /// The weekly digest of a branch.
    WeeklyBranch,
    /// An agent at risk for the first time this month.
    AtRiskFirst,
    /// An agent or team crossing a share of its premium target.
    TargetCrossed,
    /// A team's visit coverage of the week below the threshold.
    CoverageLow,
    /// An agent's activity drifting towards the easy activity (quota balance).
    BalanceDrift,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Morning => "morning",
            Kind::WeeklyTeam => "weekly_team",
            Kind::WeeklyBranch => "weekly_branch",
            Kind::AtRiskFirst => "at_risk_first",
            Kind::TargetCrossed => "target_crossed",
            Kind::CoverageLow => "coverage_low",
            Kind::BalanceDrift => "balance_drift",
        }
    }

    /// Digests are scheduled; alerts come with the morning's run.
    pub fn is_digest(self) -> bool {
        matches!(self, Kind::Morning | Kind::WeeklyTeam | Kind::WeeklyBranch)
    }
}

/// Where a message is for: a team or a branch (an agent's alert is for its team).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Audience {
    pub team_id: Option<String>,
    pub branch_id: Option<String>,
}

/// One message, before it is addressed to a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub kind: Kind,
    /// The scope the message is about (a team, a branch, an agent), and the period.
    pub scope_id: String,
    /// A day (`2026-11-02`), a week (`2026-W45`), a month (`2026-11`), with the rule's
    /// level when it has one (`2026-11@50%`).
    pub period: String,
    pub audience: Audience,
    pub title: String,
    pub markdown: String,
}

impl Message {
    /// The message with the punctuation of `language` (the texts are built with Chinese
    /// full-width punctuation).
    pub fn punctuated(mut self, language: Language) -> Self {
        if language == Language::En {
            let english = |text: &str| {
                text.replace('，', ", ")
                    .replace('（', " (")
                    .replace('）', ")")
                    .replace('：', ": ")
            };
            self.title = english(&self.title);
            self.markdown = english(&self.markdown);
        }
        self
    }

    /// The idempotency key of this message at a destination: one delivery per destination,
    /// kind, scope and period.
    pub fn key(&self, destination: &str) -> String {
        format!(
            "{destination}|{}|{}|{}",
            self.kind.as_str(),
            self.scope_id,
            self.period
        )
    }
}
