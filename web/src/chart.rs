//! Drawing the engine's charts on a page canvas (plotters' canvas backend).

use mnemo_plots::{LossSeries, loss_chart};
use plotters::prelude::IntoDrawingArea;
use plotters_canvas::CanvasBackend;
use web_sys::HtmlCanvasElement;

/// Draw the loss chart on `canvas`.
pub fn draw_loss(canvas: HtmlCanvasElement, series: &[LossSeries]) {
    if let Some(backend) = CanvasBackend::with_canvas_object(canvas) {
        let root = backend.into_drawing_area();
        if let Err(e) = loss_chart(&root, series) {
            web_sys::console::warn_1(&format!("chart: {e:?}").into());
        }
    }
}

/// Draw any chart function on `canvas`.
pub fn draw_on<F>(canvas: HtmlCanvasElement, draw: F)
where
    F: FnOnce(
        &plotters::drawing::DrawingArea<CanvasBackend, plotters::coord::Shift>,
    ) -> Result<
        (),
        plotters::drawing::DrawingAreaErrorKind<
            <CanvasBackend as plotters::prelude::DrawingBackend>::ErrorType,
        >,
    >,
{
    if let Some(backend) = CanvasBackend::with_canvas_object(canvas) {
        let root = backend.into_drawing_area();
        if let Err(e) = draw(&root) {
            web_sys::console::warn_1(&format!("chart: {e:?}").into());
        }
    }
}
