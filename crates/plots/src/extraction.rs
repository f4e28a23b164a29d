//! The extraction chart (`mnemo_measures::extraction::ExtractionResult`): how much of its
//! suffix greedy decoding reproduced, per instance, for training instances beside
//! held-out ones (the never-trained baseline), with both splits' exact and fractional
//! extraction rates in the legend.

use plotters::coord::Shift;
use plotters::prelude::*;

use mnemo_measures::extraction::{ExtractionRates, ExtractionResult, ExtractionRow};

use crate::{ChartResult, PALETTE};

/// Bins of [`fraction_histogram`]: ten of width 0.1 for partly reproduced suffixes
/// (`[0, 0.1)` ... `[0.9, 1)`), and the last for exactly reproduced ones (fraction 1).
pub const BINS: usize = 11;

/// Share of `rows` in each bin of per-instance fraction of suffix reproduced: bin `i < 10`
/// holds fractions in `[i / 10, (i + 1) / 10)`, bin 10 the exact extractions (fraction 1).
/// All zeros for no rows.
pub fn fraction_histogram(rows: &[ExtractionRow]) -> [f64; BINS] {
    let mut counts = [0usize; BINS];
    for r in rows {
        let bin = if r.exact || r.fraction >= 1.0 {
            BINS - 1
        } else if r.fraction.is_finite() && r.fraction > 0.0 {
            ((r.fraction * 10.0).floor() as usize).min(BINS - 2)
        } else {
            0
        };
        counts[bin] += 1;
    }
    let n = rows.len().max(1) as f64;
    counts.map(|c| c as f64 / n)
}

/// The legend text of one split: its name, size and both rates in percent.
pub fn rates_label(name: &str, rates: &ExtractionRates) -> String {
    format!(
        "{name} (n = {}): exact {:.1}%, fractional {:.1}%",
        rates.n,
        100.0 * rates.exact_rate,
        100.0 * rates.fractional_rate
    )
}

/// Histogram of the per-instance share of the suffix reproduced (share of instances per
/// bin), training and held-out bars side by side; the rightmost pair of bars counts the
/// exact extractions. The legend gives each split's exact and (token-weighted)
/// fractional rate; the caption the requested prefix and suffix lengths.
pub fn extraction_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &ExtractionResult,
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let train = fraction_histogram(&result.train);
    let held = fraction_histogram(&result.heldout);
    let top = train
        .iter()
        .chain(&held)
        .copied()
        .fold(0.0f64, f64::max)
        .max(0.1)
        // Headroom above the tallest bar for the two-line legend.
        * 1.35;
    let caption = format!(
        "Extraction: suffix reproduced by greedy decoding (k = {}, s = {}{})",
        result.prefix,
        result.suffix,
        if result.scaled > 0 {
            format!(", {} scaled down", result.scaled)
        } else {
            String::new()
        }
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0f64..1.1, 0.0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(12)
        .x_label_formatter(&|v| {
            if *v > 1.0 + 1e-9 {
                String::new()
            } else {
                format!("{v:.1}")
            }
        })
        .x_desc("share of the suffix reproduced (last bars, 1.0 to 1.1: exact)")
        .y_desc("share of instances")
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    let splits = [
        (rates_label("training", &result.train_rates), train, 0usize),
        (rates_label("held-out", &result.heldout_rates), held, 1usize),
    ];
    for (label, shares, side) in splits {
        let colour = PALETTE[side];
        let drawn = chart.draw_series(shares.iter().enumerate().map(|(i, &h)| {
            let x0 = i as f64 * 0.1 + 0.005 + side as f64 * 0.045;
            Rectangle::new([(x0, 0.0), (x0 + 0.045, h)], colour.mix(0.85).filled())
        }))?;
        drawn.label(label).legend(move |(x, y)| {
            Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.mix(0.85).filled())
        });
    }
    // Separate the exact bin from the partial ones.
    chart.draw_series(LineSeries::new(
        [(1.0, 0.0), (1.0, top)],
        BLACK.mix(0.4).stroke_width(1),
    ))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::did::svg_of;

    fn row(instance: u32, target: Vec<u32>, generated: Vec<u32>) -> ExtractionRow {
        ExtractionRow::score(instance, 4, target, generated)
    }

    fn result() -> ExtractionResult {
        let train = vec![
            row(0, vec![1, 2, 3, 4], vec![1, 2, 3, 4]),
            row(1, vec![1, 2, 3, 4], vec![1, 2, 3, 4]),
            row(2, vec![1, 2, 3, 4], vec![1, 2, 3, 4]),
            row(3, vec![1, 2, 3, 4], vec![1, 2, 3, 9]),
        ];
        let heldout = vec![
            row(4, vec![1, 2, 3, 4], vec![9, 9, 9, 9]),
            row(5, vec![1, 2, 3, 4], vec![1, 9, 9, 9]),
        ];
        ExtractionResult {
            prefix: 50,
            suffix: 50,
            train_rates: ExtractionRates::of(&train),
            heldout_rates: ExtractionRates::of(&heldout),
            train,
            heldout,
            scaled: 6,
            skipped: 0,
        }
    }

    #[test]
    fn histogram_puts_exact_extractions_in_the_last_bin() {
        let r = result();
        let h = fraction_histogram(&r.train);
        assert_eq!(h[10], 0.75, "3 of 4 exact");
        assert_eq!(h[7], 0.25, "3 of 4 tokens: bin [0.7, 0.8)");
        assert!((h.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let h = fraction_histogram(&r.heldout);
        assert_eq!((h[0], h[2]), (0.5, 0.5));
        assert_eq!(fraction_histogram(&[]), [0.0; BINS]);
    }

    #[test]
    fn svg_shows_both_splits_with_their_rates() {
        let r = result();
        let svg = svg_of((800, 480), |a| extraction_chart(a, &r));
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("k = 50, s = 50, 6 scaled down"), "caption");
        // Training: 3 of 4 exact, 15 of 16 tokens; held-out: none exact, 1 of 8 tokens.
        assert!(
            svg.contains("training (n = 4): exact 75.0%, fractional 93.8%"),
            "{svg}"
        );
        assert!(svg.contains("held-out (n = 2): exact 0.0%, fractional 12.5%"));
        assert!(svg.contains("<rect"), "bars are drawn");
        // An empty result still draws (rates 0, no NaN).
        let empty = ExtractionResult {
            train: vec![],
            heldout: vec![],
            train_rates: ExtractionRates::of(&[]),
            heldout_rates: ExtractionRates::of(&[]),
            scaled: 0,
            ..r
        };
        let svg = svg_of((400, 300), |a| extraction_chart(a, &empty));
        assert!(svg.contains("training (n = 0): exact 0.0%, fractional 0.0%"));
        assert!(!svg.contains("NaN"));
    }
}
