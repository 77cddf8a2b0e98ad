//! candle-transformers' `BertModel`: the reference forward, and the path that runs on
//! a GPU. E5S1 images are dequantised to f32 and renamed to Hugging Face names.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use super::Encoder;
use super::e5s1::E5s1;
use crate::error::{Error, Result};

pub struct CandleBert {
    model: BertModel,
    device: Device,
    dim: usize,
    max_len: usize,
    vocab: usize,
    pad_id: u32,
}

impl CandleBert {
    pub fn from_e5s1(image: &E5s1, device: &Device) -> Result<Self> {
        let c = image.config;
        let h = c.hidden;
        let mut t: HashMap<String, Tensor> = HashMap::new();
        let mut put = |name: String, data: Vec<f32>, shape: &[usize]| -> Result<()> {
            t.insert(name, Tensor::from_vec(data, shape, device)?);
            Ok(())
        };
        put("embeddings.word_embeddings.weight".into(), image.f32("emb.word")?, &[c.vocab, h])?;
        put(
            "embeddings.position_embeddings.weight".into(),
            image.f32("emb.pos")?,
            &[c.max_positions, h],
        )?;
        put(
            "embeddings.token_type_embeddings.weight".into(),
            image.type_embeddings()?,
            &[c.type_vocab.max(1), h],
        )?;
        put("embeddings.LayerNorm.weight".into(), image.f32("emb.ln.w")?, &[h])?;
        put("embeddings.LayerNorm.bias".into(), image.f32("emb.ln.b")?, &[h])?;
        for l in 0..c.layers {
            let p = format!("encoder.layer.{l}.");
            for (short, hf, rows, cols) in [
                ("q", "attention.self.query", h, h),
                ("k", "attention.self.key", h, h),
                ("v", "attention.self.value", h, h),
                ("ao", "attention.output.dense", h, h),
                ("fi", "intermediate.dense", c.ffn, h),
                ("fo", "output.dense", h, c.ffn),
            ] {
                put(format!("{p}{hf}.weight"), image.f32(&format!("l{l}.{short}.w"))?, &[rows, cols])?;
                put(format!("{p}{hf}.bias"), image.f32(&format!("l{l}.{short}.b"))?, &[rows])?;
            }
            for (short, hf) in [("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")] {
                put(format!("{p}{hf}.weight"), image.f32(&format!("l{l}.{short}.w"))?, &[h])?;
                put(format!("{p}{hf}.bias"), image.f32(&format!("l{l}.{short}.b"))?, &[h])?;
            }
        }
        let config: Config = serde_json::from_value(serde_json::json!({
            "vocab_size": c.vocab, "hidden_size": h, "num_hidden_layers": c.layers,
            "num_attention_heads": c.heads, "intermediate_size": c.ffn, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.0, "max_position_embeddings": c.max_positions,
            "type_vocab_size": c.type_vocab.max(1), "initializer_range": 0.02,
            "layer_norm_eps": c.layer_norm_eps as f64, "pad_token_id": 1, "classifier_dropout": null, "model_type": "bert"
        }))
        .map_err(|e| Error::model(&image.path, e.to_string()))?;
        let vb = VarBuilder::from_tensors(t, DType::F32, device);
        let model = BertModel::load(vb, &config).map_err(|e| Error::model(&image.path, e.to_string()))?;
        Ok(CandleBert {
            model,
            device: device.clone(),
            dim: h,
            max_len: c.max_positions,
            vocab: c.vocab,
            pad_id: 1,
        })
    }

    pub fn from_hf_dir(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| Error::model(&cfg_path, format!("not a BERT config: {e}")))?;
        let weights = dir.join("model.safetensors");
        let bytes = std::fs::read(&weights).map_err(|e| Error::io(&weights, e))?;
        // Parse once ourselves so a truncated or foreign file is a clear error.
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::model(&weights, format!("not a valid safetensors file: {e}")))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device).map_err(|e| Error::model(&weights, e.to_string()))?;
        let model = BertModel::load(vb, &config).map_err(|e| Error::model(&weights, format!("weights do not fit config.json: {e}")))?;
        Ok(CandleBert {
            model,
            device: device.clone(),
            dim: config.hidden_size,
            max_len: config.max_position_embeddings,
            vocab: config.vocab_size,
            pad_id: config.pad_token_id as u32,
        })
    }
}

impl Encoder for CandleBert {
    fn dim(&self) -> usize {
        self.dim
    }
    fn max_len(&self) -> usize {
        self.max_len
    }
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn backend(&self) -> &'static str {
        "candle-bert"
    }

    fn forward(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let b = batch.len();
        let t = batch.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut ids = vec![self.pad_id; b * t];
        let mut mask = vec![0f32; b * t];
        for (i, s) in batch.iter().enumerate() {
            ids[i * t..i * t + s.len()].copy_from_slice(s);
            mask[i * t..i * t + s.len()].iter_mut().for_each(|m| *m = 1.0);
        }
        let ids = Tensor::from_vec(ids, (b, t), &self.device)?;
        let mask = Tensor::from_vec(mask, (b, t), &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        let m = mask.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?;
        let pooled = summed.broadcast_div(&counts)?;
        let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?;
        let unit = pooled.broadcast_div(&norm)?;
        Ok(unit.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }
}
