//! The charts of a report, drawn with plotters as PNG and SVG: loss and accuracy curves,
//! confusion heat-maps and decision boundaries. Text is drawn with a TrueType font found at
//! run time (DejaVu Sans from Debian's fonts-dejavu-core, Liberation, Arial…, or the file
//! named by ACCRETE_FONT); without one the charts are drawn without text.

use crate::Failure;
use accrete::report::{argmax_rows, Curves, Evaluation, Grid};
use accrete::Error;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod continual;
pub use continual::{draw_task_curves, draw_task_matrix};

pub fn draw_failure(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::Accrete(Error::Write {
        path: path.display().to_string(),
        detail: format!("could not draw the chart: {e}"),
    })
}

/// Draws one chart twice, `<name>.png` and `<name>.svg` in `out`: `$a` is the drawing
/// area (of either backend) in `$body`.
macro_rules! save {
    ($out:expr, $name:expr, $size:expr, |$a:ident| $body:expr) => {{
        let _ = $crate::charts::font_available();
        let png = $out.join(format!("{}.png", $name));
        let svg = $out.join(format!("{}.svg", $name));
        {
            let area = BitMapBackend::new(&png, $size).into_drawing_area();
            let $a = &area;
            $body.map_err(|e| $crate::charts::draw_failure(&png, e))?;
            area.present()
                .map_err(|e| $crate::charts::draw_failure(&png, e))?;
        }
        {
            let area = SVGBackend::new(&svg, $size).into_drawing_area();
            let $a = &area;
            $body.map_err(|e| $crate::charts::draw_failure(&svg, e))?;
            area.present()
                .map_err(|e| $crate::charts::draw_failure(&svg, e))?;
        }
    }};
}

pub(crate) use save;

/// Registers a TrueType font for chart text; false when none is found.
pub fn font_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let wanted = std::env::var("ACCRETE_FONT").ok();
        if wanted.as_deref() == Some("none") {
            return false;
        }
        let candidates = wanted.into_iter().map(PathBuf::from).chain(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
                "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
                "/System/Library/Fonts/Supplemental/Arial.ttf",
                "/Library/Fonts/Arial.ttf",
                "C:\\Windows\\Fonts\\arial.ttf",
            ]
            .map(PathBuf::from),
        );
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

type DrawResult = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Loss,
    Accuracy,
}

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VAL: RGBColor = RGBColor(214, 39, 40);
const BOUNDARY: RGBColor = RGBColor(120, 120, 120);

/// Ten distinguishable colours (matplotlib's tab10), repeated beyond ten classes.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn class_color(c: usize) -> RGBColor {
    PALETTE[c % PALETTE.len()]
}

pub fn draw_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &Curves,
    m: Metric,
) -> DrawResult {
    area.fill(&WHITE).map_err(err)?;
    let text = font_available();
    let (train, val): (Vec<f64>, Vec<Option<f64>>) = match m {
        Metric::Loss => (c.train_loss.clone(), c.val_loss.clone()),
        Metric::Accuracy => (
            c.train_accuracy.iter().map(|v| 100.0 * v).collect(),
            c.val_accuracy
                .iter()
                .map(|v| v.map(|v| 100.0 * v))
                .collect(),
        ),
    };
    let finite = train
        .iter()
        .copied()
        .chain(val.iter().flatten().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let (y0, y1) = match m {
        Metric::Loss => ((lo - pad).max(0.0), hi + pad),
        Metric::Accuracy => ((lo - pad).max(0.0), (hi + pad).min(100.0)),
    };
    let x1 = c.epoch.last().copied().unwrap_or(1.0).max(1.0);
    let x0 = if c.epoch.len() > 1 { c.epoch[0] } else { 0.0 };
    let (title, y_name) = match m {
        Metric::Loss => ("Loss per epoch", "cross-entropy loss"),
        Metric::Accuracy => ("Accuracy per epoch", "accuracy (%)"),
    };
    let mut builder = ChartBuilder::on(area);
    builder.margin(16);
    if text {
        builder
            .caption(title, ("sans-serif", 24))
            .x_label_area_size(44)
            .y_label_area_size(64);
    }
    let mut chart = builder
        .build_cartesian_2d(x0 - 0.25..x1 + 0.25, y0..y1)
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(RGBColor(235, 235, 235));
    if text {
        mesh.x_desc("epoch (dashed: a new chunk starts)")
            .y_desc(y_name)
            .x_labels(c.epoch.len().clamp(2, 12))
            .x_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-9 {
                    format!("{}", v.round() as i64)
                } else {
                    String::new()
                }
            });
    }
    mesh.draw().map_err(err)?;
    for &b in &c.chunk_boundaries {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(b, y0), (b, y1)],
                6,
                4,
                BOUNDARY.stroke_width(1),
            ))
            .map_err(err)?;
    }
    let pts: Vec<(f64, f64)> = c
        .epoch
        .iter()
        .zip(&train)
        .filter(|(_, v)| v.is_finite())
        .map(|(&x, &y)| (x, y))
        .collect();
    let s = chart
        .draw_series(LineSeries::new(pts.clone(), TRAIN.stroke_width(2)))
        .map_err(err)?;
    if text {
        s.label("training (mean over the epoch)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], TRAIN.stroke_width(2)));
    }
    chart
        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, TRAIN.filled())))
        .map_err(err)?;
    let vpts: Vec<(f64, f64)> = c
        .epoch
        .iter()
        .zip(&val)
        .filter_map(|(&x, v)| v.filter(|v| v.is_finite()).map(|v| (x, v)))
        .collect();
    if !vpts.is_empty() {
        let s = chart
            .draw_series(LineSeries::new(vpts.clone(), VAL.stroke_width(2)))
            .map_err(err)?;
        if text {
            s.label("validation (after the epoch)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], VAL.stroke_width(2)));
        }
        chart
            .draw_series(vpts.iter().map(|&p| Circle::new(p, 3, VAL.filled())))
            .map_err(err)?;
    }
    if text {
        chart
            .configure_series_labels()
            .position(match m {
                Metric::Loss => SeriesLabelPosition::UpperRight,
                Metric::Accuracy => SeriesLabelPosition::LowerRight,
            })
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// White → dark blue.
fn heat(v: f64) -> RGBColor {
    let v = v.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * v).round() as u8;
    RGBColor(lerp(247.0, 8.0), lerp(251.0, 48.0), lerp(255.0, 107.0))
}

pub fn draw_confusion<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    e: &Evaluation,
    names: &[String],
    normalized: bool,
    data_name: &str,
) -> DrawResult {
    area.fill(&WHITE).map_err(err)?;
    let text = font_available();
    let cm = &e.confusion;
    let k = cm.classes();
    let values: Vec<f64> = if normalized {
        cm.row_normalized()
    } else {
        cm.counts().iter().map(|&c| c as f64).collect()
    };
    let max = values.iter().copied().fold(0.0, f64::max).max(1e-12);
    let title = if normalized {
        format!("Confusion matrix, row-normalised ({data_name} data)")
    } else {
        format!(
            "Confusion matrix, counts ({data_name} data, {} samples)",
            e.samples
        )
    };
    let mut builder = ChartBuilder::on(area);
    builder.margin(16);
    if text {
        builder
            .caption(title, ("sans-serif", 22))
            .x_label_area_size(48)
            .y_label_area_size(150);
    }
    let mut chart = builder
        .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
        .map_err(err)?;
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| i.to_string());
    let label_x = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < k => i.to_string(),
        _ => String::new(),
    };
    let label_y = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < k => {
            let (c, n) = (k - 1 - i, name(k - 1 - i));
            if n == c.to_string() {
                n
            } else {
                format!("{n} ({c})")
            }
        }
        _ => String::new(),
    };
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh();
    if text {
        mesh.x_desc("predicted class")
            .y_desc("true class")
            .x_labels(k)
            .y_labels(k)
            .x_label_formatter(&label_x)
            .y_label_formatter(&label_y)
            .label_style(("sans-serif", 14));
    }
    mesh.draw().map_err(err)?;
    let cell = |t: usize, p: usize| {
        let y = k - 1 - t;
        [
            (SegmentValue::Exact(p), SegmentValue::Exact(y)),
            (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
        ]
    };
    chart
        .draw_series(
            (0..k)
                .flat_map(|t| (0..k).map(move |p| (t, p)))
                .map(|(t, p)| {
                    let v = values[t * k + p] / max;
                    Rectangle::new(cell(t, p), heat(v).filled())
                }),
        )
        .map_err(err)?;
    chart
        .draw_series(
            (0..k)
                .flat_map(|t| (0..k).map(move |p| (t, p)))
                .map(|(t, p)| Rectangle::new(cell(t, p), RGBColor(200, 200, 200).stroke_width(1))),
        )
        .map_err(err)?;
    if text && k <= 30 {
        let size = if k <= 12 { 15 } else { 11 };
        chart
            .draw_series(
                (0..k)
                    .flat_map(|t| (0..k).map(move |p| (t, p)))
                    .map(|(t, p)| {
                        let v = values[t * k + p];
                        let s = if normalized {
                            format!("{:.0}%", 100.0 * v)
                        } else {
                            format!("{v:.0}")
                        };
                        let color = if v / max > 0.5 { WHITE } else { BLACK };
                        Text::new(
                            s,
                            (SegmentValue::CenterOf(p), SegmentValue::CenterOf(k - 1 - t)),
                            ("sans-serif", size)
                                .into_font()
                                .color(&color)
                                .pos(Pos::new(HPos::Center, VPos::Center)),
                        )
                    }),
            )
            .map_err(err)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn draw_boundary<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    axis_note: &str,
    grid: &Grid,
    probs: &[f32],
    classes: usize,
    features: &[f32],
    labels: &[u32],
    names: &[String],
) -> DrawResult {
    area.fill(&WHITE).map_err(err)?;
    let text = font_available();
    let mut builder = ChartBuilder::on(area);
    builder.margin(16);
    if text {
        builder
            .caption("Decision regions and data", ("sans-serif", 22))
            .x_label_area_size(40)
            .y_label_area_size(56);
    }
    let (x0, x1) = (grid.x.0 as f64, grid.x.1 as f64);
    let (y0, y1) = (grid.y.0 as f64, grid.y.1 as f64);
    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh();
    if text {
        mesh.x_desc(format!("feature 0{axis_note}"))
            .y_desc(format!("feature 1{axis_note}"));
    }
    mesh.draw().map_err(err)?;
    let predicted = argmax_rows(probs, classes);
    let (dx, dy) = (
        (x1 - x0) / (grid.nx - 1) as f64,
        (y1 - y0) / (grid.ny - 1) as f64,
    );
    chart
        .draw_series(
            (0..grid.ny)
                .flat_map(|j| (0..grid.nx).map(move |i| (i, j)))
                .map(|(i, j)| {
                    let n = j * grid.nx + i;
                    let c = predicted[n];
                    let confidence = probs[n * classes + c] as f64;
                    let (x, y) = grid.point(i, j);
                    let (x, y) = (x as f64, y as f64);
                    let base = class_color(c);
                    // Pale where the model is unsure, stronger where it is confident.
                    let mix = 0.15 + 0.35 * confidence;
                    let tint = |v: u8| (255.0 - (255.0 - v as f64) * mix).round() as u8;
                    Rectangle::new(
                        [(x - dx / 2.0, y - dy / 2.0), (x + dx / 2.0, y + dy / 2.0)],
                        RGBColor(tint(base.0), tint(base.1), tint(base.2)).filled(),
                    )
                }),
        )
        .map_err(err)?;
    let shown = labels.len().min(3000);
    for c in 0..classes {
        let pts: Vec<(f64, f64)> = (0..shown)
            .filter(|&i| labels[i] as usize == c)
            .map(|i| (features[2 * i] as f64, features[2 * i + 1] as f64))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let color = class_color(c);
        let s = chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
        if text {
            let label = names.get(c).cloned().unwrap_or_else(|| c.to_string());
            s.label(label)
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}
