//! Line charts of query results, as PNG or SVG (plotters): one line per series broken at
//! gaps, a time axis with round UTC ticks, a compact value axis, a legend of label sets
//! under the plot, and the query as the title.
//!
//! PNG text is rendered with the DejaVu Sans font compiled into the program
//! (`assets/fonts/`), so charts need no fontconfig or system fonts; SVG is laid out with
//! the same font's metrics, names the `sans-serif` family and leaves rendering to the viewer.

use crate::timeparse::civil;
use chronolith::query::SeriesResult;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

const WIDTH: u32 = 1200;
const PLOT_HEIGHT: u32 = 560;
const LEGEND_ROW_PX: u32 = 22;
const LEGEND_COLUMNS: usize = 2;
const LEGEND_CHARS_MAX: usize = 70;
const TITLE_CHARS_MAX: usize = 110;
const FONT: &str = "sans-serif";

/// Tableau 10: distinct hues that stay readable on white and for most colour-blind eyes.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];
const GRID: RGBColor = RGBColor(0xe4, 0xe4, 0xe4);
const TEXT: RGBColor = RGBColor(0x33, 0x33, 0x33);

/// What to draw.
#[derive(Debug)]
pub struct Chart<'a> {
    pub title: &'a str,
    pub series: &'a [SeriesResult],
    pub start_ms: i64,
    pub end_ms: i64,
    /// Series beyond this many (in label order) are left out.
    pub series_max: usize,
}

/// The file kind, from the extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Png,
    Svg,
}

impl Kind {
    pub fn of(path: &Path) -> Result<Self, String> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(Kind::Png),
            Some("svg") => Ok(Kind::Svg),
            _ => Err(format!("cannot tell the chart format of {}: name it .png or .svg", path.display())),
        }
    }
}

/// Draws the chart into `path`; returns how many series were drawn.
pub fn write(path: &Path, chart: &Chart<'_>) -> Result<usize, Box<dyn std::error::Error>> {
    let shown = &chart.series[..chart.series.len().min(chart.series_max)];
    let legend_rows = shown.len().div_ceil(LEGEND_COLUMNS) as u32;
    let height = PLOT_HEIGHT + legend_rows * LEGEND_ROW_PX + 16;
    // Both backends measure text with the registered font (ab_glyph); SVG names it too.
    register_font()?;
    match Kind::of(path)? {
        Kind::Png => {
            let root = BitMapBackend::new(path, (WIDTH, height)).into_drawing_area();
            draw(&root, chart, shown)?;
            root.present().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Kind::Svg => {
            let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
            draw(&root, chart, shown)?;
            root.present().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(shown.len())
}

fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let bytes: &'static [u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
        plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the bundled font does not load".into())
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart<'_>,
    shown: &[SeriesResult],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (plot_area, legend_area) = root.split_vertically(PLOT_HEIGHT);
    let (lo, hi) = value_range(shown);
    let x = TimeAxis { start: chart.start_ms, end: chart.end_ms.max(chart.start_ms + 1) };
    let mut ctx = ChartBuilder::on(&plot_area)
        .caption(truncate(chart.title, TITLE_CHARS_MAX), (FONT, 20).into_font().color(&TEXT))
        .margin(16)
        .margin_right(32)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, lo..hi)?;
    let x_desc = format!("UTC, {} to {}", day_minute(chart.start_ms), day_minute(chart.end_ms));
    ctx.configure_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(RGBColor(0x99, 0x99, 0x99))
        .x_labels(10)
        .y_labels(8)
        .x_label_formatter(&|t| tick_label(*t))
        .y_label_formatter(&|v| compact(*v))
        .label_style((FONT, 14).into_font().color(&TEXT))
        .axis_desc_style((FONT, 14).into_font().color(&TEXT))
        .x_desc(x_desc)
        .draw()?;
    for (i, s) in shown.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        for run in runs(&s.points, chart.start_ms, chart.end_ms) {
            if run.len() == 1 {
                ctx.draw_series(run.iter().map(|&p| Circle::new(p, 2, color.filled())))?;
            } else {
                ctx.draw_series(LineSeries::new(run, color.stroke_width(2)))?;
            }
        }
    }
    draw_legend(&legend_area, shown)?;
    Ok(())
}

/// Label sets under the plot, in columns, each after a swatch of its line's colour.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    shown: &[SeriesResult],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let column_px = (WIDTH as i32 - 2 * 88) / LEGEND_COLUMNS as i32;
    for (i, s) in shown.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let x = 88 + (i % LEGEND_COLUMNS) as i32 * column_px;
        let y = 8 + (i / LEGEND_COLUMNS) as i32 * LEGEND_ROW_PX as i32 + LEGEND_ROW_PX as i32 / 2;
        area.draw(&PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3)))?;
        let label = truncate(&s.labels.to_string(), LEGEND_CHARS_MAX);
        let style = (FONT, 14).into_font().color(&TEXT).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(label, (x + 30, y), style))?;
    }
    Ok(())
}

/// Runs of consecutive finite points inside the range; a missing step or a NaN breaks
/// the line rather than bridging the gap.
fn runs(points: &[(i64, f64)], start: i64, end: i64) -> Vec<Vec<(i64, f64)>> {
    let step = points.windows(2).map(|w| w[1].0 - w[0].0).min().unwrap_or(1).max(1);
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut prev_t: Option<i64> = None;
    for &(t, v) in points.iter().filter(|(t, _)| (start..=end).contains(t)) {
        if !v.is_finite() {
            prev_t = None;
            continue;
        }
        match (prev_t, out.last_mut()) {
            (Some(p), Some(run)) if t - p <= step => run.push((t, v)),
            _ => out.push(vec![(t, v)]),
        }
        prev_t = Some(t);
    }
    out
}

/// The value axis: the finite values' span plus 5 % each side, starting at 0 when the
/// values are all non-negative and the lowest is within a quarter of the span from 0.
fn value_range(series: &[SeriesResult]) -> (f64, f64) {
    let finite = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| v.is_finite());
    let (min, max) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if min > max {
        return (0.0, 1.0);
    }
    if min == max {
        let pad = if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
        return (min - pad, max + pad);
    }
    let pad = (max - min) * 0.05;
    let lo = if min >= 0.0 && min < (max - min) * 0.25 { 0.0 } else { min - pad };
    (lo, max + pad)
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max_chars - 1).collect();
    t.push('…');
    t
}

/// Axis numbers: up to 4 significant digits, SI suffixes from ten thousand on.
fn compact(v: f64) -> String {
    let a = v.abs();
    for (from, div, suffix) in [(1e12, 1e12, "T"), (1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")] {
        if a >= from {
            return format!("{}{suffix}", trim(format!("{:.2}", v / div)));
        }
    }
    if a == 0.0 {
        return "0".into();
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    trim(format!("{v:.decimals$}"))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A tick: the date at midnight, else the time of day (with seconds when not whole minutes).
fn tick_label(t: i64) -> String {
    let (_, mo, d, h, mi, s, _) = civil(t);
    if t.rem_euclid(86_400_000) == 0 {
        format!("{} {d}", MONTHS[(mo - 1).clamp(0, 11) as usize])
    } else if s == 0 {
        format!("{h:02}:{mi:02}")
    } else {
        format!("{h:02}:{mi:02}:{s:02}")
    }
}

fn day_minute(t: i64) -> String {
    let (y, mo, d, h, mi, _, _) = civil(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}")
}

/// A time axis in Unix ms whose ticks fall on round UTC times (whole minutes, hours,
/// days) rather than plotters' decimal steps.
#[derive(Clone, Debug)]
struct TimeAxis {
    start: i64,
    end: i64,
}

const TICKS_MS: [i64; 22] = [
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000,
    86_400_000,
    172_800_000,
    604_800_000,
    2_592_000_000,
    31_536_000_000,
];

impl Ranged for TimeAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = i64;

    fn map(&self, value: &i64, limit: (i32, i32)) -> i32 {
        let span = (self.end - self.start).max(1) as f64;
        let f = (*value - self.start) as f64 / span;
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<i64> {
        let max = hint.max_num_points().max(1) as i64;
        let span = self.end - self.start;
        let Some(tick) = TICKS_MS.iter().copied().find(|t| span / t < max) else { return Vec::new() };
        let first = (self.start + tick - 1).div_euclid(tick) * tick;
        (0..max).map(|i| first + i * tick).take_while(|t| *t <= self.end).collect()
    }

    fn range(&self) -> Range<i64> {
        self.start..self.end
    }
}

impl ValueFormatter<i64> for TimeAxis {
    fn format(value: &i64) -> String {
        tick_label(*value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_times() {
        let axis = TimeAxis { start: 1_704_150_000_000, end: 1_704_153_600_000 }; // 23:00 .. 00:00
        let ticks = axis.key_points(10usize);
        assert!(ticks.iter().all(|t| t % 600_000 == 0), "{ticks:?}");
        assert!(ticks.len() <= 10 && ticks.len() >= 4);
        assert_eq!(tick_label(1_704_153_600_000), "Jan 2");
        assert_eq!(tick_label(1_704_150_000_000), "23:00");
    }

    #[test]
    fn gaps_break_lines() {
        let pts = [(0, 1.0), (10, 2.0), (30, 3.0), (40, f64::NAN), (50, 5.0), (60, 6.0)];
        assert_eq!(runs(&pts, 0, 100), vec![vec![(0, 1.0), (10, 2.0)], vec![(30, 3.0)], vec![(50, 5.0), (60, 6.0)]]);
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(compact(12_345.0), "12.35k");
        assert_eq!(compact(2_500_000.0), "2.5M");
        assert_eq!(compact(43.27), "43.27");
        assert_eq!(compact(0.125), "0.125");
        assert_eq!(compact(0.0), "0");
    }
}
