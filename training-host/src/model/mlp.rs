//! The strategy's MLP on candle-nn: `n_features → hidden layers → 3 logits`.
//!
//! Each hidden layer is `Linear → activation → dropout` (dropout only while training);
//! the output layer is a plain `Linear` giving one logit per class (0 BUY, 1 HOLD,
//! 2 SELL), softmax is applied by the loss and by [`Mlp::predict_proba`]. Weights live in
//! a candle-nn [`VarMap`] named `layer{i}.weight` / `layer{i}.bias` (the last index is the
//! output layer), which is also the layout of `model.safetensors`.
//!
//! Initialisation follows PyTorch's `nn.Linear` default (weights and biases uniform in
//! `±1/sqrt(fan_in)`), drawn from the crate's seeded generator because candle's CPU
//! random tensors cannot be seeded: the same seed gives the same network.

use std::collections::BTreeMap;

use candle_core::{DType, Device, DeviceLocation, Tensor};
use candle_nn::{Init, Linear, VarMap};

use super::TrainError;
use super::spec::MlpSpec;
use crate::strategy::Activation;
use host_service_base::SplitMix64;

/// Rows per forward pass when predicting, so a large input never makes one huge tensor.
/// Fixed (not tied to the batch size) so that a model predicts bit-for-bit the same
/// before saving and after loading.
const PREDICT_CHUNK: usize = 4096;

/// A detached copy of a network's weights, by variable name.
#[derive(Debug, Clone)]
pub struct Weights {
    pub(crate) tensors: BTreeMap<String, Tensor>,
}

impl Weights {
    /// Variable names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Every weight as f32 values, by name (for comparisons and inspection).
    pub fn to_vecs(&self) -> Result<BTreeMap<String, Vec<f32>>, TrainError> {
        self.tensors
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.flatten_all()?.to_vec1::<f32>()?)))
            .collect()
    }
}

/// The MLP; its variables are in [`Mlp::varmap`].
#[derive(Clone)]
pub struct Mlp {
    spec: MlpSpec,
    varmap: VarMap,
    layers: Vec<Linear>,
    device: Device,
}

impl std::fmt::Debug for Mlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mlp")
            .field("spec", &self.spec)
            .field("device", &device_name(&self.device))
            .finish_non_exhaustive()
    }
}

impl Mlp {
    /// A freshly initialised network (PyTorch's default init, drawn from `seed`).
    pub fn new(spec: &MlpSpec, device: &Device, seed: u64) -> Result<Self, TrainError> {
        let mut rng = SplitMix64::new(seed);
        let mut tensors = BTreeMap::new();
        for (i, (fan_in, fan_out)) in spec.layer_dims().into_iter().enumerate() {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let mut draw =
                |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-bound, bound)).collect() };
            let w = Tensor::from_vec(draw(fan_in * fan_out), (fan_out, fan_in), device)?;
            let b = Tensor::from_vec(draw(fan_out), fan_out, device)?;
            tensors.insert(format!("layer{i}.weight"), w);
            tensors.insert(format!("layer{i}.bias"), b);
        }
        Self::from_weights(spec, &Weights { tensors }, device)
    }

    /// A network holding `weights`, which must match `spec` exactly.
    pub fn from_weights(
        spec: &MlpSpec,
        weights: &Weights,
        device: &Device,
    ) -> Result<Self, TrainError> {
        spec.validate()?;
        let dims = spec.layer_dims();
        if weights.tensors.len() != 2 * dims.len() {
            return Err(TrainError::InvalidConfig(format!(
                "the weights hold {} tensors but {} were expected",
                weights.tensors.len(),
                2 * dims.len()
            )));
        }
        let mut varmap = VarMap::new();
        let mut layers = Vec::with_capacity(dims.len());
        for (i, (fan_in, fan_out)) in dims.into_iter().enumerate() {
            let mut get = |name: String, shape: &[usize]| -> Result<Tensor, TrainError> {
                let value = weights.tensors.get(&name).ok_or_else(|| {
                    TrainError::InvalidConfig(format!("the weights have no tensor {name}"))
                })?;
                if value.dims() != shape {
                    return Err(TrainError::InvalidConfig(format!(
                        "{name} has shape {:?}, the architecture needs {shape:?}",
                        value.dims()
                    )));
                }
                varmap.get(shape, &name, Init::Const(0.0), DType::F32, device)?;
                let value = value.to_dtype(DType::F32)?.to_device(device)?;
                varmap.set_one(&name, &value)?;
                // The VarMap hands back a tensor sharing the variable's storage, so the
                // layer sees every optimiser update.
                Ok(varmap.get(shape, &name, Init::Const(0.0), DType::F32, device)?)
            };
            let w = get(format!("layer{i}.weight"), &[fan_out, fan_in])?;
            let b = get(format!("layer{i}.bias"), &[fan_out])?;
            layers.push(Linear::new(w, Some(b)));
        }
        Ok(Self {
            spec: spec.clone(),
            varmap,
            layers,
            device: device.clone(),
        })
    }

    /// The network's shape.
    pub fn spec(&self) -> &MlpSpec {
        &self.spec
    }

    /// The variables (for an optimiser, or to save).
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// Where the weights live.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Trainable parameters.
    pub fn parameters_count(&self) -> usize {
        self.spec.parameters_count()
    }

    /// Human-readable description of the layers.
    pub fn architecture(&self) -> String {
        self.spec.architecture()
    }

    /// A detached copy of the current weights (e.g. of the best epoch).
    pub fn weights(&self) -> Result<Weights, TrainError> {
        let data = self.varmap.data().lock().map_err(|_| {
            TrainError::InvalidConfig("the weights lock was poisoned by a panic".into())
        })?;
        let mut tensors = BTreeMap::new();
        for (name, var) in data.iter() {
            tensors.insert(name.clone(), var.as_tensor().copy()?.detach());
        }
        Ok(Weights { tensors })
    }

    /// Logits `(rows, 3)` of `x` `(rows, n_features)`; with `dropout` (training mode),
    /// each hidden activation is masked by draws from that generator.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        mut dropout: Option<&mut SplitMix64>,
    ) -> Result<Tensor, TrainError> {
        let mut h = x.clone();
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            h = candle_core::Module::forward(layer, &h)?;
            if i == last {
                break;
            }
            h = activate(&h, self.spec.activation)?;
            if let Some(rng) = dropout.as_deref_mut()
                && self.spec.dropout > 0.0
            {
                let mask = dropout_mask(rng, h.dims(), self.spec.dropout, &self.device)?;
                h = (h * mask)?;
            }
        }
        Ok(h)
    }

    /// Logits of row-major rows `x` in evaluation mode (no dropout), row-major `rows × 3`.
    pub fn logits(&self, x: &[f32]) -> Result<Vec<f32>, TrainError> {
        let n = self.spec.n_features;
        if !x.len().is_multiple_of(n) {
            return Err(TrainError::InvalidInput(format!(
                "{} values are not whole rows of {n} features",
                x.len()
            )));
        }
        let mut out = Vec::with_capacity(x.len() / n * self.spec.n_classes);
        for chunk in x.chunks(PREDICT_CHUNK * n) {
            let t = Tensor::from_slice(chunk, (chunk.len() / n, n), &self.device)?;
            out.extend(self.forward(&t, None)?.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// Class probabilities (softmax of the logits) per row.
    pub fn predict_proba(&self, x: &[f32]) -> Result<Vec<[f32; 3]>, TrainError> {
        Ok(self.logits(x)?.chunks_exact(3).map(softmax).collect())
    }

    /// The most likely class per row (the lowest index on a tie).
    pub fn predict(&self, x: &[f32]) -> Result<Vec<u32>, TrainError> {
        Ok(self.logits(x)?.chunks_exact(3).map(argmax).collect())
    }
}

/// Softmax of one row of 3 logits, computed in f64 for stability.
pub(crate) fn softmax(logits: &[f32]) -> [f32; 3] {
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let mut out = [0.0; 3];
    for (o, e) in out.iter_mut().zip(exps) {
        *o = (e / sum) as f32;
    }
    out
}

/// Index of the largest logit; the first one wins a tie.
pub(crate) fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn activate(h: &Tensor, activation: Activation) -> candle_core::Result<Tensor> {
    match activation {
        Activation::Relu => h.relu(),
        Activation::Tanh => h.tanh(),
        Activation::Sigmoid => candle_nn::ops::sigmoid(h),
        // PyTorch's default negative slope.
        Activation::LeakyRelu => candle_nn::ops::leaky_relu(h, 0.01),
        // PyTorch's default GELU is the exact (erf) form.
        Activation::Gelu => h.gelu_erf(),
    }
}

/// Inverted dropout: keep with probability `1 - p`, scaled by `1 / (1 - p)`.
fn dropout_mask(
    rng: &mut SplitMix64,
    dims: &[usize],
    p: f64,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let n = dims.iter().product();
    let keep = (1.0 / (1.0 - p)) as f32;
    let p = p as f32;
    let mask: Vec<f32> = (0..n)
        .map(|_| if rng.next_f32() >= p { keep } else { 0.0 })
        .collect();
    Tensor::from_vec(mask, dims, device)
}

/// The device to train on: CPU, or with the `cuda` feature the first CUDA GPU if one
/// is usable (falling back to CPU with a warning).
pub fn select_device() -> Device {
    #[cfg(feature = "cuda")]
    {
        match Device::cuda_if_available(0) {
            Ok(device) => return device,
            Err(e) => tracing::warn!(error = %e, "CUDA device 0 unusable, training on CPU"),
        }
    }
    Device::Cpu
}

/// `cpu`, `cuda:0`, ...
pub fn device_name(device: &Device) -> String {
    match device.location() {
        DeviceLocation::Cpu => "cpu".to_owned(),
        DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}
