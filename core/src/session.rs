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

use crate::config::{Prepared, RunConfig, SessionSpec};
use crate::data::{Dataset, SplitBy, Standardizer};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::metrics::task_groups;
use crate::nn::{check_fits, ModelSpec};
use crate::report::{evaluate, Evaluation};
use crate::train::{
    Checkpoint, ChunkOptions, ChunkOutcome, GpuDataset, LossKind, Observer, RehearsalSpec, Setting,
    TrainSpec, Trainer, TransferReport,
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
            t.enable_rehearsal(r.clone())?;
        }
        if let Some(l) = &spec.incremental.lwf {
            t.enable_lwf(l.clone())?;
        }
        if let Some(e) = &spec.incremental.ewc {
            t.enable_ewc(e.clone())?;
        }
        if let Some(a) = &spec.incremental.agem {
            t.enable_agem(a.clone())?;
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
        self.trainer.chunk_schedule = config.incremental.schedule.clone();
        if let Some(r) = &config.incremental.rehearsal {
            self.trainer.enable_rehearsal(r.clone())?;
        }
        if let Some(l) = &config.incremental.lwf {
            self.trainer.enable_lwf(l.clone())?;
        }
        if let Some(e) = &config.incremental.ewc {
            self.trainer.enable_ewc(e.clone())?;
        }
        if let Some(a) = &config.incremental.agem {
            self.trainer.enable_agem(a.clone())?;
        }
        let t = &self.trainer;
        check_device(
            &t.model.spec,
            &t.train,
            t.rehearsal.as_ref().map(|r| &r.spec),
            t.gpu().max_binding_bytes(),
        )
    }

    /// A run's evaluation at every chunk's end ([`Trainer::set_chunk_evaluation`]): on the
    /// test data, else the validation split (none: nothing is evaluated); for a
    /// class-incremental run (`split_by = "class"`) per task too, the same class groups as
    /// the chunks ([`crate::metrics::task_groups`]). Classification runs only.
    pub fn set_run_evaluation(&mut self, config: &RunConfig, data: &Prepared) -> Result<()> {
        let set = match (&data.test, &data.validation) {
            (Some(t), _) => Some((t, "test")),
            (None, Some(v)) => Some((v, "validation")),
            (None, None) => None,
        };
        let Some((set, name)) = set.filter(|_| config.train.loss == LossKind::SoftmaxCrossEntropy)
        else {
            return self.trainer.set_chunk_evaluation(None, "", None);
        };
        let groups = match config.incremental.split_by {
            SplitBy::Class => Some(
                task_groups(config.model.outputs()?, data.chunks.len())
                    .map_err(|e| Error::invalid("incremental.chunks", e))?,
            ),
            SplitBy::Count => None,
        };
        self.trainer.set_chunk_evaluation(Some(set), name, groups)
    }

    /// Changes hyper-parameters of a resumed run (`accrete resume DIR --set key=value`):
    /// each `key=value` is parsed ([`Setting::parse`]), the run's configuration with the
    /// new values must pass [`RunConfig::validate`], and the change is recorded in the
    /// history ([`crate::train::hyper`]). The run's planned steps (the end of a run-long
    /// cosine) are worked out again from `data`'s chunks and the epochs each chunk now
    /// trains for, so a `train.epochs` change moves the schedules' end with the run's.
    /// Returns the recorded change.
    pub fn change_settings(
        &mut self,
        config: &RunConfig,
        data: &Prepared,
        sets: &[String],
    ) -> Result<crate::train::HyperChange> {
        let settings = sets
            .iter()
            .map(|s| Setting::parse(s))
            .collect::<Result<Vec<_>>>()?;
        let t = &self.trainer;
        let (optimizer, train, _) =
            crate::train::hyper::apply_settings(&t.optimizer, &t.train, &settings)?;
        RunConfig {
            optimizer,
            train,
            ..config.clone()
        }
        .validate()?;
        let change = self
            .trainer
            .change_hyper(&settings, crate::train::history::ChangeSource::Resume)?;
        if self.trainer.planned_steps().is_some() {
            let epochs = config.chunk_epochs(&self.trainer.history);
            self.trainer
                .set_planned_steps(Some(data.planned_steps_by(&config.train, &epochs)));
        }
        Ok(change)
    }

    /// Opens the replicas of a run's `[parallel]` table. backend = "local", devices > 1:
    /// `devices − 1` more devices on the adapter the environment picks (as replica 0's,
    /// `ACCRETE_ADAPTER`), one replica each ([`Trainer::enable_replicas`]). backend = "mpi":
    /// this process is the replica of its rank in `comm` ([`Trainer::enable_collective`];
    /// refused without one). Nothing without the table or with one local device.
    pub async fn enable_parallel(
        &mut self,
        config: &RunConfig,
        comm: Option<std::rc::Rc<dyn crate::train::Collective>>,
    ) -> Result<()> {
        use crate::config::{ParallelBackend, ParallelMode};
        if let Some(p) = config.parallel.as_ref() {
            if p.backend == ParallelBackend::Mpi {
                p.validate(config)?;
                let Some(comm) = comm else {
                    return Err(Error::invalid(
                        "parallel.backend",
                        "\"mpi\" needs an MPI communicator: run the accrete CLI built with `--features mpi` under mpirun",
                    ));
                };
                let ranks = comm.size();
                p.check_split(config, p.workers(ranks), &format!("{ranks} MPI ranks"))?;
                let ps = p.mode == ParallelMode::ParameterServer;
                return self.trainer.enable_collective(comm, ps, p.sync_every);
            }
        }
        let Some(p) = config.parallel.as_ref().filter(|p| p.devices > 1) else {
            return Ok(());
        };
        p.validate(config)?;
        let mut gpus = Vec::with_capacity(p.devices - 1);
        for i in 1..p.devices {
            let g = Gpu::with_options(crate::gpu::GpuOptions::from_env())
                .await
                .map_err(|e| {
                    Error::invalid(
                        "parallel.devices",
                        format!("{} devices were asked for, but device {} could not be opened ({e}); lower parallel.devices", p.devices, i + 1),
                    )
                })?;
            gpus.push(g);
        }
        self.trainer.enable_replicas(&gpus, p.sync_every)
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
