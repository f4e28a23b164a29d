//! Positions and wiring: GPT-2's learned positions or GPT-NeoX's rotary ones.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// How a model places positions and wires its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// GPT-2: learned position embeddings added to the token embeddings; each block is
    /// `x + attn(ln1(x))`, then `+ mlp(ln2(.))`.
    #[default]
    Gpt2,
    /// GPT-NeoX (Hugging Face's `GPTNeoXForCausalLM`): no position embeddings; rotary
    /// positions on the first `rotary_dims` dimensions of every query and key head
    /// (NeoX's rotate-half pairing, frequencies `base^(-2i/rotary_dims)`); with
    /// `parallel`, each block is `x + attn(ln1(x)) + mlp(ln2(x))`.
    Neox {
        /// Rotated dimensions per head (even, at most the head dimension).
        rotary_dims: usize,
        /// The rotary base (`rope_theta`).
        rotary_base: u32,
        /// Attention and MLP read the same input (`use_parallel_residual`).
        parallel: bool,
    },
}

impl Layout {
    /// Whether this is the default, GPT-2.
    pub fn is_gpt2(&self) -> bool {
        *self == Layout::Gpt2
    }

    /// The rotary settings, for GPT-NeoX.
    pub(super) fn rotary(&self) -> Option<Rotary> {
        match *self {
            Layout::Gpt2 => None,
            Layout::Neox {
                rotary_dims,
                rotary_base,
                ..
            } => (rotary_dims > 0).then_some(Rotary {
                dims: rotary_dims,
                base: rotary_base as f64,
            }),
        }
    }
}

/// Rotary position embedding of part of each attention head (GPT-NeoX).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotary {
    /// Rotated dimensions per head (even).
    pub dims: usize,
    /// Base of the frequencies.
    pub base: f64,
}

/// `cos` and `sin` of the rotary angles of positions `0..t`, `[1, 1, t, dims]` each.
#[derive(Debug, Clone)]
pub struct RotaryTables {
    /// Cosines.
    pub cos: Tensor<4>,
    /// Sines.
    pub sin: Tensor<4>,
}

impl Rotary {
    /// `cos` and `sin` of the angles of positions 0..t, `[1, 1, t, dims]` each: position
    /// `p`, dimension `j` has angle `p * base^(-2 (j mod dims/2) / dims)` (the two halves
    /// repeat the frequencies, as NeoX pairs dimension `j` with `j + dims/2`).
    pub fn tables(&self, t: usize, device: &Device) -> RotaryTables {
        let half = self.dims / 2;
        let mut cos = Vec::with_capacity(t * self.dims);
        let mut sin = Vec::with_capacity(t * self.dims);
        for p in 0..t {
            for j in 0..self.dims {
                let i = j % half;
                // As the reference computes it: inverse frequency in f32, then the angle.
                let inv = (1.0 / self.base.powf((2 * i) as f64 / self.dims as f64)) as f32;
                let angle = p as f32 * inv;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let shape = [1, 1, t, self.dims];
        RotaryTables {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
        }
    }

    /// Rotate the first `dims` dimensions of `x` `[B, H, T, hd]`; the rest pass through.
    pub fn apply(&self, x: Tensor<4>, tables: &RotaryTables) -> Tensor<4> {
        let [_, _, _, hd] = x.dims();
        let half = self.dims / 2;
        let rot = x.clone().narrow(3, 0, self.dims);
        let x1 = rot.clone().narrow(3, 0, half);
        let x2 = rot.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![-x2, x1], 3);
        let out = rot * tables.cos.clone() + rotated * tables.sin.clone();
        if self.dims == hd {
            out
        } else {
            Tensor::cat(vec![out, x.narrow(3, self.dims, hd - self.dims)], 3)
        }
    }
}
