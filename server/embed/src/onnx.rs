//! all-MiniLM-L6-v2 (int8) through fastembed on a dynamically loaded ONNX Runtime.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use ort::environment::Environment;

use crate::assets::{AssetPaths, MODEL_NAME};
use crate::{EmbedError, Embedder, Result};

/// Output dimension of all-MiniLM-L6-v2.
pub const DIM: usize = 384;
/// Position embeddings of the model; longer inputs cannot be encoded.
pub const MAX_POSITIONS: usize = 512;

/// The process-wide ONNX Runtime state. ort allows one dylib and one environment per process,
/// and neither can be replaced once set, so both are remembered here.
struct OrtState {
    /// The library `ort::init_from` accepted (ort keeps it loaded for the process).
    lib: Option<PathBuf>,
    env: Option<Environment>,
}

static ORT: Mutex<OrtState> = Mutex::new(OrtState {
    lib: None,
    env: None,
});

fn panic_message(p: Box<dyn Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Loads ONNX Runtime from `lib` (first call) and builds the one environment of the process, or
/// returns it again. A different library after a successful load is an error: ort cannot
/// switch.
pub(crate) fn environment(lib: &Path) -> Result<Environment> {
    let shown = lib.display().to_string();
    let runtime_err = |reason: String| EmbedError::Runtime {
        path: shown.clone(),
        reason,
    };
    let lib = std::path::absolute(lib).map_err(|e| runtime_err(e.to_string()))?;
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());

    let mut state = ORT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(loaded) = &state.lib {
        if canon(loaded) != canon(&lib) {
            return Err(runtime_err(format!(
                "ONNX Runtime is already loaded from {} in this process and cannot be replaced; restart the process",
                loaded.display()
            )));
        }
        if let Some(env) = &state.env {
            return Ok(env.clone());
        }
    }
    if !lib.is_file() {
        return Err(EmbedError::MissingAsset {
            what: "ONNX Runtime library".into(),
            path: shown,
        });
    }

    let built = catch_unwind(AssertUnwindSafe(|| {
        let builder = ort::init_from(&lib).map_err(|e| e.to_string())?;
        // init_from succeeded: ort now holds this library for the rest of the process.
        Ok::<_, String>(
            builder
                .with_name("codemem")
                .with_telemetry(false)
                .build()
                .map_err(|e| format!("creating the ONNX Runtime environment failed: {e}")),
        )
    }));
    match built {
        Err(p) => Err(runtime_err(format!(
            "ONNX Runtime panicked while loading: {}",
            panic_message(p)
        ))),
        Ok(Err(load_err)) => Err(runtime_err(load_err)),
        Ok(Ok(env)) => {
            state.lib = Some(lib);
            let env = env.map_err(runtime_err)?;
            state.env = Some(env.clone());
            Ok(env)
        }
    }
}

/// Sentence embeddings from all-MiniLM-L6-v2 (int8 weights), 384 dims, mean pooling,
/// L2-normalised. Outputs do not depend on batch composition or thread count.
pub struct OnnxEmbedder {
    // fastembed's `embed` takes `&mut self`; one batch runs at a time (ORT itself uses
    // `intra_threads` threads for it).
    model: Mutex<TextEmbedding>,
    /// A second, single-threaded session for search queries, made on first need: a query
    /// never waits behind an indexing batch holding `model`.
    query_model: Mutex<QuerySession>,
    recipe: Recipe,
    model_id: String,
    max_length: usize,
    threads: usize,
    /// The static table for the first pass ([`Embedder::first_pass`]).
    first_pass: Option<crate::StaticEmbedder>,
}

enum QuerySession {
    NotBuilt,
    Built(Arc<Mutex<TextEmbedding>>),
    /// Building it failed at this time; queries share `model` until a retry is due.
    Failed(Instant),
}

/// How long after a failed build of the query session the next contended query tries again.
const QUERY_SESSION_RETRY: Duration = Duration::from_secs(60);

/// What it takes to build another session of the same model. The model bytes are read from
/// disk for each session instead of being kept: a resident copy cost the idle daemon ~23 MiB.
struct Recipe {
    /// Checked (sizes) before each build: `scripts/setup` may be replacing a file.
    assets: AssetPaths,
    tokenizer: TokenizerFiles,
}

fn read_asset(p: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| EmbedError::MissingAsset {
        what: format!("{what} (unreadable: {e})"),
        path: p.display().to_string(),
    })
}

fn build_session(r: &Recipe, max_length: usize, threads: usize) -> Result<TextEmbedding> {
    r.assets.verify_sizes()?;
    let env = environment(&r.assets.runtime_lib)?;
    let onnx = read_asset(&r.assets.model_onnx, "model.onnx")?;
    let model =
        UserDefinedEmbeddingModel::new(onnx, r.tokenizer.clone()).with_pooling(Pooling::Mean);
    let opts = InitOptionsUserDefined::new()
        .with_environment(env)
        .with_max_length(max_length)
        .with_intra_threads(threads)
        // Spinning threads cost 3-6x latency on a busy 2-core machine (see deps.md).
        .with_session_config("session.intra_op.allow_spinning", "0");
    catch_unwind(AssertUnwindSafe(|| {
        TextEmbedding::try_new_from_user_defined(model, opts)
    }))
    .map_err(|p| EmbedError::Model(format!("panicked: {}", panic_message(p))))?
    .map_err(|e| EmbedError::Model(format!("{} ({e})", r.assets.model_onnx.display())))
}

fn run_session(model: &mut TextEmbedding, texts: &[String]) -> Result<Vec<Vec<f32>>> {
    let out = catch_unwind(AssertUnwindSafe(|| model.embed(texts, Some(texts.len()))))
        .map_err(|p| EmbedError::Inference(format!("panicked: {}", panic_message(p))))?
        .map_err(|e| EmbedError::Inference(e.to_string()))?;
    if out.len() != texts.len() {
        return Err(EmbedError::Inference(format!(
            "got {} vectors for {} texts",
            out.len(),
            texts.len()
        )));
    }
    if let Some(bad) = out.iter().find(|v| v.len() != DIM) {
        return Err(EmbedError::Inference(format!(
            "got a {}-dimensional vector, expected {DIM}",
            bad.len()
        )));
    }
    Ok(out)
}

impl std::fmt::Debug for OnnxEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxEmbedder")
            .field("model_id", &self.model_id)
            .field("max_length", &self.max_length)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl OnnxEmbedder {
    /// Loads the runtime and the model from `paths`.
    ///
    /// `threads`: ONNX Runtime intra-op threads, 0 = available cores. `max_length`: tokens per
    /// text (longer texts are truncated), 1..=512; it is part of [`Embedder::model_id`].
    ///
    /// Fails with `MissingAsset`/`CorruptAsset` (wrong size) before touching ONNX Runtime, with
    /// `Runtime` if the library does not load, `Model` if the model does not. Never panics.
    /// ONNX Runtime can be loaded only once per process: later loads must use the same library.
    pub fn load(paths: &AssetPaths, threads: usize, max_length: usize) -> Result<OnnxEmbedder> {
        if !(1..=MAX_POSITIONS).contains(&max_length) {
            return Err(EmbedError::Model(format!(
                "max_length must be between 1 and {MAX_POSITIONS}, got {max_length}"
            )));
        }
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        let started = Instant::now();
        paths.verify_sizes()?;
        let read = read_asset;
        let recipe = Recipe {
            assets: paths.clone(),
            tokenizer: TokenizerFiles {
                tokenizer_file: read(&paths.tokenizer, "tokenizer.json")?,
                config_file: read(&paths.config, "config.json")?,
                special_tokens_map_file: read(
                    &paths.special_tokens_map,
                    "special_tokens_map.json",
                )?,
                tokenizer_config_file: read(&paths.tokenizer_config, "tokenizer_config.json")?,
            },
        };
        let text_embedding = build_session(&recipe, max_length, threads)?;

        let embedder = OnnxEmbedder {
            model: Mutex::new(text_embedding),
            query_model: Mutex::new(QuerySession::NotBuilt),
            recipe,
            model_id: format!("{MODEL_NAME}@{max_length}"),
            max_length,
            threads,
            first_pass: None,
        };
        // Probe once: checks the output shape (384 dims, in `embed`) and warms the session up.
        embedder
            .embed(&["codemem".to_string()])
            .map_err(|e| match e {
                EmbedError::Inference(m) => EmbedError::Model(format!(
                    "{}: test inference failed: {m}",
                    paths.model_onnx.display()
                )),
                other => other,
            })?;
        tracing::info!(
            model_id = %embedder.model_id,
            threads,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedding model loaded"
        );
        Ok(embedder)
    }

    /// Adds the static table as this model's first pass.
    pub fn with_first_pass(mut self, table: crate::StaticEmbedder) -> OnnxEmbedder {
        self.first_pass = Some(table);
        self
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl OnnxEmbedder {
    /// The query session, built on first need. A failed build is not kept: the next
    /// contended query after [`QUERY_SESSION_RETRY`] tries again, and meanwhile queries wait
    /// for the shared session.
    fn query_session(&self) -> Option<Arc<Mutex<TextEmbedding>>> {
        let mut state = self.query_model.lock().unwrap_or_else(|e| e.into_inner());
        match &*state {
            QuerySession::Built(q) => return Some(q.clone()),
            QuerySession::Failed(at) if at.elapsed() < QUERY_SESSION_RETRY => return None,
            _ => {}
        }
        match build_session(&self.recipe, self.max_length, 1) {
            Ok(m) => {
                let q = Arc::new(Mutex::new(m));
                *state = QuerySession::Built(q.clone());
                Some(q)
            }
            Err(e) => {
                tracing::warn!(error = %e, "no separate query session; queries wait for the indexing one");
                *state = QuerySession::Failed(Instant::now());
                None
            }
        }
    }
}

impl Embedder for OnnxEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        DIM
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Panics are caught below, so the lock is not poisoned by them; recover anyway.
        let mut model = self.model.lock().unwrap_or_else(|e| e.into_inner());
        run_session(&mut model, texts)
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let texts = [text.to_string()];
        let out = match self.model.try_lock() {
            Ok(mut m) => run_session(&mut m, &texts)?,
            Err(_) => match self.query_session() {
                Some(q) => run_session(&mut q.lock().unwrap_or_else(|e| e.into_inner()), &texts)?,
                None => self.embed(&texts)?,
            },
        };
        Ok(out.into_iter().next().unwrap_or_default())
    }

    fn first_pass(&self) -> Option<&dyn Embedder> {
        self.first_pass.as_ref().map(|t| t as &dyn Embedder)
    }
}
