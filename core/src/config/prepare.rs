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

    /// Reads the training and (when there is one) test data named by `[data]`, unprepared.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_data(&self) -> Result<(Dataset, Option<Dataset>)> {
        use crate::data::{csv, idx};
        let d = &self.data;
        match d.format {
            DataFormat::Idx => {
                let dir = std::path::Path::new(d.idx_dir());
                let train = idx::load_dir(dir, idx::Split::Train)?;
                let test = idx::load_dir(dir, idx::Split::Test)?;
                Ok((train, Some(test)))
            }
            DataFormat::Csv => {
                let opts = csv::CsvOptions {
                    label_column: d.label_column().to_string(),
                    classes: Some(self.model.outputs()?),
                    require_label: true,
                };
                let train_file = d.train_file.as_deref().ok_or_else(|| {
                    Error::invalid("data.train_file", "is required with format = \"csv\"")
                })?;
                let train = csv::load(std::path::Path::new(train_file), &opts)?;
                let test = match &d.test_file {
                    Some(f) => Some(csv::load(std::path::Path::new(f), &opts)?),
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
