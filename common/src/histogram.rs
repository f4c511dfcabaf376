//! Latency histograms: microseconds, 3 significant figures, auto-resizing; serialized as HDR V2 + deflate.
//!
//! Percentiles only ever come from merged histograms; [`merge`] is exact (bucket counts add).

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// Significant figures kept by every latency histogram.
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// A latency histogram in microseconds.
pub type LatencyHistogram = Histogram<u64>;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("histogram does not serialize: {0:?}")]
    Serialize(hdrhistogram::serialization::V2DeflateSerializeError),
    #[error("histogram bytes do not decode: {0:?}")]
    Deserialize(hdrhistogram::serialization::DeserializeError),
    #[error("histogram text is not base64: {0}")]
    Base64(String),
    #[error("histograms do not merge: {0:?}")]
    Merge(hdrhistogram::errors::AdditionError),
}

/// An empty auto-resizing histogram with [`SIGNIFICANT_FIGURES`].
pub fn new_histogram() -> LatencyHistogram {
    let mut histogram =
        Histogram::new(SIGNIFICANT_FIGURES).expect("3 significant figures is a valid precision");
    histogram.auto(true);
    histogram
}

/// HDR V2 + deflate bytes of `histogram`.
pub fn encode(histogram: &LatencyHistogram) -> Result<Vec<u8>, CodecError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(CodecError::Serialize)?;
    Ok(bytes)
}

/// Decodes HDR V2 (deflated or not) bytes. Empty input decodes to an empty histogram.
pub fn decode(bytes: &[u8]) -> Result<LatencyHistogram, CodecError> {
    if bytes.is_empty() {
        return Ok(new_histogram());
    }
    let mut histogram: LatencyHistogram = Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .map_err(CodecError::Deserialize)?;
    histogram.auto(true);
    Ok(histogram)
}

/// Adds every count of `part` into `total`.
pub fn merge(total: &mut LatencyHistogram, part: &LatencyHistogram) -> Result<(), CodecError> {
    total.add(part).map_err(CodecError::Merge)
}

/// Decodes `bytes` and merges them into `total`.
pub fn merge_encoded(total: &mut LatencyHistogram, bytes: &[u8]) -> Result<(), CodecError> {
    let part = decode(bytes)?;
    merge(total, &part)
}

/// Microseconds to milliseconds, for reports.
pub fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Base64 (standard alphabet) of the HDR V2 + deflate bytes, as report.json carries histograms.
pub fn encode_base64(histogram: &LatencyHistogram) -> Result<String, CodecError> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD.encode(encode(histogram)?))
}

/// Decodes what [`encode_base64`] produced.
pub fn decode_base64(text: &str) -> Result<LatencyHistogram, CodecError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| CodecError::Base64(e.to_string()))?;
    decode(&bytes)
}

#[cfg(test)]
mod tests;
