//! CSV tables: a header row naming the columns, one sample per row. One column (by default
//! `label`) holds the class index; every other column is a numeric feature, in header order.
//!
//! Records are split by the `csv` crate (RFC 4180): fields separated by a delimiter (`,` by
//! default; `\t` for TSV, or any ASCII byte), optionally quoted with `"` at the start of the
//! field (a quoted field may hold delimiters, line breaks and doubled quotes `""`), records
//! ended by LF, CRLF or CR. Records stream one at a time into the features. Blank lines are
//! skipped, a UTF-8 byte-order mark is ignored, and spaces around numbers are allowed.
//! Errors name the 1-based line (where the record starts) and column.

use super::Dataset;
use crate::error::clip;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
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
    /// The byte between fields (default `b','`; `b'\t'` for TSV).
    pub delimiter: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            label_column: crate::defaults::LABEL_COLUMN.into(),
            classes: None,
            require_label: true,
            delimiter: b',',
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
    let mut records = Records::new(text, source_name, opts.delimiter);

    let header_line = match records.next_record()? {
        Some(line) => line,
        None => {
            return Err(err(format!(
                "the file is empty; expected a header row naming the columns (one of them {:?})",
                opts.label_column
            )))
        }
    };
    let names: Vec<String> = (0..records.len())
        .map(|i| records.field(i).trim().to_string())
        .collect();
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
    while let Some(line) = records.next_record()? {
        if records.len() != names.len() {
            return Err(err(format!(
                "line {line} has {} fields, the header has {}; quote fields that contain {}",
                records.len(),
                names.len(),
                delimiter_name(opts.delimiter)
            )));
        }
        for &c in &feature_cols {
            features.push(parse_feature(records.field(c), line, &names[c]).map_err(&err)?);
        }
        let Some(label_col) = label_col else {
            labels.push(0);
            continue;
        };
        let label = parse_label(records.field(label_col), line, &names[label_col]).map_err(&err)?;
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

/// "commas", "tabs", "';'"…, for messages.
fn delimiter_name(d: u8) -> String {
    match d {
        b',' => "commas".into(),
        b'\t' => "tabs".into(),
        b';' => "semicolons".into(),
        b' ' => "spaces".into(),
        other => format!("{:?}", other as char),
    }
}

/// The records of a table, from the `csv` crate, with the line each starts on and the
/// checks the crate leaves out (it reads an unclosed quote to the end, and text after a
/// closing quote as part of the field; both are refused here).
struct Records<'a> {
    text: &'a str,
    source: &'a str,
    delimiter: u8,
    reader: csv::Reader<&'a [u8]>,
    record: csv::ByteRecord,
    /// A byte offset and the 1-based line it is on: line breaks are counted incrementally.
    at: usize,
    line: usize,
}

impl<'a> Records<'a> {
    fn new(text: &'a str, source: &'a str, delimiter: u8) -> Self {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        Records {
            text,
            source,
            delimiter,
            reader,
            record: csv::ByteRecord::new(),
            at: 0,
            line: 1,
        }
    }

    /// Moves the line count to byte `to`.
    fn advance(&mut self, to: usize) {
        self.line += count_lines(&self.text.as_bytes()[self.at..to]);
        self.at = to;
    }

    /// Reads the next non-blank record (see [`Records::len`], [`Records::field`]); returns
    /// the line it starts on, `None` at the end.
    fn next_record(&mut self) -> Result<Option<usize>> {
        loop {
            let start = self.reader.position().byte() as usize;
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| Error::data(self.source, e.to_string()))?;
            if !more {
                return Ok(None);
            }
            let end = (self.reader.position().byte() as usize).min(self.text.len());
            // The crate skips the empty lines before a record: it starts after them.
            let b = self.text.as_bytes();
            let first = start
                + b[start..end]
                    .iter()
                    .position(|&c| c != b'\r' && c != b'\n')
                    .unwrap_or(end - start);
            self.advance(first);
            let line = self.line;
            let span = &b[first..end];
            if span.contains(&b'"') {
                self.check_quotes(span, line)?;
            }
            self.advance(end);
            let blank = self.len() == 1 && self.field(0).trim().is_empty();
            if !blank {
                return Ok(Some(line));
            }
        }
    }

    /// Fields in the record read last.
    fn len(&self) -> usize {
        self.record.len()
    }

    /// Field `i` of the record read last (quotes removed).
    fn field(&self, i: usize) -> &str {
        // The text's own bytes less quotes, so always UTF-8.
        std::str::from_utf8(&self.record[i]).unwrap_or_default()
    }

    /// Refuses an unclosed quoted field and text after a closing quote, in the record
    /// `span` (its raw bytes) starting on `line`.
    fn check_quotes(&self, span: &[u8], line: usize) -> Result<()> {
        let d = self.delimiter;
        let (mut i, mut field) = (0usize, 1usize);
        loop {
            if span.get(i) == Some(&b'"') {
                i += 1;
                loop {
                    match span[i.min(span.len())..].iter().position(|&c| c == b'"') {
                        None => {
                            return Err(Error::data(
                                self.source,
                                format!(
                                    "line {line}: a quoted field (field {field}) is never closed; add the closing quote"
                                ),
                            ))
                        }
                        Some(q) if span.get(i + q + 1) == Some(&b'"') => i += q + 2,
                        Some(q) => {
                            i += q + 1;
                            break;
                        }
                    }
                }
                while matches!(span.get(i), Some(b' ' | b'\t')) && d != span[i] {
                    i += 1;
                }
                if !matches!(span.get(i), None | Some(b'\r' | b'\n')) && span.get(i) != Some(&d) {
                    return Err(Error::data(
                        self.source,
                        format!(
                            "line {}: unexpected text after the closing quote of field {field}; quote the whole field and double any quotes inside it (\"\")",
                            line + count_lines(&span[..i])
                        ),
                    ));
                }
            } else {
                while i < span.len() && !matches!(span[i], b'\r' | b'\n') && span[i] != d {
                    i += 1;
                }
            }
            match span.get(i) {
                Some(&c) if c == d => {
                    i += 1;
                    field += 1;
                }
                _ => return Ok(()),
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
