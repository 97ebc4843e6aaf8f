//! The generator: same seed, same bytes; everything it writes is valid; its funnel and
//! calendar behave within the bounds documented in the crate README.

#![cfg(feature = "generator")]

use std::collections::HashMap;

use aqs_schemas::generator::{GeneratorConfig, generate};
use aqs_schemas::{BusinessClock, Decoder, Event, EventType, Payload, WorkingCalendar};
use chrono::{Datelike, NaiveDate, Weekday};

fn day(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

fn run(config: &GeneratorConfig) -> Vec<u8> {
    let mut out = Vec::new();
    generate(config, &mut out).expect("generate into memory");
    out
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
    let config = GeneratorConfig::new(7, 40, day("2026-11-01"), 10);
    let first = run(&config);
    assert_eq!(first, run(&config));
    let other = run(&GeneratorConfig::new(8, 40, day("2026-11-01"), 10));
    assert_ne!(first, other);
}

struct Funnel {
    events: Vec<Event>,
    lines: usize,
    distinct: usize,
}

fn decode_all(bytes: &[u8]) -> Funnel {
    let decoder = Decoder::standard();
    let mut events = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let mut lines = 0;
    for (number, line) in bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        lines += 1;
        let event = decoder
            .decode(line)
            .unwrap_or_else(|e| panic!("line {}: {e}", number + 1));
        if ids.insert(event.event_id.clone()) {
            events.push(event);
        }
    }
    Funnel {
        distinct: events.len(),
        events,
        lines,
    }
}

#[test]
fn a_month_of_a_region_is_valid_and_follows_the_funnel() {
    // October 2026 with the National Day holidays off and one swapped working Saturday.
    let calendar = WorkingCalendar::from_json(
        r#"{"holidays": ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"],
            "working_days": ["2026-10-10"]}"#,
    )
    .expect("calendar");
    let config = GeneratorConfig {
        calendar: calendar.clone(),
        supervision: true,
        ..GeneratorConfig::new(11, 200, day("2026-10-01"), 31)
    };
    let funnel = decode_all(&run(&config));
    assert!(
        funnel.lines > funnel.distinct,
        "some events are delivered twice"
    );

    let clock = BusinessClock::default();
    let (mut visits, mut consultations, mut consulted, mut interested, mut sales) =
        (0, 0, 0_u64, 0_u64, 0);
    let mut visits_per_day: HashMap<NaiveDate, u32> = HashMap::new();
    let mut types = std::collections::BTreeSet::new();
    for event in &funnel.events {
        types.insert(event.event_type());
        match &event.payload {
            Payload::OutletVisit(_) => {
                visits += 1;
                *visits_per_day
                    .entry(event.business_date(&clock))
                    .or_default() += 1;
            }
            Payload::Consultation(c) => {
                consultations += 1;
                consulted += u64::from(c.customers_consulted);
                interested += u64::from(c.customers_interested);
            }
            Payload::SaleClosed(_) => sales += 1,
            _ => {}
        }
    }
    let all: std::collections::BTreeSet<EventType> = EventType::ALL.iter().copied().collect();
    assert_eq!(types, all, "a month of a region exercises every event type");
    // The calendar travels with the stream: one declaration a date, making the same calendar.
    let declared: Vec<_> = funnel
        .events
        .iter()
        .filter_map(|event| match &event.payload {
            Payload::CalendarDay(day) => Some((day.date, day.kind)),
            _ => None,
        })
        .collect();
    assert_eq!(declared.len(), 6);
    assert_eq!(WorkingCalendar::from_declared(declared), calendar);

    let ratio = |a: f64, b: f64| a / b;
    let consultations_per_visit = ratio(f64::from(consultations), f64::from(visits));
    let interest = ratio(interested as f64, consulted as f64);
    let close_rate = ratio(f64::from(sales), consulted as f64);
    assert!(
        (0.45..=0.65).contains(&consultations_per_visit),
        "consultations per visit {consultations_per_visit}"
    );
    assert!(
        (0.30..=0.46).contains(&interest),
        "interested per consulted {interest}"
    );
    assert!(
        (0.03..=0.15).contains(&close_rate),
        "sales per consulted {close_rate}"
    );

    // Weekends and holidays are quiet; the swapped Saturday is a working day.
    let average = |pred: &dyn Fn(NaiveDate) -> bool| {
        let days: Vec<u32> = (0..31)
            .map(|i| day("2026-10-01") + chrono::Duration::days(i))
            .filter(|d| pred(*d))
            .map(|d| visits_per_day.get(&d).copied().unwrap_or(0))
            .collect();
        f64::from(days.iter().sum::<u32>()) / days.len() as f64
    };
    let working = average(&|d| calendar.is_working_day(d));
    let quiet = average(&|d| !calendar.is_working_day(d));
    assert!(
        quiet < 0.3 * working,
        "quiet days {quiet} vs working days {working}"
    );
    let swapped = f64::from(visits_per_day[&day("2026-10-10")]);
    assert!(
        swapped > 0.6 * working,
        "the swapped Saturday is worked: {swapped} vs {working}"
    );
    let holiday = f64::from(visits_per_day.get(&day("2026-10-06")).copied().unwrap_or(0));
    assert!(
        holiday < 0.3 * working,
        "a holiday Tuesday is quiet: {holiday}"
    );
    assert_eq!(day("2026-10-10").weekday(), Weekday::Sat);
}

#[test]
fn premiums_look_like_bancassurance() {
    let funnel = decode_all(&run(&GeneratorConfig::new(3, 300, day("2026-03-02"), 20)));
    let mut single = Vec::new();
    let mut regular = Vec::new();
    for event in &funnel.events {
        if let Payload::SaleClosed(sale) = &event.payload {
            assert!(sale.premium.units() > 0);
            match sale.payment_years {
                None => single.push(sale.premium.units() / 100),
                Some(years) => {
                    assert!((2..=99).contains(&years));
                    regular.push(sale.premium.units() / 100);
                }
            }
        }
    }
    single.sort_unstable();
    regular.sort_unstable();
    let median = |v: &[i64]| v[v.len() / 2];
    assert!(
        regular.len() > single.len(),
        "regular premium is the larger share"
    );
    assert!(
        (30_000..=80_000).contains(&median(&single)),
        "single median {}",
        median(&single)
    );
    assert!(
        (6_000..=16_000).contains(&median(&regular)),
        "regular median {}",
        median(&regular)
    );
}

#[test]
fn a_few_agents_drift_towards_visits() {
    let config = GeneratorConfig::new(11, 200, day("2026-10-12"), 28);
    let funnel = decode_all(&run(&config));
    let mut per_agent: HashMap<String, (u32, u32)> = HashMap::new();
    for event in &funnel.events {
        let Some(agent) = &event.agent_id else {
            continue;
        };
        let counts = per_agent.entry(agent.clone()).or_default();
        match &event.payload {
            Payload::OutletVisit(_) => counts.0 += 1,
            Payload::Consultation(_) => counts.1 += 1,
            _ => {}
        }
    }
    let mut rates: Vec<f64> = per_agent
        .values()
        .filter(|(visits, _)| *visits >= 20)
        .map(|(visits, consultations)| f64::from(*consultations) / f64::from(*visits))
        .collect();
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    let drifting = rates.iter().filter(|rate| **rate < 0.25).count();
    assert!(
        (0.45..=0.65).contains(&median),
        "most agents consult after about half their visits: {median}"
    );
    // About 6% of 200 agents consult after a seventh of their visits or fewer.
    assert!(
        (4..=25).contains(&drifting),
        "{drifting} agents drift towards visits"
    );
}

#[test]
fn the_demo_calendar_has_a_holiday_and_a_swapped_saturday_in_every_month() {
    let calendar = aqs_schemas::generator::demo_calendar(day("2026-11-01"), day("2026-12-31"));
    assert_eq!(
        calendar
            .holidays
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["2026-11-09", "2026-12-14"]
    );
    assert_eq!(
        calendar
            .working_days
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["2026-11-07", "2026-12-12"]
    );
    // 21 weekdays in November and 23 in December, one less and one more each.
    assert_eq!(
        calendar.working_days_between(day("2026-11-01"), day("2026-11-30")),
        21
    );
    assert_eq!(
        calendar.working_days_between(day("2026-12-01"), day("2026-12-31")),
        23
    );
}
