//! Latency histograms: microseconds, 3 significant figures, auto-resizing; serialized as HDR V2 + deflate.
//!
//! Percentiles only ever come from merged histograms; [`merge`] is exact (bucket counts add). Bytes from the wire
//! are decoded within bounds ([`decode`]): a few bytes claiming gigabytes are refused before anything is allocated.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// Significant figures kept by every latency histogram.
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// A latency histogram in microseconds.
pub type LatencyHistogram = Histogram<u64>;

/// Largest encoded histogram accepted, bytes.
pub const MAX_ENCODED: usize = 1 << 20;
/// Largest uncompressed V2 encoding accepted, bytes (a 3-digit histogram up to [`MAX_VALUE`] needs far less).
pub const MAX_DECODED: usize = 4 << 20;
/// Largest value a histogram may track, microseconds: about 100 days.
pub const MAX_VALUE: u64 = 1 << 43;
/// Most values one decoded histogram may hold (an interval of one agent: far beyond any real rate).
pub const MAX_COUNT: u64 = 1 << 36;

/// V2 cookies (uncompressed and deflated), as `hdrhistogram` writes them.
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// Cookie, payload length, normalizing offset, digits, lowest, highest, integer-to-double ratio.
const V2_HEADER: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("histogram bytes are out of bounds: {0}")]
    OutOfBounds(&'static str),
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

/// Decodes HDR V2 (deflated or not) bytes. Empty input decodes to an empty histogram. The encoding is checked
/// before anything is allocated by what it claims: at most [`MAX_ENCODED`] bytes, inflating to at most
/// [`MAX_DECODED`], 3 significant figures, values up to [`MAX_VALUE`], a payload no longer than the bytes that
/// carry it; and the decoded histogram holds at most [`MAX_COUNT`] values.
pub fn decode(bytes: &[u8]) -> Result<LatencyHistogram, CodecError> {
    if bytes.is_empty() {
        return Ok(new_histogram());
    }
    if bytes.len() > MAX_ENCODED {
        return Err(CodecError::OutOfBounds("larger than the encoding limit"));
    }
    let inflated;
    let plain: &[u8] = match be_u32(bytes, 0) {
        Some(V2_COMPRESSED_COOKIE) => {
            let length =
                be_u32(bytes, 4).ok_or(CodecError::OutOfBounds("truncated header"))? as usize;
            let deflated = bytes
                .get(8..8usize.saturating_add(length))
                .ok_or(CodecError::OutOfBounds("deflated length beyond the bytes"))?;
            inflated = inflate(deflated)?;
            &inflated
        }
        Some(V2_COOKIE) => bytes,
        _ => return Err(CodecError::OutOfBounds("not an HDR V2 encoding")),
    };
    check_v2_header(plain)?;
    let mut histogram: LatencyHistogram = Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(plain))
        .map_err(CodecError::Deserialize)?;
    if histogram.len() > MAX_COUNT {
        return Err(CodecError::OutOfBounds(
            "more values than one histogram may hold",
        ));
    }
    histogram.auto(true);
    Ok(histogram)
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Inflates zlib data, refusing more than [`MAX_DECODED`] bytes of output.
fn inflate(deflated: &[u8]) -> Result<Vec<u8>, CodecError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(deflated)
        .take(MAX_DECODED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| CodecError::OutOfBounds("deflated data does not inflate"))?;
    if out.len() > MAX_DECODED {
        return Err(CodecError::OutOfBounds("inflates beyond the limit"));
    }
    Ok(out)
}

/// The uncompressed V2 header: the cookie, a payload that fits in the bytes, 3 digits, values within bounds.
fn check_v2_header(plain: &[u8]) -> Result<(), CodecError> {
    let field = |at, len| -> Result<u64, CodecError> {
        let value = if len == 4 {
            be_u32(plain, at).map(u64::from)
        } else {
            be_u64(plain, at)
        };
        value.ok_or(CodecError::OutOfBounds("truncated header"))
    };
    if field(0, 4)? != u64::from(V2_COOKIE) {
        return Err(CodecError::OutOfBounds("not an HDR V2 encoding"));
    }
    let payload = field(4, 4)?;
    if payload > (plain.len().saturating_sub(V2_HEADER)) as u64 {
        return Err(CodecError::OutOfBounds("payload length beyond the bytes"));
    }
    if field(12, 4)? != u64::from(SIGNIFICANT_FIGURES) {
        return Err(CodecError::OutOfBounds("not 3 significant figures"));
    }
    let (lowest, highest) = (field(16, 8)?, field(24, 8)?);
    if lowest < 1 || highest > MAX_VALUE || highest < lowest.saturating_mul(2) {
        return Err(CodecError::OutOfBounds("value range beyond the limit"));
    }
    Ok(())
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
