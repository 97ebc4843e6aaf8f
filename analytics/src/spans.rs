//! Distinct members per group and period, straight from runs of days.
//!
//! An outlet assigned to a team for three weeks is one span, not 21 rows: counting the
//! distinct outlets of a team per day, week or month only needs each span's first and last
//! period. Days are numbered from the first day of the job's window.

/// Which period (of one kind: days, weeks or months) each day of the window falls in.
#[derive(Debug, Clone)]
pub struct PeriodIndex {
    of_day: Vec<u32>,
    periods: usize,
}

impl PeriodIndex {
    /// `of_day[d]` is the period of day `d`: 0 on the first day, then non-decreasing in
    /// steps of at most one.
    pub fn new(of_day: Vec<u32>) -> Self {
        debug_assert!(of_day.first().is_none_or(|p| *p == 0));
        debug_assert!(of_day.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));
        let periods = of_day.last().map_or(0, |p| *p as usize + 1);
        Self { of_day, periods }
    }

    pub fn of(&self, day: u32) -> u32 {
        self.of_day[day as usize]
    }

    /// How many periods the window touches.
    pub fn len(&self) -> usize {
        self.periods
    }

    pub fn is_empty(&self) -> bool {
        self.periods == 0
    }
}

/// `member` counts for `group` on the days `first..=last`. The field order is the sort
/// order [`distinct_per_period`] and [`SpanIndex`] need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub member: u32,
    pub group: u32,
    pub first: u32,
    pub last: u32,
}

/// Distinct members of each group per period, laid out group by group.
#[derive(Debug, Clone)]
pub struct DistinctCounts {
    // One extra slot per group: the running sum is built in place from +1/-1 marks.
    counts: Vec<i32>,
    stride: usize,
}

impl DistinctCounts {
    pub fn get(&self, group: u32, period: u32) -> u32 {
        self.counts[group as usize * self.stride + period as usize] as u32
    }
}

/// For every group and period, how many distinct members have at least one day in it.
/// `spans` must be sorted; members may have overlapping or repeated spans in a group.
pub fn distinct_per_period(spans: &[Span], groups: usize, index: &PeriodIndex) -> DistinctCounts {
    debug_assert!(spans.is_sorted());
    let stride = index.len() + 1;
    let mut counts = vec![0_i32; groups * stride];
    let mut current = None;
    // Periods before this one are already counted for the current member and group; the
    // spans arrive in day order, so a member's periods only grow.
    let mut uncounted = 0_u32;
    for span in spans {
        if current != Some((span.member, span.group)) {
            current = Some((span.member, span.group));
            uncounted = 0;
        }
        let from = index.of(span.first).max(uncounted);
        let to = index.of(span.last);
        if from <= to {
            let base = span.group as usize * stride;
            counts[base + from as usize] += 1;
            counts[base + to as usize + 1] -= 1;
            uncounted = to + 1;
        }
    }
    for row in counts.chunks_mut(stride) {
        let mut running = 0;
        for count in row {
            running += *count;
            *count = running;
        }
    }
    DistinctCounts { counts, stride }
}

/// Sorted spans with each member's spans at hand, to ask whether a member counted for a
/// group on a day.
#[derive(Debug, Clone)]
pub struct SpanIndex {
    spans: Vec<Span>,
    starts: Vec<u32>,
}

impl SpanIndex {
    /// Sorts the spans; members are numbered `0..members`.
    pub fn new(mut spans: Vec<Span>, members: usize) -> Self {
        spans.sort_unstable();
        let mut starts = vec![0_u32; members + 1];
        for span in &spans {
            starts[span.member as usize + 1] += 1;
        }
        for m in 0..members {
            starts[m + 1] += starts[m];
        }
        Self { spans, starts }
    }

    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// The spans of one member, by group and first day.
    pub fn of(&self, member: u32) -> &[Span] {
        match self.starts.get(member as usize..member as usize + 2) {
            Some(range) => &self.spans[range[0] as usize..range[1] as usize],
            None => &[],
        }
    }

    pub fn covers(&self, member: u32, group: u32, day: u32) -> bool {
        self.of(member)
            .iter()
            .any(|s| s.group == group && s.first <= day && day <= s.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(member: u32, group: u32, first: u32, last: u32) -> Span {
        Span {
            member,
            group,
            first,
            last,
        }
    }

    /// 14 days from a Monday: days, then weeks of 7, then "months" of 10 and 4 days.
    fn indexes() -> [PeriodIndex; 3] {
        [
            PeriodIndex::new((0..14).collect()),
            PeriodIndex::new((0..14).map(|d| d / 7).collect()),
            PeriodIndex::new((0..14).map(|d| u32::from(d >= 10)).collect()),
        ]
    }

    #[test]
    fn a_member_counts_once_per_period_however_its_spans_overlap() {
        let index = SpanIndex::new(
            vec![
                // Member 7 in group 0: days 2-4 and 3-8 overlap, day 12 again later.
                span(7, 0, 3, 8),
                span(7, 0, 2, 4),
                span(7, 0, 12, 12),
                // Member 9 in group 0: days 6-7, and a span inside it.
                span(9, 0, 6, 7),
                span(9, 0, 7, 7),
                // Member 7 also in group 1, days 8-9.
                span(7, 1, 8, 9),
            ],
            10,
        );
        let [days, weeks, months] = indexes();
        let per_day = distinct_per_period(index.spans(), 2, &days);
        let group0: Vec<u32> = (0..14).map(|d| per_day.get(0, d)).collect();
        assert_eq!(group0, [0, 0, 1, 1, 1, 1, 2, 2, 1, 0, 0, 0, 1, 0]);
        let group1: Vec<u32> = (0..14).map(|d| per_day.get(1, d)).collect();
        assert_eq!(group1, [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]);

        let per_week = distinct_per_period(index.spans(), 2, &weeks);
        // Week 2 has member 9's day 7 and member 7's days 8 and 12.
        assert_eq!([per_week.get(0, 0), per_week.get(0, 1)], [2, 2]);
        assert_eq!([per_week.get(1, 0), per_week.get(1, 1)], [0, 1]);

        let per_month = distinct_per_period(index.spans(), 2, &months);
        assert_eq!([per_month.get(0, 0), per_month.get(0, 1)], [2, 1]);
        assert_eq!([per_month.get(1, 0), per_month.get(1, 1)], [1, 0]);
    }

    #[test]
    fn covers_asks_about_one_member_group_and_day() {
        let index = SpanIndex::new(vec![span(1, 4, 2, 5), span(0, 4, 0, 0)], 3);
        assert!(index.covers(1, 4, 2));
        assert!(index.covers(1, 4, 5));
        assert!(!index.covers(1, 4, 6));
        assert!(!index.covers(1, 3, 3));
        assert!(index.covers(0, 4, 0));
        assert!(!index.covers(2, 4, 0));
        assert!(!index.covers(5, 4, 0));
    }
}
