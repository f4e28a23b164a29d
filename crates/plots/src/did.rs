//! Charts of a memorisation profile (`mnemo_measures::did::DidResult`): the heat map of
//! memorisation(g, c), the persistent (event-time) curve with its band, instantaneous and
//! residual memorisation per cohort, and the naive simple difference beside the
//! difference-in-differences estimate. All values are memorisation = -ATT, in the
//! outcome's units (nats/token for surprisal); bands are the estimator's (simultaneous
//! where the estimator made them so).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use mnemo_measures::did::{Cell, DidResult};

use crate::{ChartResult, PALETTE};

/// One estimate with its band, at a position on the x axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Position (cohort, checkpoint or event time).
    pub x: f64,
    /// The estimate.
    pub value: f64,
    /// Lower end of its band.
    pub lower: f64,
    /// Upper end of its band.
    pub upper: f64,
}

/// A labelled series of estimates.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateSeries {
    /// Legend label.
    pub label: String,
    /// Points, in x order.
    pub points: Vec<Estimate>,
}

fn mem_of(cell: &Cell) -> Estimate {
    Estimate {
        x: cell.cohort as f64,
        value: cell.memorisation,
        lower: -cell.upper,
        upper: -cell.lower,
    }
}

/// Diverging colour for memorisation `v` scaled by `max_abs`: orange for memorised
/// (positive), blue for the opposite, white at 0. `muted` blends towards light grey.
pub fn diverging(v: f64, max_abs: f64, muted: bool) -> RGBColor {
    let t = if max_abs > 0.0 {
        (v / max_abs).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (r, g, b) = if t >= 0.0 {
        (
            255.0 - t * (255.0 - 213.0),
            255.0 - t * (255.0 - 94.0),
            255.0 - t * 255.0,
        )
    } else {
        let t = -t;
        (
            255.0 - t * 255.0,
            255.0 - t * (255.0 - 114.0),
            255.0 - t * (255.0 - 178.0),
        )
    };
    let (r, g, b) = if muted {
        (
            0.35 * r + 0.65 * 236.0,
            0.35 * g + 0.65 * 236.0,
            0.35 * b + 0.65 * 236.0,
        )
    } else {
        (r, g, b)
    };
    RGBColor(r as u8, g as u8, b as u8)
}

/// Where a heat map's plotting area landed, in backend pixels (for pointer look-ups).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeatmapLayout {
    /// Horizontal pixel range of the plotting area.
    pub x: std::ops::Range<i32>,
    /// Vertical pixel range of the plotting area.
    pub y: std::ops::Range<i32>,
}

/// Largest |memorisation| over the cells (the colour scale's end).
pub fn heatmap_scale(result: &DidResult) -> f64 {
    result
        .cells
        .iter()
        .map(|c| c.memorisation.abs())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        .max(1e-12)
}

/// The memorisation profile: cohorts (rows) by checkpoints (columns), each cell coloured
/// by memorisation(g, c). Non-significant cells are muted; pre-treatment (placebo) cells
/// `c < g` carry a small dot. The diagonal `c = g` (instantaneous memorisation) is
/// outlined.
pub fn profile_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &DidResult,
) -> ChartResult<DB> {
    profile_heatmap_layout(area, result).map(|_| ())
}

/// [`profile_heatmap`], returning where the plotting area landed so that a page can map
/// the pointer to a cell with [`heatmap_cell_at`].
pub fn profile_heatmap_layout<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &DidResult,
) -> Result<HeatmapLayout, DrawingAreaErrorKind<DB::ErrorType>> {
    area.fill(&WHITE)?;
    let (main, legend) = area.split_horizontally(area.dim_in_pixel().0.saturating_sub(70));
    let n_ck = result.checkpoints.max(2);
    let cohorts: Vec<usize> = result.cohorts.iter().map(|c| c.cohort).collect();
    let (g_lo, g_hi) = (
        cohorts.first().copied().unwrap_or(1),
        cohorts.last().copied().unwrap_or(1),
    );
    let mut chart = ChartBuilder::on(&main)
        .caption("Memorisation profile", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(
            0.5f64..(n_ck as f64 - 0.5),
            (g_lo as f64 - 0.5)..(g_hi as f64 + 0.5),
        )?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("checkpoint c")
        .y_desc("cohort g (first trained)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let scale = heatmap_scale(result);
    chart.draw_series(result.cells.iter().map(|c| {
        let colour = diverging(c.memorisation, scale, !c.significant);
        let (x, y) = (c.checkpoint as f64, c.cohort as f64);
        Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], colour.filled())
    }))?;
    // Placebo cells: a grey dot.
    chart.draw_series(
        result
            .cells
            .iter()
            .filter(|c| c.checkpoint < c.cohort)
            .map(|c| {
                Circle::new(
                    (c.checkpoint as f64, c.cohort as f64),
                    2,
                    RGBColor(120, 120, 120).filled(),
                )
            }),
    )?;
    // The diagonal c = g (instantaneous memorisation) outlined.
    chart.draw_series(result.instantaneous.iter().map(|c| {
        let (x, y) = (c.checkpoint as f64, c.cohort as f64);
        Rectangle::new(
            [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
            BLACK.mix(0.6).stroke_width(1),
        )
    }))?;
    // Colour bar, labelled by hand: the bar is too narrow for a mesh's label area.
    let (_, h) = legend.dim_in_pixel();
    let (top, bottom) = (40i32, h as i32 - 46);
    let (left, right) = (6i32, 20i32);
    let y_of =
        |v: f64| top + ((scale - v) / (2.0 * scale) * f64::from(bottom - top)).round() as i32;
    let steps = 64;
    for i in 0..steps {
        let a = -scale + 2.0 * scale * i as f64 / steps as f64;
        let b = a + 2.0 * scale / steps as f64;
        legend.draw(&Rectangle::new(
            [(left, y_of(b)), (right, y_of(a))],
            diverging((a + b) / 2.0, scale, false).filled(),
        ))?;
    }
    legend.draw(&Rectangle::new(
        [(left, top), (right, bottom)],
        BLACK.mix(0.5),
    ))?;
    let label = ("sans-serif", 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    // Enough decimals that the labels differ, whatever the scale.
    let decimals = (2.0 - scale.log10().floor()).clamp(2.0, 6.0) as usize;
    for v in [scale, scale / 2.0, 0.0, -scale / 2.0, -scale] {
        let y = y_of(v);
        legend.draw(&PathElement::new([(right, y), (right + 3, y)], BLACK))?;
        legend.draw(&Text::new(
            format!("{v:.decimals$}"),
            (right + 5, y),
            label.clone(),
        ))?;
    }
    area.present()?;
    let (x, y) = chart.plotting_area().get_pixel_range();
    Ok(HeatmapLayout { x, y })
}

/// The cell of `result` under the pointer at pixel `(px, py)` of a heat map drawn by
/// [`profile_heatmap_layout`] with `layout`.
pub fn heatmap_cell_at<'a>(
    result: &'a DidResult,
    layout: &HeatmapLayout,
    px: f64,
    py: f64,
) -> Option<&'a Cell> {
    let (l, r) = (layout.x.start as f64, layout.x.end as f64);
    let (t, b) = (layout.y.start as f64, layout.y.end as f64);
    if px < l || px > r || py < t || py > b || r <= l || b <= t {
        return None;
    }
    let n_ck = result.checkpoints.max(2) as f64;
    let first = result.cohorts.first()?.cohort as f64;
    let last = result.cohorts.last()?.cohort as f64;
    // x spans checkpoints 0.5 .. C - 0.5; y spans cohorts first - 0.5 .. last + 0.5 (top).
    let c = 0.5 + (px - l) / (r - l) * (n_ck - 1.0);
    let g = last + 0.5 - (py - t) / (b - t) * (last - first + 1.0);
    let (c, g) = (c.round() as usize, g.round() as usize);
    result
        .cells
        .iter()
        .find(|cell| cell.cohort == g && cell.checkpoint == c)
}

/// Estimates with bands against x: each series is a line (or points) with a shaded band.
pub fn estimates_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    series: &[EstimateSeries],
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (f64::MAX, f64::MIN, 0.0f64, 0.0f64);
    for p in all {
        if !(p.lower.is_finite() && p.upper.is_finite()) {
            continue;
        }
        x_lo = x_lo.min(p.x);
        x_hi = x_hi.max(p.x);
        y_lo = y_lo.min(p.lower).min(p.value);
        y_hi = y_hi.max(p.upper).max(p.value);
    }
    if x_lo > x_hi {
        (x_lo, x_hi) = (0.0, 1.0);
    }
    let pad = ((y_hi - y_lo) * 0.08).max(1e-6);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d((x_lo - 0.5)..(x_hi + 0.5), (y_lo - pad)..(y_hi + pad))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("memorisation (-ATT)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(x_lo - 0.5, 0.0), (x_hi + 0.5, 0.0)],
        BLACK.mix(0.5).stroke_width(1),
    ))?;
    let n = series.len().max(1) as f64;
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        // Offset overlapping series slightly so their error bars stay readable.
        let dx = if series.len() > 1 {
            (i as f64 - (n - 1.0) / 2.0) * 0.12
        } else {
            0.0
        };
        chart.draw_series(s.points.iter().map(|p| {
            PathElement::new(
                vec![(p.x + dx, p.lower), (p.x + dx, p.upper)],
                colour.mix(0.6).stroke_width(2),
            )
        }))?;
        chart.draw_series(LineSeries::new(
            s.points.iter().map(|p| (p.x + dx, p.value)),
            colour.stroke_width(2),
        ))?;
        let drawn = chart.draw_series(
            s.points
                .iter()
                .map(|p| Circle::new((p.x + dx, p.value), 3, colour.filled())),
        )?;
        if !s.label.is_empty() {
            drawn
                .label(s.label.clone())
                .legend(move |(x, y)| Circle::new((x + 6, y), 3, colour.filled()));
        }
    }
    if series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
    }
    area.present()?;
    Ok(())
}

/// Persistent memorisation: the event-time aggregates (e = c - g; negative = placebo).
pub fn event_series(result: &DidResult, label: &str) -> EstimateSeries {
    EstimateSeries {
        label: label.to_string(),
        points: result
            .event
            .iter()
            .map(|a| Estimate {
                x: a.key as f64,
                value: a.memorisation,
                lower: -a.upper,
                upper: -a.lower,
            })
            .collect(),
    }
}

/// The persistent-memorisation chart; several results (e.g. model sizes) overlay.
pub fn persistent_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    results: &[(String, &DidResult)],
) -> ChartResult<DB> {
    let series: Vec<EstimateSeries> = results.iter().map(|(l, r)| event_series(r, l)).collect();
    estimates_chart(
        area,
        "Persistent memorisation by event time",
        "event time e = c - g (checkpoints since first trained)",
        &series,
    )
}

/// Instantaneous memorisation (c = g) per cohort.
pub fn instantaneous_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &DidResult,
) -> ChartResult<DB> {
    let s = EstimateSeries {
        label: String::new(),
        points: result.instantaneous.iter().map(mem_of).collect(),
    };
    estimates_chart(area, "Instantaneous memorisation (c = g)", "cohort g", &[s])
}

/// Residual memorisation (last checkpoint) per cohort.
pub fn residual_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &DidResult,
) -> ChartResult<DB> {
    let s = EstimateSeries {
        label: String::new(),
        points: result.residual.iter().map(mem_of).collect(),
    };
    estimates_chart(
        area,
        "Residual memorisation (final checkpoint)",
        "cohort g",
        &[s],
    )
}

/// The naive simple difference (treated minus never-trained at c = g, no pre-period
/// correction) beside the difference-in-differences estimate, per cohort.
pub fn simple_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &DidResult,
) -> ChartResult<DB> {
    let did = EstimateSeries {
        label: "difference-in-differences".into(),
        points: result.instantaneous.iter().map(mem_of).collect(),
    };
    let simple = EstimateSeries {
        label: "simple difference".into(),
        points: result
            .simple
            .iter()
            .filter(|s| s.checkpoint == s.cohort)
            .map(|s| Estimate {
                x: s.cohort as f64,
                value: s.memorisation,
                lower: -s.upper,
                upper: -s.lower,
            })
            .collect(),
    };
    estimates_chart(
        area,
        "Instantaneous: DiD vs simple difference",
        "cohort g",
        &[did, simple],
    )
}

/// Render any chart function to an SVG string.
pub fn svg_of<F>(size: (u32, u32), draw: F) -> String
where
    F: for<'a, 'b> FnOnce(
        &'b DrawingArea<SVGBackend<'a>, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<std::io::Error>>,
{
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        let _ = draw(&root);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mnemo_measures::did::{DidOptions, Panel, estimate};

    /// A small panel: 3 cohorts of 4 and 6 never-trained instances, 4 checkpoints, with
    /// an effect after training.
    fn result() -> DidResult {
        let mut rows = Vec::new();
        let mut x: u64 = 7;
        let mut noise = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as f64 / (1u64 << 31) as f64 - 0.5
        };
        let cohorts: Vec<Option<usize>> = (0..18)
            .map(|i| if i < 12 { Some(1 + i / 4) } else { None })
            .collect();
        for (i, g) in cohorts.iter().enumerate() {
            for c in 0..4 {
                let treated = g.is_some_and(|g| c >= g);
                let y = 3.0 - 0.1 * c as f64 - if treated { 0.5 } else { 0.0 } + 0.05 * noise();
                rows.push((format!("i{i}"), *g, c, y));
            }
        }
        let panel = Panel::from_rows(rows).unwrap();
        estimate(
            &panel,
            &DidOptions {
                draws: 200,
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn pointer_lookup_inverts_the_heatmap_layout() {
        let r = result();
        let mut out = String::new();
        let layout = {
            let root = SVGBackend::with_string(&mut out, (760, 420)).into_drawing_area();
            profile_heatmap_layout(&root, &r).unwrap()
        };
        assert!(layout.x.end - layout.x.start > 300 && layout.y.end - layout.y.start > 200);
        // Centre of the cell (cohort 2, checkpoint 3): checkpoints 0.5..3.5 left to right,
        // cohorts 3.5..0.5 top to bottom.
        let (l, w) = (
            layout.x.start as f64,
            (layout.x.end - layout.x.start) as f64,
        );
        let (t, h) = (
            layout.y.start as f64,
            (layout.y.end - layout.y.start) as f64,
        );
        let px = l + (3.0 - 0.5) / 3.0 * w;
        let py = t + (3.5 - 2.0) / 3.0 * h;
        let cell = heatmap_cell_at(&r, &layout, px, py).unwrap();
        assert_eq!((cell.cohort, cell.checkpoint), (2, 3));
        assert!(heatmap_cell_at(&r, &layout, l - 5.0, py).is_none());
        assert!(out.contains("Memorisation profile"));
    }

    #[test]
    fn charts_show_memorisation_as_minus_att_with_flipped_bands() {
        let r = result();
        let s = event_series(&r, "x");
        let e0 = r.event.iter().find(|a| a.key == 0).unwrap();
        let p = s.points.iter().find(|p| p.x == 0.0).unwrap();
        assert!(
            (p.value - 0.5).abs() < 0.05,
            "the effect is 0.5 memorised: {}",
            p.value
        );
        assert_eq!(p.value, -e0.att);
        assert_eq!((p.lower, p.upper), (-e0.upper, -e0.lower));
        assert!(p.lower <= p.value && p.value <= p.upper);
        for svg in [
            svg_of((600, 300), |a| {
                persistent_chart(a, &[("a".into(), &r), ("b".into(), &r)])
            }),
            svg_of((600, 300), |a| instantaneous_chart(a, &r)),
            svg_of((600, 300), |a| residual_chart(a, &r)),
            svg_of((600, 300), |a| simple_chart(a, &r)),
        ] {
            assert!(svg.starts_with("<svg") && svg.contains("circle"));
        }
    }

    #[test]
    fn diverging_colours_run_orange_white_blue_and_mute() {
        assert_eq!(diverging(0.0, 1.0, false), RGBColor(255, 255, 255));
        assert_eq!(diverging(1.0, 1.0, false), RGBColor(213, 94, 0));
        assert_eq!(diverging(-1.0, 1.0, false), RGBColor(0, 114, 178));
        let m = diverging(1.0, 1.0, true);
        assert!(m.0 > 213 && m.2 > 100, "muted is paler");
    }
}
