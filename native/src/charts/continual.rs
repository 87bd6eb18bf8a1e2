//! Continual-learning charts from the history's `chunk_end` rows: the accuracy matrix as a
//! heat map (row: after chunk i, column: task j) and the accuracy of each task over the
//! chunks, with the average over the tasks seen and the accuracy on all the data.

use super::{class_color, err, font_available, heat, DrawResult, BOUNDARY};
use accrete::train::ChunkEnd;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The accuracy matrix R[i][j] (absolute scale: white 0 %, dark blue 100 %); the cells
/// above the diagonal (tasks not seen yet) stay empty.
pub fn draw_task_matrix<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    ends: &[ChunkEnd],
    data_name: &str,
) -> DrawResult {
    area.fill(&WHITE).map_err(err)?;
    let text = font_available();
    let k = ends.len().max(1);
    let mut builder = ChartBuilder::on(area);
    builder.margin(16);
    if text {
        builder
            .caption(
                format!("Accuracy matrix ({data_name} data, per task)"),
                ("sans-serif", 22),
            )
            .x_label_area_size(48)
            .y_label_area_size(110);
    }
    let mut chart = builder
        .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
        .map_err(err)?;
    let label_x = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < k => format!("task {}", i + 1),
        _ => String::new(),
    };
    let label_y = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < k => format!("after chunk {}", k - i),
        _ => String::new(),
    };
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh();
    if text {
        mesh.x_desc("evaluated task (its classes)")
            .y_desc("trained through")
            .x_labels(k)
            .y_labels(k)
            .x_label_formatter(&label_x)
            .y_label_formatter(&label_y)
            .label_style(("sans-serif", 14));
    }
    mesh.draw().map_err(err)?;
    let cells: Vec<(usize, usize, f64)> = ends
        .iter()
        .enumerate()
        .flat_map(|(i, e)| {
            e.task_accuracy
                .iter()
                .enumerate()
                .map(move |(j, &a)| (i, j, a))
        })
        .filter(|&(_, j, _)| j < k)
        .collect();
    let rect = |i: usize, j: usize| {
        let y = k - 1 - i;
        [
            (SegmentValue::Exact(j), SegmentValue::Exact(y)),
            (SegmentValue::Exact(j + 1), SegmentValue::Exact(y + 1)),
        ]
    };
    chart
        .draw_series(cells.iter().map(|&(i, j, a)| {
            let fill = if a.is_finite() {
                heat(a)
            } else {
                RGBColor(230, 230, 230)
            };
            Rectangle::new(rect(i, j), fill.filled())
        }))
        .map_err(err)?;
    chart
        .draw_series(
            cells.iter().map(|&(i, j, _)| {
                Rectangle::new(rect(i, j), RGBColor(200, 200, 200).stroke_width(1))
            }),
        )
        .map_err(err)?;
    if text && k <= 20 {
        chart
            .draw_series(cells.iter().map(|&(i, j, a)| {
                let s = if a.is_finite() {
                    format!("{:.1}%", 100.0 * a)
                } else {
                    "n/a".into()
                };
                let color = if a > 0.5 { WHITE } else { BLACK };
                Text::new(
                    s,
                    (SegmentValue::CenterOf(j), SegmentValue::CenterOf(k - 1 - i)),
                    ("sans-serif", if k <= 10 { 15 } else { 11 })
                        .into_font()
                        .color(&color)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )
            }))
            .map_err(err)?;
    }
    Ok(())
}

/// Accuracy after each chunk: one line per task (from the chunk that brought it), the
/// average over the tasks seen (dashed) and the accuracy on all the data (grey).
pub fn draw_task_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    ends: &[ChunkEnd],
    data_name: &str,
) -> DrawResult {
    area.fill(&WHITE).map_err(err)?;
    let text = font_available();
    let n = ends.len().max(1) as f64;
    let mut builder = ChartBuilder::on(area);
    builder.margin(16);
    if text {
        builder
            .caption(
                format!("Accuracy after each chunk ({data_name} data)"),
                ("sans-serif", 24),
            )
            .x_label_area_size(44)
            .y_label_area_size(64);
    }
    let mut chart = builder
        .build_cartesian_2d(0.75..n + 0.25, 0.0..100.0)
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(RGBColor(235, 235, 235));
    if text {
        mesh.x_desc("chunks trained")
            .y_desc("accuracy (%)")
            .x_labels(ends.len().clamp(2, 12))
            .x_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-9 {
                    format!("{}", v.round() as i64)
                } else {
                    String::new()
                }
            });
    }
    mesh.draw().map_err(err)?;
    let tasks = ends
        .iter()
        .map(|e| e.task_accuracy.len())
        .max()
        .unwrap_or(0);
    // (legend, points, style, dashed)
    type Series = (String, Vec<(f64, f64)>, ShapeStyle, bool);
    let mut series: Vec<Series> = Vec::new();
    for j in 0..tasks {
        let pts = ends
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.task_accuracy.get(j).map(|&a| (i as f64 + 1.0, 100.0 * a)))
            .filter(|p| p.1.is_finite())
            .collect();
        series.push((
            format!("task {}", j + 1),
            pts,
            class_color(j).stroke_width(2),
            false,
        ));
    }
    let avg: Vec<(f64, f64)> = ends
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.average_accuracy.map(|a| (i as f64 + 1.0, 100.0 * a)))
        .filter(|p| p.1.is_finite())
        .collect();
    if !avg.is_empty() {
        series.push((
            "average over the tasks seen".into(),
            avg,
            BLACK.stroke_width(2),
            true,
        ));
    }
    let all: Vec<(f64, f64)> = ends
        .iter()
        .enumerate()
        .map(|(i, e)| (i as f64 + 1.0, 100.0 * e.accuracy))
        .filter(|p| p.1.is_finite())
        .collect();
    series.push(("all the data".into(), all, BOUNDARY.stroke_width(3), false));
    for (name, pts, style, dashed) in series {
        let s = if dashed {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 8, 5, style))
                .map_err(err)?
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(err)?
        };
        if text {
            s.label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, style.color.filled())))
            .map_err(err)?;
    }
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}
