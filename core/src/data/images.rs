//! Image folders: one subfolder per class (its name is the class; classes are numbered in
//! sorted order of the names), PNG or JPEG files inside, decoded, converted to greyscale or
//! RGB, resized (bilinear) to the model's input and scaled to [0, 1] as IDX pixels are.
//! Samples are channel-first `[channels, height, width]`, ordered by class, then file name.
//! Native only (the `image` crate); the browser decodes images itself.

use super::Dataset;
use crate::error::{Error, Result};
use crate::input_file::{read, InputKind};
use std::path::{Path, PathBuf};

pub use super::ImageShape;

/// File extensions read as images (case-insensitive); other files are skipped.
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Decodes one PNG or JPEG image (recognised by its content) into `shape`, channel-first,
/// scaled to [0, 1]. `name` appears in error messages.
pub fn decode(bytes: &[u8], name: &str, shape: ImageShape) -> Result<Vec<f32>> {
    use image::imageops::FilterType;
    let format = image::guess_format(bytes).map_err(|_| {
        Error::data(
            name,
            "is not a PNG or JPEG image (unrecognised content); remove it or convert it",
        )
    })?;
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
        return Err(Error::data(
            name,
            format!("is a {format:?} image; accrete reads PNG and JPEG, convert it"),
        ));
    }
    let mut reader = image::io::Reader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::io::Limits::default();
    limits.max_image_width = Some(1 << 14);
    limits.max_image_height = Some(1 << 14);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| {
        Error::data(
            name,
            format!("is an unreadable image, truncated or corrupted ({e}); remove or replace it"),
        )
    })?;
    let (w, h) = (shape.width as u32, shape.height as u32);
    let resize = |i: image::DynamicImage| {
        if i.width() == w && i.height() == h {
            i
        } else {
            i.resize_exact(w, h, FilterType::Triangle)
        }
    };
    let plane = shape.height * shape.width;
    let mut out = vec![0f32; shape.channels * plane];
    if shape.channels == 1 {
        let g = resize(image::DynamicImage::ImageLuma8(img.to_luma8())).to_luma8();
        for (o, p) in out.iter_mut().zip(g.pixels()) {
            *o = p.0[0] as f32 / 255.0;
        }
    } else {
        let rgb = resize(image::DynamicImage::ImageRgb8(img.to_rgb8())).to_rgb8();
        for (i, p) in rgb.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = p.0[c] as f32 / 255.0;
            }
        }
    }
    Ok(out)
}

fn io(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// The sorted entries of `dir` that satisfy `keep`.
fn sorted(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let p = e.map_err(|e| io(dir, e))?.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !hidden && keep(&p) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The class subfolders of `dir`, by name, sorted.
pub fn class_names(dir: &Path) -> Result<Vec<String>> {
    if !dir.is_dir() {
        return Err(io(
            dir,
            "is not a folder; an image folder holds one subfolder of images per class",
        ));
    }
    let names: Vec<String> = sorted(dir, |p| p.is_dir())?
        .iter()
        .map(|p| {
            p.file_name()
                .expect("an entry")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if names.is_empty() {
        return Err(io(
            dir,
            "has no class subfolders; put the images of each class in a subfolder named after it (e.g. cat/, dog/)",
        ));
    }
    Ok(names)
}

/// Reads the image folder `dir` into a dataset of samples `shape`. `classes` names the
/// classes in label order (`None`: this folder's subfolders, sorted — the training folder);
/// a test folder must use the training folder's class names. `max_classes` (the model's
/// outputs) bounds their number.
pub fn load_folder(
    dir: &Path,
    shape: ImageShape,
    classes: Option<&[String]>,
    max_classes: Option<usize>,
) -> Result<(Dataset, Vec<String>)> {
    let found = class_names(dir)?;
    let names: Vec<String> = match classes {
        None => found.clone(),
        Some(c) => c.to_vec(),
    };
    if let Some(k) = max_classes {
        if names.len() > k {
            return Err(io(
                dir,
                format!(
                    "has {} class subfolders but the model has {k} outputs; give the last layer {} units, or remove folders",
                    names.len(),
                    names.len()
                ),
            ));
        }
    }
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for class in &found {
        let label = names.iter().position(|n| n == class).ok_or_else(|| {
            io(
                dir,
                format!(
                    "has a class subfolder {class:?} that the training folder lacks (its classes: {}); the test classes must be among the training classes",
                    names.join(", ")
                ),
            )
        })?;
        let sub = dir.join(class);
        let files = sorted(&sub, |p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })?;
        if files.is_empty() {
            return Err(io(
                &sub,
                "holds no PNG or JPEG images (.png, .jpg, .jpeg); add images of this class or remove the folder",
            ));
        }
        for f in files {
            let bytes = read(&f, InputKind::Data)?;
            features.extend(decode(&bytes, &f.display().to_string(), shape)?);
            labels.push(label as u32);
        }
    }
    let data = Dataset::new(
        features,
        labels,
        vec![shape.channels, shape.height, shape.width],
        names.len().max(1),
    )
    .map_err(|e| io(dir, e))?;
    Ok((data, names))
}
