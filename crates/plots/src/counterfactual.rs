//! Charts of counterfactual memorisation: the histogram of `mem` and the in-vs-out
//! scatter.

use plotters::coord::Shift;
use plotters::prelude::*;

use mnemo_measures::counterfactual::CounterfactualResult;

use crate::{ChartResult, PALETTE};

/// Equal-width bins over `[lo, hi]`: `(left edge, right edge, count)`. Values outside
/// the range go to the end bins; an empty input gives no bins.
pub fn histogram(values: &[f64], bins: usize) -> Vec<(f64, f64, usize)> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (Some(lo), Some(hi)) = (
        finite.iter().copied().reduce(f64::min),
        finite.iter().copied().reduce(f64::max),
    ) else {
        return Vec::new();
    };
    let bins = bins.max(1);
    let (lo, hi) = if hi - lo < 1e-9 {
        (lo - 0.05, hi + 0.05)
    } else {
        (lo, hi)
    };
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for v in finite {
        let k = (((v - lo) / width).floor() as isize).clamp(0, bins as isize - 1) as usize;
        counts[k] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(k, n)| (lo + k as f64 * width, lo + (k + 1) as f64 * width, n))
        .collect()
}

/// Histogram of `mem` over the training texts with a defined value; texts repeated in
/// the data are counted in their own colour.
pub fn mem_histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &CounterfactualResult,
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let all: Vec<f64> = result.instances.iter().filter_map(|i| i.mem.diff).collect();
    let bins = histogram(&all, 24);
    let (lo, hi) = match (bins.first(), bins.last()) {
        (Some(f), Some(l)) => (f.0, l.1),
        _ => (0.0, 1.0),
    };
    let width = bins.first().map_or(1.0, |b| b.1 - b.0);
    let count_in = |repeated: bool| -> Vec<usize> {
        let mut c = vec![0usize; bins.len()];
        for i in &result.instances {
            if let Some(v) = i.mem.diff.filter(|_| (i.copies > 1) == repeated) {
                let k = (((v - lo) / width).floor() as isize).clamp(0, bins.len() as isize - 1);
                c[k as usize] += 1;
            }
        }
        c
    };
    let (unique, repeated) = (count_in(false), count_in(true));
    let top = unique
        .iter()
        .zip(&repeated)
        .map(|(a, b)| a + b)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Counterfactual memorisation ({} models, {})",
                result.models,
                result.metric.label()
            ),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(lo..hi, 0usize..top + 1)?;
    chart
        .configure_mesh()
        .x_desc("mem(x) = in-mean - out-mean")
        .y_desc("training texts")
        .x_label_formatter(&|v| format!("{v:.2}"))
        .draw()?;
    chart
        .draw_series(
            bins.iter()
                .zip(&unique)
                .map(|(b, &n)| Rectangle::new([(b.0, 0), (b.1, n)], PALETTE[0].mix(0.8).filled())),
        )?
        .label("seen once per epoch")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], PALETTE[0].filled()));
    if repeated.iter().any(|&n| n > 0) {
        chart
            .draw_series(
                bins.iter()
                    .zip(unique.iter().zip(&repeated))
                    .map(|(b, (&u, &r))| {
                        Rectangle::new([(b.0, u), (b.1, u + r)], PALETTE[1].filled())
                    }),
            )?
            .label("repeated in the data")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], PALETTE[1].filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    area.present()?;
    Ok(())
}

/// In-mean against out-mean of every training text, with the diagonal: texts far above
/// it are predicted much better by the models that trained on them.
pub fn in_out_scatter<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &CounterfactualResult,
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let points: Vec<(f64, f64, bool)> = result
        .instances
        .iter()
        .filter_map(|i| Some((i.mem.out_mean?, i.mem.in_mean?, i.copies > 1)))
        .collect();
    let (mut lo, mut hi) = points
        .iter()
        .flat_map(|p| [p.0, p.1])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(0.01);
    let (lo, hi) = (lo - pad, hi + pad);
    let mut chart = ChartBuilder::on(area)
        .caption("Trained on it vs not", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(lo..hi, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc(format!("out-mean {}", result.metric.label()))
        .y_desc("in-mean")
        .x_label_formatter(&|v| format!("{v:.2}"))
        .y_label_formatter(&|v| format!("{v:.2}"))
        .draw()?;
    chart.draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.mix(0.4)))?;
    chart
        .draw_series(
            points
                .iter()
                .filter(|p| !p.2)
                .map(|p| Circle::new((p.0, p.1), 3, PALETTE[0].mix(0.8).filled())),
        )?
        .label("seen once per epoch")
        .legend(|(x, y)| Circle::new((x + 5, y), 3, PALETTE[0].filled()));
    if points.iter().any(|p| p.2) {
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2)
                    .map(|p| Circle::new((p.0, p.1), 5, PALETTE[1].filled())),
            )?
            .label("repeated in the data")
            .legend(|(x, y)| Circle::new((x + 5, y), 4, PALETTE[1].filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_count_every_value_once() {
        let h = histogram(&[0.0, 0.1, 0.2, 0.3, 1.0, f64::NAN], 4);
        assert_eq!(h.len(), 4);
        assert_eq!(h.iter().map(|b| b.2).sum::<usize>(), 5, "NaN is dropped");
        assert_eq!(h[0], (0.0, 0.25, 3));
        assert_eq!(h[3].2, 1, "the maximum lands in the last bin");
        assert!(histogram(&[], 4).is_empty());
        let one = histogram(&[0.5, 0.5], 3);
        assert_eq!(one.iter().map(|b| b.2).sum::<usize>(), 2);
    }
}
