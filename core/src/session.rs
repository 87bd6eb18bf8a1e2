//! The session layer: what both front ends — the CLI and the browser — call, so that every
//! policy is written once. A [`Session`] is a [`Trainer`] with the input preprocessing that
//! travels with it (the standardizer, fitted on the training data and stored in
//! checkpoints), built by one of:
//!
//! - [`Session::for_run`]: a fresh run from a [`RunConfig`] (the CLI's `accrete train`):
//!   recovery, rehearsal, the run's planned steps, `[finetune]` weights;
//! - [`Session::resume_run`]: a run's checkpoint checked against its configuration
//!   (`accrete resume`);
//! - [`Session::from_spec`]: a [`SessionSpec`] whose data arrives in memory (the browser's
//!   `Trainer.create`);
//! - [`Session::from_checkpoint`]: any checkpoint, to train on or to evaluate with.
//!
//! Each checks the device once by the same rule ([`check_device`]: the training batch plus
//! the rehearsal rows, and an inference batch). Inference takes its batch from
//! [`Trainer::inference_batch`], the one rule for every evaluation and prediction.

use crate::config::{RunConfig, SessionSpec};
use crate::data::{Dataset, Standardizer};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{check_fits, ModelSpec};
use crate::report::{evaluate, Evaluation};
use crate::train::{
    Checkpoint, ChunkOptions, ChunkOutcome, GpuDataset, Observer, RehearsalSpec, TrainSpec,
    Trainer, TransferReport,
};

/// Rows of one training step: the batch and the replayed rehearsal samples.
pub fn training_rows(train: &TrainSpec, rehearsal: Option<&RehearsalSpec>) -> usize {
    train.batch_size + rehearsal.map_or(0, |r| r.per_batch)
}

/// The one device-fit rule: the model's parameters and its activations for a training step
/// (`batch_size` plus the rehearsal rows) must fit the device's largest buffer, and so must
/// an inference batch of one sample (larger ones are halved to fit by
/// [`Trainer::inference_batch`]). `max_bytes` is [`Gpu::max_binding_bytes`].
pub fn check_device(
    spec: &ModelSpec,
    train: &TrainSpec,
    rehearsal: Option<&RehearsalSpec>,
    max_bytes: u64,
) -> Result<()> {
    // Parameters and one sample first: their messages need no batch.
    check_fits(spec, 1, max_bytes)?;
    let rows = training_rows(train, rehearsal);
    check_fits(spec, rows.max(1), max_bytes).map_err(|e| match e {
        Error::OverLimit {
            what,
            needed,
            limit,
            limit_name,
        } => Error::OverLimit {
            what: format!(
                "{what} (a training step of {rows} rows: train.batch_size{})",
                if rehearsal.is_some() {
                    " + rehearsal.per_batch"
                } else {
                    ""
                }
            ),
            needed,
            limit,
            limit_name,
        },
        other => other,
    })
}

/// A trainer and the preprocessing that travels with it.
pub struct Session {
    pub trainer: Trainer,
    standardizer: Option<Standardizer>,
    /// `data.standardize` was asked for and nothing has been trained yet: the first chunk
    /// trained fits the standardizer.
    fit_standardizer: bool,
}

impl Session {
    fn wrap(trainer: Trainer, standardizer: Option<Standardizer>) -> Result<Session> {
        let t = &trainer;
        check_device(
            &t.model.spec,
            &t.train,
            t.rehearsal.as_ref().map(|r| &r.spec),
            t.gpu().max_binding_bytes(),
        )?;
        Ok(Session {
            trainer,
            standardizer,
            fit_standardizer: false,
        })
    }

    /// A fresh session from a spec whose data arrives in memory (the browser's
    /// `Trainer.create`): the model, optimizer, training settings, recovery and rehearsal;
    /// with `data.standardize`, the first chunk trained fits the standardizer.
    pub fn from_spec(gpu: &Gpu, spec: &SessionSpec) -> Result<Session> {
        let mut t = Trainer::new(
            gpu,
            spec.model.clone(),
            spec.optimizer.clone(),
            spec.train.clone(),
            spec.seed,
        )?;
        t.recovery = spec.recovery.clone();
        if let Some(r) = &spec.incremental.rehearsal {
            t.enable_rehearsal(r.clone());
        }
        let mut s = Session::wrap(t, None)?;
        s.fit_standardizer = spec.data.standardize;
        Ok(s)
    }

    /// A session that continues exactly where `ckpt` left off, with its preprocessing.
    pub fn from_checkpoint(gpu: &Gpu, ckpt: &Checkpoint) -> Result<Session> {
        let standardizer = standardizer_of(ckpt)?;
        Session::wrap(Trainer::from_checkpoint(gpu, ckpt)?, standardizer)
    }

    /// A session for evaluating or predicting with `ckpt` ([`Trainer::for_inference`]: a
    /// mixed-precision checkpoint evaluates in f32 where the device has no f16).
    pub fn for_inference(gpu: &Gpu, ckpt: &Checkpoint) -> Result<Session> {
        let standardizer = standardizer_of(ckpt)?;
        Session::wrap(Trainer::for_inference(gpu, ckpt)?, standardizer)
    }

    /// A fresh run of `config` on `gpu`: the model (with `[finetune] freeze`), optimizer and
    /// training settings, recovery, rehearsal, the run's planned steps (`planned_steps`,
    /// see [`crate::config::Prepared::planned_steps`]) and the standardizer fitted on the
    /// run's training data. With `[finetune]`, `finetune` holds the source's tensors (read
    /// natively by [`RunConfig::finetune_weights`]); the report says what was loaded.
    pub fn for_run(
        gpu: &Gpu,
        config: &RunConfig,
        standardizer: Option<Standardizer>,
        planned_steps: Option<u64>,
        finetune: Option<&[crate::checkpoint::NamedTensor]>,
    ) -> Result<(Session, Option<TransferReport>)> {
        let spec = config.model_spec()?;
        check_device(
            &spec,
            &config.train,
            config.incremental.rehearsal.as_ref(),
            gpu.max_binding_bytes(),
        )?;
        let mut t = Trainer::new(
            gpu,
            spec,
            config.optimizer.clone(),
            config.train.clone(),
            config.seed,
        )?;
        let report = match (&config.finetune, finetune) {
            (Some(ft), Some(source)) => Some(load_finetune(&mut t, &ft.from, source)?),
            (Some(ft), None) => {
                return Err(Error::invalid(
                    "finetune.from",
                    format!("the weights of {} were not given", ft.from),
                ))
            }
            _ => None,
        };
        t.set_planned_steps(planned_steps);
        let mut s = Session::wrap(t, standardizer)?;
        s.apply_run_settings(config)?;
        Ok((s, report))
    }

    /// A run's last checkpoint (read from `source`), checked against the run's
    /// configuration ([`RunConfig::check_resumable`]), with the configuration's recovery
    /// and rehearsal.
    pub fn resume_run(
        gpu: &Gpu,
        config: &RunConfig,
        ckpt: &Checkpoint,
        source: &str,
    ) -> Result<Session> {
        config.check_resumable(&ckpt.meta, source)?;
        let mut s = Session::from_checkpoint(gpu, ckpt)?;
        s.apply_run_settings(config)?;
        Ok(s)
    }

    /// The run configuration's settings that live outside the checkpoint's specs.
    fn apply_run_settings(&mut self, config: &RunConfig) -> Result<()> {
        self.trainer.recovery = config.recovery.clone();
        if let Some(r) = &config.incremental.rehearsal {
            self.trainer.enable_rehearsal(r.clone());
        }
        let t = &self.trainer;
        check_device(
            &t.model.spec,
            &t.train,
            t.rehearsal.as_ref().map(|r| &r.spec),
            t.gpu().max_binding_bytes(),
        )
    }

    pub fn gpu(&self) -> &Gpu {
        self.trainer.gpu()
    }

    /// The standardizer applied to every input, if any.
    pub fn standardizer(&self) -> Option<&Standardizer> {
        self.standardizer.as_ref()
    }

    /// Makes `data` what the model sees: standardised when the session standardises. With
    /// `training` and a standardizer still to fit (`data.standardize` before the first
    /// chunk), fits it on `data` first; before that, inference is refused. `op` names the
    /// caller in errors.
    pub fn prepare(&mut self, mut data: Dataset, training: bool, op: &str) -> Result<Dataset> {
        if self.fit_standardizer && self.standardizer.is_none() {
            if !training {
                return Err(Error::invalid(
                    op,
                    "the spec asks for data.standardize, which is fitted on the first chunk trained; call fitChunk first",
                ));
            }
            self.standardizer = Some(Standardizer::fit(&data));
        }
        if let Some(st) = &self.standardizer {
            st.apply(&mut data).map_err(|e| Error::invalid(op, e))?;
        }
        Ok(data)
    }

    /// Trains one chunk ([`Trainer::fit_chunk_with`]); `chunk` must be prepared.
    pub async fn fit_chunk(
        &mut self,
        chunk: &Dataset,
        opts: &ChunkOptions,
        obs: &mut dyn Observer,
    ) -> Result<ChunkOutcome> {
        self.trainer.fit_chunk_with(chunk, opts, obs).await
    }

    /// Class probabilities (regression: outputs) for every sample of the prepared `data`,
    /// [n, outputs] row-major.
    pub async fn predict(&mut self, data: &Dataset) -> Result<Vec<f32>> {
        let d = GpuDataset::upload(self.gpu(), data)?;
        let batch = self.trainer.inference_batch(data.len());
        self.trainer.predict(&d, batch).await
    }

    /// Loss, accuracy, confusion matrix, per-class scores and ROC AUC of the model on the
    /// prepared, labelled `data`.
    pub async fn evaluate(&mut self, data: &Dataset) -> Result<Evaluation> {
        let probs = self.predict(data).await?;
        evaluate(&data.labels, &probs, self.trainer.model.spec.outputs()?)
    }

    /// A checkpoint of everything needed to continue exactly, the preprocessing included.
    pub async fn checkpoint(&self) -> Result<Checkpoint> {
        let mut c = self.trainer.checkpoint().await?;
        c.meta.preprocessing = self.standardizer.as_ref().map(Standardizer::to_json);
        Ok(c)
    }
}

/// The standardizer a checkpoint stores, if any.
fn standardizer_of(ckpt: &Checkpoint) -> Result<Option<Standardizer>> {
    ckpt.meta
        .preprocessing
        .as_ref()
        .map(Standardizer::from_json)
        .transpose()
}

/// Loads `[finetune]` weights into a fresh trainer, refusing a source that matches nothing.
fn load_finetune(
    t: &mut Trainer,
    from: &str,
    source: &[crate::checkpoint::NamedTensor],
) -> Result<TransferReport> {
    let rep = t.load_weights(source)?;
    if rep.loaded.is_empty() {
        let have: Vec<String> = source
            .iter()
            .filter(|s| !crate::train::state::is_training_state(&s.name))
            .map(|s| format!("{} {:?}", s.name, s.shape))
            .collect();
        return Err(Error::data(
            from,
            format!(
                "no tensor matches the model (it holds {}); it was saved from another architecture: change [model] or finetune.from",
                if have.is_empty() {
                    "no weights".to_string()
                } else {
                    have.join(", ")
                }
            ),
        ));
    }
    Ok(rep)
}
