//! Distinct outlets visited, assigned outlets visited and assigned outlets sold at, per
//! row.

use super::super::facts::LedgerFacts;
use super::super::ids::{NONE, ScopeKeys};
use super::super::rows::TableRows;
use super::super::window::Periods;
use super::{both, grouped};
use crate::spans::SpanIndex;

/// Per row: outlets visited, assigned outlets visited, assigned outlets with a sale.
pub(crate) type OutletCounts = [u32; 3];

/// An outlet counts for a scope's coverage on a day when it was assigned to one of the
/// scope's agents who belonged to the scope that day (`assigned`, per scope key). The facts
/// are taken outlet by outlet, so a row already counted for the outlet at hand is not
/// counted again; the outlets are split in two halves counted side by side (an outlet's
/// facts all in one half), whose counts add up.
pub(crate) fn add_up(
    facts: &LedgerFacts<'_>,
    keys: &ScopeKeys,
    periods: &[Periods; 3],
    rows: &TableRows,
    assigned: &SpanIndex,
) -> Vec<OutletCounts> {
    let by_outlet = grouped(
        facts.outlet_days.iter().map(|f| f.outlet),
        facts.outlets.len(),
    );
    let outlet_at = |index: usize| facts.outlet_days[by_outlet[index] as usize].outlet;
    let mut middle = by_outlet.len() / 2;
    while middle > 0 && middle < by_outlet.len() && outlet_at(middle) == outlet_at(middle - 1) {
        middle += 1;
    }
    let (first, second) = by_outlet.split_at(middle);
    let counting = Counting {
        facts,
        keys,
        periods,
        rows,
        assigned,
    };
    let (mut counts, more) = both(|| counting.count(first), || counting.count(second));
    for (counts, more) in counts.iter_mut().zip(more) {
        for (count, more) in counts.iter_mut().zip(more) {
            *count += more;
        }
    }
    counts
}

/// What counting the outlets reads.
struct Counting<'a> {
    facts: &'a LedgerFacts<'a>,
    keys: &'a ScopeKeys,
    periods: &'a [Periods; 3],
    rows: &'a TableRows,
    assigned: &'a SpanIndex,
}

impl Counting<'_> {
    /// The counts of the outlet days at `by_outlet` (indexes grouped by outlet).
    fn count(&self, by_outlet: &[u32]) -> Vec<OutletCounts> {
        let Self {
            facts,
            keys,
            periods,
            rows,
            assigned,
        } = *self;
        // Per row and count: the outlet last counted, and the count.
        let mut tally = vec![([NONE; 3], [0_u32; 3]); rows.len()];
        for &index in by_outlet {
            let fact = &facts.outlet_days[index as usize];
            let team = facts.activity_team(fact.agent, fact.day);
            let scopes = keys.of_agent(fact.agent, team, fact.day);
            // Which of the scopes had the outlet assigned that day, in one look at its spans.
            let mut covered = [false; 4];
            for span in assigned.of(fact.outlet) {
                if span.first <= fact.day && fact.day <= span.last {
                    for (covered, scope) in covered.iter_mut().zip(scopes) {
                        *covered |= span.group == scope;
                    }
                }
            }
            for (scope, covered) in scopes.into_iter().zip(covered) {
                if scope == NONE {
                    continue;
                }
                let flags = [fact.visited, fact.visited && covered, fact.sold && covered];
                for r in rows.of_day(periods, scope, fact.day) {
                    if r == NONE {
                        continue;
                    }
                    let (last_outlet, counts) = &mut tally[r as usize];
                    for ((last, count), flag) in last_outlet.iter_mut().zip(counts).zip(flags) {
                        if flag && *last != fact.outlet {
                            *last = fact.outlet;
                            *count += 1;
                        }
                    }
                }
            }
        }
        tally.into_iter().map(|(_, counts)| counts).collect()
    }
}
