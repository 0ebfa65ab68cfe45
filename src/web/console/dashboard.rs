//! The console's front page: counts, a chart of sign-ins and failures over
//! the last 24 hours and 7 days (SVG drawn here, no script), and the latest
//! audit events.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::overview::{Activity, Bucket};
use crate::web::AppState;
use crate::web::extract::ConsoleUser;
use crate::web::html::{EventRow, Nav, PageResult, nav, redirect, render};

pub(super) async fn root() -> HttpResponse {
    redirect("/admin")
}

// ---------------------------------------------------------------- chart

/// One bar of a chart, placed in SVG user units.
pub(super) struct Bar {
    x: String,
    y: String,
    w: String,
    h: String,
    class: &'static str,
    title: String,
}

pub(super) struct Tick {
    x: String,
    text: String,
}

pub(super) struct GridLine {
    y: String,
    value: u32,
}

/// A bar chart of sign-ins and failures per bucket, drawn on the server.
pub(super) struct Chart {
    id: &'static str,
    title: &'static str,
    width: u32,
    height: u32,
    plot_left: u32,
    plot_right: u32,
    base_y: String,
    bars: Vec<Bar>,
    ticks: Vec<Tick>,
    grid: Vec<GridLine>,
    sign_ins: u32,
    failures: u32,
}

const W: f64 = 520.0;
const H: f64 = 190.0;
const LEFT: f64 = 34.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 24.0;

fn f(v: f64) -> String {
    format!("{v:.1}")
}

/// A round top for the value axis (1, 2, 4, 5 × 10ⁿ), at least 4.
fn nice_max(max: u32) -> u32 {
    let mut step = 1u32;
    loop {
        for m in [1, 2, 4, 5] {
            let top = step.saturating_mul(m);
            if top >= max.max(4) {
                return top;
            }
        }
        step = step.saturating_mul(10);
    }
}

fn chart(
    id: &'static str,
    title: &'static str,
    buckets: &[Bucket],
    label: impl Fn(usize, &Bucket) -> Option<String>,
    span: &str,
) -> Chart {
    let top = nice_max(
        buckets
            .iter()
            .map(|b| b.sign_ins.max(b.failures))
            .max()
            .unwrap_or(0),
    );
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / buckets.len().max(1) as f64;
    let bar_w = (slot * 0.38).min(22.0);
    let y_of = |v: u32| TOP + plot_h - plot_h * f64::from(v) / f64::from(top);
    let mut bars = Vec::new();
    let mut ticks = Vec::new();
    for (i, b) in buckets.iter().enumerate() {
        let x0 = LEFT + slot * i as f64 + (slot - 2.0 * bar_w) / 2.0;
        let when = crate::clock::rfc3339(b.start);
        for (k, (v, class, what)) in [
            (b.sign_ins, "bar-ok", "sign-ins"),
            (b.failures, "bar-bad", "failures"),
        ]
        .into_iter()
        .enumerate()
        {
            // An empty bucket still shows a hairline, so the axis reads as time.
            let h = (plot_h * f64::from(v) / f64::from(top)).max(if v > 0 { 1.5 } else { 0.0 });
            bars.push(Bar {
                x: f(x0 + bar_w * k as f64),
                y: f(TOP + plot_h - h),
                w: f(bar_w),
                h: f(h),
                class,
                title: format!("{v} {what}, {span} from {when}"),
            });
        }
        if let Some(text) = label(i, b) {
            ticks.push(Tick {
                x: f(LEFT + slot * i as f64 + slot / 2.0),
                text,
            });
        }
    }
    // A middle line only where it falls on a whole number.
    let grid = [0, top / 2, top]
        .into_iter()
        .filter(|v| *v != top / 2 || top.is_multiple_of(2))
        .map(|v| GridLine {
            y: f(y_of(v)),
            value: v,
        })
        .collect();
    Chart {
        id,
        title,
        width: W as u32,
        height: H as u32,
        plot_left: LEFT as u32,
        plot_right: (W - RIGHT) as u32,
        base_y: f(TOP + plot_h),
        bars,
        ticks,
        grid,
        sign_ins: buckets.iter().map(|b| b.sign_ins).sum(),
        failures: buckets.iter().map(|b| b.failures).sum(),
    }
}

fn utc(t: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t).ok()
}

fn charts(a: &Activity) -> Vec<Chart> {
    vec![
        chart(
            "chart-24h",
            "Last 24 hours",
            &a.hours,
            |i, b| {
                (i % 6 == 0 || i + 1 == a.hours.len())
                    .then(|| utc(b.start).map(|t| format!("{:02}:00", t.hour())))
                    .flatten()
            },
            "the hour",
        ),
        chart(
            "chart-7d",
            "Last 7 days",
            &a.days,
            |_, b| {
                utc(b.start).map(|t| {
                    let wd = t.weekday().to_string();
                    format!("{} {}", &wd[..3.min(wd.len())], t.day())
                })
            },
            "the day",
        ),
    ]
}

// ---------------------------------------------------------------- dashboard

#[derive(Template)]
#[template(path = "dashboard.html")]
pub(super) struct DashboardPage {
    nav: Nav,
    users_total: usize,
    users_disabled: usize,
    admins: usize,
    failed_logins: usize,
    key_version: u32,
    audit_events: u64,
    charts: Vec<Chart>,
    activity_complete: bool,
    activity_scan_max: usize,
    rows: Vec<EventRow>,
}

pub(super) async fn dashboard(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
) -> PageResult {
    if !u.user.is_admin() {
        return Ok(redirect("/admin/account"));
    }
    // The dashboard read checks `ViewConsole`; the chart comes with it.
    let o = crate::overview::dashboard(&st.svc, &u.actor(&req))?;
    let activity = crate::overview::activity(&st.svc)?;
    let page = DashboardPage {
        nav: nav(&u, "dashboard"),
        users_total: o.users.total,
        users_disabled: o.users.disabled,
        admins: o.users.admins,
        failed_logins: o.failed_sign_ins,
        key_version: o.key_version,
        audit_events: o.audit_events,
        charts: charts(&activity),
        activity_complete: activity.complete,
        activity_scan_max: crate::overview::ACTIVITY_SCAN_MAX,
        rows: EventRow::rows(&st, &o.recent)?,
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_axis_ends_on_a_round_number() {
        assert_eq!(nice_max(0), 4);
        assert_eq!(nice_max(5), 5);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(230), 400);
    }

    #[test]
    fn bars_stay_inside_the_plot() {
        let buckets: Vec<Bucket> = (0..24)
            .map(|i| Bucket {
                start: 1_800_000_000 + i * 3600,
                sign_ins: (i * 3) as u32,
                failures: 1,
            })
            .collect();
        let c = chart("c", "t", &buckets, |_, _| None, "the hour");
        assert_eq!(c.bars.len(), 48);
        assert_eq!(c.sign_ins, (0..24).map(|i| i * 3).sum::<u32>());
        for b in &c.bars {
            let (y, h): (f64, f64) = (b.y.parse().unwrap(), b.h.parse().unwrap());
            assert!(
                y >= TOP - 0.1 && y + h <= H - BOTTOM + 0.1,
                "{} {}",
                b.y,
                b.h
            );
        }
    }
}
