//! CSV tables: a header row naming the columns, one sample per row. One column (by default
//! `label`) holds the class index; every other column is a numeric feature, in header order.
//!
//! The reader follows RFC 4180: fields separated by commas, optionally quoted with `"` (a
//! quoted field may hold commas, line breaks and doubled quotes `""`), records ended by LF or
//! CRLF. Blank lines are skipped, a UTF-8 byte-order mark is ignored, and spaces around
//! numbers are allowed. Errors name the 1-based line (where the record starts) and column.

use super::Dataset;
use crate::error::clip;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;

/// Column names and cells are cut to this many characters in error messages.
const NAME_CHARS: usize = 60;
/// How many column names an error lists before "… and N more".
const LISTED_COLUMNS: usize = 8;

/// How to read a CSV table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CsvOptions {
    /// Name of the column holding class indices (0, 1, 2, …). Default `"label"`.
    pub label_column: String,
    /// Number of classes; `None` takes the largest label + 1.
    pub classes: Option<usize>,
    /// Whether the label column must be present (default true). When false and it is
    /// absent, every column is a feature and every label is 0 (inputs to predict).
    pub require_label: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            label_column: crate::defaults::LABEL_COLUMN.into(),
            classes: None,
            require_label: true,
        }
    }
}

/// Parses a CSV table into a dataset with sample shape `[features]`. `source_name` (e.g. the
/// file name) prefixes every error message.
pub fn parse(text: &str, source_name: &str, opts: &CsvOptions) -> Result<Dataset> {
    Ok(parse_table(text, source_name, opts)?.0)
}

/// [`parse`], also telling whether the label column was present (it can be absent only
/// when `opts.require_label` is false).
pub fn parse_table(text: &str, source_name: &str, opts: &CsvOptions) -> Result<(Dataset, bool)> {
    let err = |detail: String| Error::data(source_name, detail);
    if opts.classes == Some(0) {
        return Err(Error::invalid(
            "csv classes",
            "0 classes were requested; give at least 1, or leave it unset to count the labels",
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Records::new(text, source_name);

    let (header_line, header) = match records.next_record()? {
        Some(r) => r,
        None => {
            return Err(err(format!(
                "the file is empty; expected a header row naming the columns (one of them {:?})",
                opts.label_column
            )))
        }
    };
    let names: Vec<String> = header.iter().map(|f| f.trim().to_string()).collect();
    // Linear in the number of columns (a table may have a million of them).
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if let Some(first) = seen.insert(name.as_str(), i) {
            return Err(err(format!(
                "line {header_line}: column {:?} appears twice in the header (columns {} and {}); give every column a distinct name",
                clip(name, NAME_CHARS),
                first + 1,
                i + 1
            )));
        }
    }
    let label_col = names.iter().position(|n| *n == opts.label_column);
    if label_col.is_none() && opts.require_label {
        let list: Vec<String> = names
            .iter()
            .take(LISTED_COLUMNS)
            .map(|n| format!("{:?}", clip(n, NAME_CHARS)))
            .collect();
        let more = names.len().saturating_sub(LISTED_COLUMNS);
        return Err(err(format!(
            "no column named {:?}; the columns are {}{}; set the label column to the one holding the class indices",
            clip(&opts.label_column, NAME_CHARS),
            list.join(", "),
            if more > 0 { format!(" … and {more} more") } else { String::new() }
        )));
    }
    let feature_cols: Vec<usize> = (0..names.len()).filter(|&c| Some(c) != label_col).collect();
    if feature_cols.is_empty() {
        return Err(err(format!(
            "the only column is the label column {:?}; there are no feature columns",
            opts.label_column
        )));
    }

    let mut features = Vec::new();
    let mut labels = Vec::new();
    while let Some((line, fields)) = records.next_record()? {
        if fields.len() != names.len() {
            return Err(err(format!(
                "line {line} has {} fields, the header has {}; quote fields that contain commas",
                fields.len(),
                names.len()
            )));
        }
        for &c in &feature_cols {
            features.push(parse_feature(&fields[c], line, &names[c]).map_err(&err)?);
        }
        let Some(label_col) = label_col else {
            labels.push(0);
            continue;
        };
        let label = parse_label(&fields[label_col], line, &names[label_col]).map_err(&err)?;
        if let Some(classes) = opts.classes {
            if label as usize >= classes {
                return Err(err(format!(
                    "line {line}, column {:?}: label {label} is outside the {classes} classes 0..{}; raise the number of classes or fix the label",
                    clip(&names[label_col], NAME_CHARS),
                    classes - 1
                )));
            }
        }
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(err(
            "the file has a header but no data rows; add one row per sample".into(),
        ));
    }
    let classes = opts
        .classes
        .unwrap_or_else(|| labels.iter().max().map_or(0, |&m| m as usize + 1))
        .max(1);
    let data = Dataset::new(features, labels, vec![feature_cols.len()], classes)
        .map_err(|e| Error::data(source_name, e.to_string()))?;
    Ok((data, label_col.is_some()))
}

/// Reads and parses a CSV file (UTF-8).
#[cfg(not(target_arch = "wasm32"))]
pub fn load(path: &std::path::Path, opts: &CsvOptions) -> Result<Dataset> {
    let name = path.display().to_string();
    let bytes = crate::input_file::read(path, crate::input_file::InputKind::Data)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::data(
            &name,
            format!(
                "not UTF-8 text (invalid byte at offset {}); save the table as UTF-8 CSV",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    parse(&text, &name, opts)
}

fn parse_feature(cell: &str, line: usize, column: &str) -> std::result::Result<f32, String> {
    let column = &clip(column, NAME_CHARS);
    let s = cell.trim();
    if s.is_empty() {
        return Err(format!(
            "line {line}, column {column:?}: the cell is empty; missing values are not supported, fill in a number"
        ));
    }
    let v: f64 = s.parse().map_err(|_| {
        format!(
            "line {line}, column {column:?}: {:?} is not a number",
            clip(s, NAME_CHARS)
        )
    })?;
    let s = clip(s, NAME_CHARS);
    if !v.is_finite() {
        return Err(format!(
            "line {line}, column {column:?}: {s:?} is not a finite number; NaN and infinity are not allowed, replace it with a number"
        ));
    }
    let f = v as f32;
    if !f.is_finite() {
        return Err(format!(
            "line {line}, column {column:?}: {s:?} is too large for a 32-bit float (at most {:e}); rescale the column",
            f32::MAX
        ));
    }
    Ok(f)
}

fn parse_label(cell: &str, line: usize, column: &str) -> std::result::Result<u32, String> {
    let s = cell.trim();
    let at = format!("line {line}, column {:?}", clip(column, NAME_CHARS));
    if s.is_empty() {
        return Err(format!(
            "{at}: the label is empty; every row needs a class index"
        ));
    }
    if let Ok(l) = s.parse::<u32>() {
        return Ok(l);
    }
    let v: f64 = s.parse().map_err(|_| {
        let s = clip(s, NAME_CHARS);
        format!("{at}: label {s:?} is not a class index; labels must be non-negative integers 0, 1, 2, … (map class names to indices first)")
    })?;
    let s = clip(s, NAME_CHARS);
    if !v.is_finite() {
        return Err(format!(
            "{at}: label {s:?} is not a finite number; labels must be non-negative integers 0, 1, 2, …"
        ));
    }
    if v < 0.0 {
        return Err(format!(
            "{at}: label {s:?} is negative; labels must be non-negative integers 0, 1, 2, …"
        ));
    }
    if v.fract() != 0.0 {
        return Err(format!(
            "{at}: label {s:?} is not a whole number; labels must be non-negative integers 0, 1, 2, …"
        ));
    }
    if v > u32::MAX as f64 {
        return Err(format!(
            "{at}: label {s:?} is too large (at most {})",
            u32::MAX
        ));
    }
    Ok(v as u32)
}

/// Splits text into records of fields, tracking the line each record starts on.
struct Records<'a> {
    text: &'a str,
    pos: usize,
    /// 1-based line number at `pos`.
    line: usize,
    source: &'a str,
}

impl<'a> Records<'a> {
    fn new(text: &'a str, source: &'a str) -> Self {
        Records {
            text,
            pos: 0,
            line: 1,
            source,
        }
    }

    /// The next non-blank record and the line it starts on; `None` at the end.
    fn next_record(&mut self) -> Result<Option<(usize, Vec<Cow<'a, str>>)>> {
        loop {
            if self.pos >= self.text.len() {
                return Ok(None);
            }
            let start = self.line;
            let fields = self.record()?;
            let blank = fields.len() == 1 && fields[0].trim().is_empty();
            if !blank {
                return Ok(Some((start, fields)));
            }
        }
    }

    fn record(&mut self) -> Result<Vec<Cow<'a, str>>> {
        let text: &'a str = self.text;
        let b = text.as_bytes();
        let start_line = self.line;
        let mut fields = Vec::new();
        loop {
            // A quoted field may be preceded by spaces or tabs.
            let mut p = self.pos;
            while p < b.len() && (b[p] == b' ' || b[p] == b'\t') {
                p += 1;
            }
            let quoted = p < b.len() && b[p] == b'"';
            if quoted {
                self.pos = p + 1;
                let mut owned: Option<String> = None;
                let mut seg = self.pos;
                loop {
                    let Some(q) = text[self.pos..].find('"').map(|q| self.pos + q) else {
                        return Err(Error::data(
                            self.source,
                            format!(
                                "line {start_line}: a quoted field (field {}) is never closed; add the closing quote",
                                fields.len() + 1
                            ),
                        ));
                    };
                    self.line += count_lines(&b[self.pos..q]);
                    if b.get(q + 1) == Some(&b'"') {
                        owned
                            .get_or_insert_with(String::new)
                            .push_str(&text[seg..=q]);
                        self.pos = q + 2;
                        seg = self.pos;
                    } else {
                        let field = match owned {
                            Some(mut s) => {
                                s.push_str(&text[seg..q]);
                                Cow::Owned(s)
                            }
                            None => Cow::Borrowed(&text[seg..q]),
                        };
                        fields.push(field);
                        self.pos = q + 1;
                        break;
                    }
                }
                while self.pos < b.len() && (b[self.pos] == b' ' || b[self.pos] == b'\t') {
                    self.pos += 1;
                }
                if !matches!(b.get(self.pos), None | Some(b',' | b'\r' | b'\n')) {
                    return Err(Error::data(
                        self.source,
                        format!(
                            "line {}: unexpected text after the closing quote of field {}; quote the whole field and double any quotes inside it (\"\")",
                            self.line,
                            fields.len()
                        ),
                    ));
                }
            } else {
                let end = b[self.pos..]
                    .iter()
                    .position(|&c| matches!(c, b',' | b'\r' | b'\n'))
                    .map_or(b.len(), |e| self.pos + e);
                fields.push(Cow::Borrowed(&text[self.pos..end]));
                self.pos = end;
            }
            match b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'\r') => {
                    self.pos += 1;
                    if b.get(self.pos) == Some(&b'\n') {
                        self.pos += 1;
                    }
                    self.line += 1;
                    return Ok(fields);
                }
                Some(b'\n') => {
                    self.pos += 1;
                    self.line += 1;
                    return Ok(fields);
                }
                _ => return Ok(fields),
            }
        }
    }
}

/// Line breaks (LF, CRLF or a lone CR) in `b`.
fn count_lines(b: &[u8]) -> usize {
    let mut n = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')) {
            n += 1;
        }
    }
    n
}
