//! From files to the data a run trains on: reading what `[data]` names, fitting it to the
//! model, the validation split, standardisation and the chunks. Pure and deterministic given
//! the seed, so a resumed run rebuilds exactly the chunks it was trained on.

#[cfg(not(target_arch = "wasm32"))]
use super::DataFormat;
use super::RunConfig;
use crate::data::{split, Dataset, SplitBy, Standardizer};
use crate::defaults::IMBALANCE_THRESHOLD;
use crate::error::{Error, Result};
use crate::nn::ModelSpec;

impl RunConfig {
    /// The tensors of the `[finetune] from` file (an accrete checkpoint or PyTorch
    /// weights), when fine-tuning.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn finetune_weights(&self) -> Result<Option<Vec<crate::checkpoint::NamedTensor>>> {
        let Some(ft) = &self.finetune else {
            return Ok(None);
        };
        let bytes = crate::checkpoint::read_bytes(std::path::Path::new(&ft.from))?;
        Ok(Some(crate::checkpoint::weights_from_bytes(
            &bytes, &ft.from,
        )?))
    }

    /// The samples image folders are read into: `data.image_size` and `data.image_color`,
    /// else the model's input `[channels, height, width]` with 1 (grey) or 3 (RGB) channels.
    pub fn image_shape(&self) -> Result<crate::data::ImageShape> {
        let d = &self.data;
        let input = &self.model.input;
        let from_model = match input.as_slice() {
            &[c @ (1 | 3), h, w] => Some((c, h, w)),
            _ => None,
        };
        let (h, w) = match (d.image_size, from_model) {
            (Some([h, w]), _) => (h, w),
            (None, Some((_, h, w))) => (h, w),
            (None, None) => {
                return Err(Error::invalid(
                    "data.image_size",
                    format!(
                        "is required when model.input ({input:?}) is not [channels, height, width] with 1 or 3 channels: give [height, width], e.g. image_size = [28, 28]"
                    ),
                ))
            }
        };
        let channels = match (d.image_color, from_model) {
            (Some(super::ImageColor::Grey), _) => 1,
            (Some(super::ImageColor::Rgb), _) => 3,
            (None, Some((c, _, _))) => c,
            (None, None) => 1,
        };
        Ok(crate::data::ImageShape {
            channels,
            height: h,
            width: w,
        })
    }

    /// Reads the training and (when there is one) test data named by `[data]`, unprepared.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_data(&self) -> Result<(Dataset, Option<Dataset>)> {
        use crate::data::{csv, idx, images, npy, tensors};
        use crate::input_file::{read, InputKind};
        use std::path::Path;
        let d = &self.data;
        let classes = Some(self.model.outputs()?);
        let required = |v: &Option<String>, key: &str| -> Result<String> {
            v.clone().ok_or_else(|| {
                Error::invalid(
                    format!("data.{key}"),
                    format!("is required with format = \"{}\"", d.format.name()),
                )
            })
        };
        let both = |train: &Option<String>,
                    test: &Option<String>,
                    load: &dyn Fn(&str) -> Result<Dataset>|
         -> Result<(Dataset, Option<Dataset>)> {
            let train = load(&required(train, "train_file")?)?;
            let test = test.as_deref().map(load).transpose()?;
            Ok((train, test))
        };
        match d.format {
            DataFormat::Idx => {
                let dir = Path::new(d.idx_dir());
                let train = idx::load_dir(dir, idx::Split::Train)?;
                let test = idx::load_dir(dir, idx::Split::Test)?;
                Ok((train, Some(test)))
            }
            DataFormat::Csv => {
                let opts = csv::CsvOptions {
                    label_column: d.label_column().to_string(),
                    classes,
                    require_label: true,
                    delimiter: d
                        .delimiter_byte()
                        .map_err(|e| Error::invalid("data.delimiter", e))?,
                };
                both(&d.train_file, &d.test_file, &|f| {
                    csv::load(Path::new(f), &opts)
                })
            }
            DataFormat::Npy => {
                let load = |x: &str, y: &str| -> Result<Dataset> {
                    let xb = read(Path::new(x), InputKind::Data)?;
                    let yb = read(Path::new(y), InputKind::Data)?;
                    npy::npy_dataset(&xb, &yb, x, y, classes)
                };
                let train = load(
                    &required(&d.train_file, "train_file")?,
                    &required(&d.train_labels_file, "train_labels_file")?,
                )?;
                let test = match &d.test_file {
                    Some(x) => Some(load(
                        x,
                        &required(&d.test_labels_file, "test_labels_file")?,
                    )?),
                    None => None,
                };
                Ok((train, test))
            }
            DataFormat::Npz | DataFormat::Safetensors => {
                let names = d.array_names();
                let npz = d.format == DataFormat::Npz;
                both(&d.train_file, &d.test_file, &|f| {
                    let bytes = read(Path::new(f), InputKind::Data)?;
                    if npz {
                        npy::npz_dataset(&bytes, f, &names, classes)
                    } else {
                        tensors::dataset(&bytes, f, &names, classes)
                    }
                })
            }
            DataFormat::ImageFolder => {
                let shape = self.image_shape()?;
                let dir = required(&d.train_dir, "train_dir")?;
                let (train, names) = images::load_folder(Path::new(&dir), shape, None, classes)?;
                let test = match &d.test_dir {
                    Some(t) => {
                        Some(images::load_folder(Path::new(t), shape, Some(&names), classes)?.0)
                    }
                    None => None,
                };
                Ok((train, test))
            }
        }
    }

    /// Fits `data` to the model: the first `limit` samples, samples viewed as
    /// `model.input`, labels checked against the model's classes.
    pub fn fit_to_model(&self, data: Dataset, limit: Option<usize>, name: &str) -> Result<Dataset> {
        let mut data = match limit {
            Some(n) if n < data.len() => data.take(n),
            _ => data,
        };
        let want = &self.model.input;
        if data.sample_len() != self.model.input_len() {
            return Err(Error::data(
                name,
                format!(
                    "samples have {} values (shape {:?}) but the model's input (model.input) is {want:?} ({} values); the data and the model must agree",
                    data.sample_len(),
                    data.sample_shape,
                    self.model.input_len()
                ),
            ));
        }
        data = data.reshaped(want)?;
        let classes = self.model.outputs()?;
        check_labels(&data, classes, name)?;
        data.classes = classes;
        Ok(data)
    }

    /// Everything a run trains and evaluates on, from the raw training and test data:
    /// limits, model shapes, the validation split, standardisation (fitted on the training
    /// part only), the chunks, and imbalance warnings. Deterministic given the seed.
    pub fn prepare(&self, train: Dataset, test: Option<Dataset>) -> Result<Prepared> {
        let d = &self.data;
        let train = self.fit_to_model(train, d.train_limit, "training data")?;
        let mut test = match test {
            Some(t) => Some(self.fit_to_model(t, d.test_limit, "test data")?),
            None => None,
        };
        let (mut train, mut validation) = if d.validation_fraction > 0.0 {
            let (t, v) = split::holdout(&train, d.validation_fraction, d.stratified, self.seed)
                .map_err(|e| rekey(e, "data.validation_fraction"))?;
            (t, Some(v))
        } else {
            (train, None)
        };
        let standardizer = if d.standardize {
            let s = Standardizer::fit(&train);
            s.apply(&mut train)?;
            for set in [validation.as_mut(), test.as_mut()].into_iter().flatten() {
                s.apply(set)?;
            }
            Some(s)
        } else {
            None
        };
        let inc = &self.incremental;
        let chunks = split::increments(&train, inc.chunks, inc.split_by, self.seed, inc.shuffle)
            .map_err(|e| rekey(e, "incremental.chunks"))?;
        let mut warnings = Vec::new();
        warnings.extend(split::imbalance_warning(
            &train,
            "the training data",
            IMBALANCE_THRESHOLD,
        ));
        if inc.split_by == SplitBy::Count && chunks.len() > 1 {
            for (i, c) in chunks.iter().enumerate() {
                warnings.extend(split::imbalance_warning(
                    c,
                    &format!("chunk {}", i + 1),
                    IMBALANCE_THRESHOLD,
                ));
            }
        }
        Ok(Prepared {
            train,
            validation,
            test,
            chunks,
            standardizer,
            warnings,
        })
    }
}

/// An argument error from a library function, renamed after the config key it came from.
fn rekey(e: Error, key: &str) -> Error {
    match e {
        Error::InvalidArgument { detail, .. } => Error::invalid(key, detail),
        other => other,
    }
}

/// Refuses labels the model cannot predict.
pub fn check_labels(data: &Dataset, classes: usize, name: &str) -> Result<()> {
    if let Some((i, &l)) = data
        .labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes)
    {
        return Err(Error::data(
            name,
            format!(
                "label {l} of sample {i} is outside the model's {classes} classes 0..{}; the last layer needs at least {} units (the data's labels go up to {})",
                classes - 1,
                data.labels.iter().max().map_or(0, |&m| m as usize + 1),
                data.labels.iter().max().copied().unwrap_or(0)
            ),
        ));
    }
    Ok(())
}

/// Builds a dataset for `model` from flat arrays handed over in memory (the browser's
/// `Float32Array` / `Uint32Array`): `features` holds n samples of `model.input_len()` values,
/// row-major; `labels` one class index per sample (`None`: unlabelled inputs for prediction,
/// labelled 0). Refuses empty data, a length that is not a whole number of samples, a label
/// count that differs from the sample count, labels outside the model's classes and
/// non-finite features, with a message starting with `name` that says what to pass instead.
pub fn dataset_for_model(
    model: &ModelSpec,
    features: Vec<f32>,
    labels: Option<Vec<u32>>,
    name: &str,
) -> Result<Dataset> {
    let d = model.input_len();
    let classes = model.outputs()?;
    let input = &model.input;
    if features.is_empty() {
        return Err(Error::data(
            name,
            format!("no samples: the features are empty; pass n × {d} values (the model's input is {input:?}) with n ≥ 1"),
        ));
    }
    if d == 0 || !features.len().is_multiple_of(d) {
        return Err(Error::data(
            name,
            format!(
                "{} feature values are not a whole number of samples: the model's input {input:?} takes {d} values per sample, so pass n × {d} values, row-major",
                features.len()
            ),
        ));
    }
    let n = features.len() / d;
    let labels = match labels {
        Some(l) if l.len() != n => {
            return Err(Error::data(
                name,
                format!(
                    "{} labels for {n} samples ({} feature values of {d} per sample); give exactly one label per sample",
                    l.len(),
                    features.len()
                ),
            ))
        }
        Some(l) => l,
        None => vec![0; n],
    };
    if let Some(i) = features.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(
            name,
            format!(
                "feature {} of sample {} is {}; every feature must be a finite number: replace or drop missing values before passing the data",
                i % d,
                i / d,
                features[i]
            ),
        ));
    }
    // Built with room for every label, so that check_labels gives its message.
    let room = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut data = Dataset::new(features, labels, input.clone(), classes.max(room))?;
    check_labels(&data, classes, name)?;
    data.classes = classes;
    Ok(data)
}

/// The data of a run, ready to train on.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// The training part (after the validation split), standardised when configured.
    pub train: Dataset,
    /// The validation split, when `validation_fraction > 0`.
    pub validation: Option<Dataset>,
    /// The test data, when there is some.
    pub test: Option<Dataset>,
    /// `train` split into `incremental.chunks` chunks.
    pub chunks: Vec<Dataset>,
    /// The standardizer fitted on `train`, when `data.standardize`.
    pub standardizer: Option<Standardizer>,
    /// Warnings for the user (class imbalance).
    pub warnings: Vec<String>,
}

impl Prepared {
    /// The run's planned total of optimizer steps, every chunk's steps × `train.epochs`
    /// (early stopping may end chunks sooner): the end of a `cosine` schedule's run-long
    /// cycle.
    pub fn planned_steps(&self, train: &crate::train::TrainSpec) -> u64 {
        self.chunks
            .iter()
            .map(|c| train.steps_per_epoch(c.len()) * train.epochs as u64)
            .sum()
    }

    /// The run's planned total of optimizer steps with per-chunk epochs (`epochs[i]` for
    /// chunk i, see [`crate::train::hyper::chunk_epochs`]).
    pub fn planned_steps_by(&self, train: &crate::train::TrainSpec, epochs: &[usize]) -> u64 {
        self.chunks
            .iter()
            .zip(epochs)
            .map(|(c, &e)| train.steps_per_epoch(c.len()) * e as u64)
            .sum()
    }

    /// The data the final report evaluates on: the test data, else the validation split,
    /// else the training data; with its name.
    pub fn report_data(&self) -> (&Dataset, &'static str) {
        match (&self.test, &self.validation) {
            (Some(t), _) => (t, "test"),
            (None, Some(v)) => (v, "validation"),
            (None, None) => (&self.train, "training"),
        }
    }
}
