//! A WAV reader for prompt files: RIFF/WAVE with a `fmt ` and a `data` chunk (other chunks,
//! such as `LIST` or `fact`, are skipped), holding 8000 Hz mono audio as 16-bit linear PCM
//! (format 1), 8-bit A-law (format 6) or 8-bit µ-law (format 7); `WAVE_FORMAT_EXTENSIBLE`
//! (0xFFFE) is read through its sub-format. Anything else is refused with an error that says
//! exactly what is wrong. Bytes are only ever read through checked slices: bad input is an
//! error, never a panic.

use crate::media::g711;

/// The one sample rate prompts are played at.
pub const SAMPLE_RATE: u32 = 8000;

const FORMAT_PCM: u16 = 1;
const FORMAT_ALAW: u16 = 6;
const FORMAT_ULAW: u16 = 7;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Why a WAV file cannot be used as a prompt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// The file does not start with `RIFF` … `WAVE`.
    #[error("not a RIFF/WAVE file (starts with \"{0}\")")]
    NotWave(String),
    /// A chunk header or body runs past the end of the file.
    #[error("truncated `{chunk}` chunk: declares {declared} bytes, {available} left in the file")]
    Truncated {
        /// The chunk's four-character id.
        chunk: String,
        /// The size its header declares.
        declared: u64,
        /// The bytes left after its header.
        available: usize,
    },
    /// The file ends in the middle of a chunk header.
    #[error("truncated chunk header at byte {0}")]
    TruncatedHeader(usize),
    /// No `fmt ` chunk before the `data` chunk (or none at all).
    #[error("no `fmt ` chunk before the audio")]
    NoFormat,
    /// No `data` chunk.
    #[error("no `data` chunk")]
    NoData,
    /// The `fmt ` chunk is shorter than the 16 bytes every format needs.
    #[error("`fmt ` chunk of {0} bytes, expected at least 16")]
    ShortFormat(usize),
    /// The format code is not PCM, A-law or µ-law.
    #[error("format code {0:#06x}, expected 1 (PCM), 6 (A-law) or 7 (µ-law)")]
    Format(u16),
    /// The sample rate is not 8000 Hz.
    #[error("sample rate {0} Hz, expected 8000")]
    SampleRate(u32),
    /// More (or fewer) than one channel.
    #[error("{0} channels, expected 1 (mono)")]
    Channels(u16),
    /// The sample size does not fit the format (16 for PCM, 8 for A-law and µ-law).
    #[error("{bits} bits per sample for format {format}, expected {expected}")]
    Bits {
        /// The format code.
        format: u16,
        /// Bits per sample the file declares.
        bits: u16,
        /// What the format needs.
        expected: u16,
    },
    /// 16-bit PCM data of an odd number of bytes.
    #[error("`data` chunk of {0} bytes is not a whole number of 16-bit samples")]
    PartialSample(usize),
}

/// Decodes a whole WAV file to linear 16-bit samples at 8000 Hz.
pub fn decode(bytes: &[u8]) -> Result<Vec<i16>, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        let start = bytes
            .iter()
            .take(12)
            .flat_map(|b| std::ascii::escape_default(*b))
            .map(char::from)
            .collect();
        return Err(WavError::NotWave(start));
    }
    // The RIFF size is not trusted: writers that stream often leave it wrong, and the chunk
    // sizes are checked one by one against the bytes actually there.
    let mut pos = 12;
    let mut format = None;
    while pos < bytes.len() {
        let header = bytes
            .get(pos..pos + 8)
            .ok_or(WavError::TruncatedHeader(pos))?;
        let id = &header[0..4];
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let body_start = pos + 8;
        let available = bytes.len() - body_start;
        let body = usize::try_from(size)
            .ok()
            .and_then(|n| bytes.get(body_start..body_start.checked_add(n)?))
            .ok_or_else(|| WavError::Truncated {
                chunk: String::from_utf8_lossy(id).into_owned(),
                declared: u64::from(size),
                available,
            })?;
        match id {
            b"fmt " => format = Some(parse_format(body)?),
            b"data" => {
                let format = format.ok_or(WavError::NoFormat)?;
                return samples(format, body);
            }
            _ => {}
        }
        // Chunks are padded to an even length; a missing pad byte at the very end is harmless.
        pos = body_start + body.len() + body.len() % 2;
    }
    Err(if format.is_some() {
        WavError::NoData
    } else {
        WavError::NoFormat
    })
}

/// The sample encodings a prompt may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Linear16,
    Alaw,
    Ulaw,
}

fn parse_format(body: &[u8]) -> Result<Encoding, WavError> {
    let u16_at = |i: usize| body.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let (Some(mut code), Some(channels), Some(rate), Some(bits)) = (
        u16_at(0),
        u16_at(2),
        body.get(4..8)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        u16_at(14),
    ) else {
        return Err(WavError::ShortFormat(body.len()));
    };
    if code == FORMAT_EXTENSIBLE {
        // cbSize (2), valid bits (2), channel mask (4), then the sub-format GUID whose first
        // two bytes are the format code.
        code = u16_at(24).ok_or(WavError::ShortFormat(body.len()))?;
    }
    let (encoding, expected) = match code {
        FORMAT_PCM => (Encoding::Linear16, 16),
        FORMAT_ALAW => (Encoding::Alaw, 8),
        FORMAT_ULAW => (Encoding::Ulaw, 8),
        other => return Err(WavError::Format(other)),
    };
    if rate != SAMPLE_RATE {
        return Err(WavError::SampleRate(rate));
    }
    if channels != 1 {
        return Err(WavError::Channels(channels));
    }
    if bits != expected {
        return Err(WavError::Bits {
            format: code,
            bits,
            expected,
        });
    }
    Ok(encoding)
}

fn samples(encoding: Encoding, data: &[u8]) -> Result<Vec<i16>, WavError> {
    Ok(match encoding {
        Encoding::Linear16 => {
            if !data.len().is_multiple_of(2) {
                return Err(WavError::PartialSample(data.len()));
            }
            data.chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect()
        }
        Encoding::Alaw => data.iter().map(|&b| g711::alaw_to_linear(b)).collect(),
        Encoding::Ulaw => data.iter().map(|&b| g711::ulaw_to_linear(b)).collect(),
    })
}

/// Builds a WAV file (tests): the given format code, rate, channels and bits, extra chunks
/// placed before `data`, and the raw data bytes.
#[cfg(test)]
pub(crate) fn build(
    code: u16,
    rate: u32,
    channels: u16,
    bits: u16,
    extra: &[(&[u8; 4], &[u8])],
    data: &[u8],
) -> Vec<u8> {
    let mut chunks = Vec::new();
    let mut push = |id: &[u8; 4], body: &[u8]| {
        chunks.extend_from_slice(id);
        chunks.extend_from_slice(&(body.len() as u32).to_le_bytes());
        chunks.extend_from_slice(body);
        if body.len() % 2 == 1 {
            chunks.push(0);
        }
    };
    let block = channels * bits / 8;
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&code.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    fmt.extend_from_slice(&block.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    push(b"fmt ", &fmt);
    for (id, body) in extra {
        push(id, body);
    }
    push(b"data", data);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + chunks.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(&chunks);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    #[test]
    fn reads_pcm_and_skips_unknown_chunks() {
        let samples = [0, 1, -1, i16::MAX, i16::MIN, 1234];
        let list: &[u8] = b"INFOISFT\x05\x00\x00\x00sox!\x00"; // odd-sized, padded
        let file = build(
            1,
            8000,
            1,
            16,
            &[(b"LIST", list), (b"fact", &[0; 4])],
            &pcm(&samples),
        );
        assert_eq!(decode(&file).unwrap(), samples);
    }

    #[test]
    fn reads_both_g711_laws() {
        let codes: Vec<u8> = (0..=255).collect();
        let u = decode(&build(7, 8000, 1, 8, &[], &codes)).unwrap();
        let a = decode(&build(6, 8000, 1, 8, &[], &codes)).unwrap();
        for c in 0..=255u8 {
            assert_eq!(u[usize::from(c)], g711::ulaw_to_linear(c));
            assert_eq!(a[usize::from(c)], g711::alaw_to_linear(c));
        }
    }

    #[test]
    fn reads_extensible_pcm() {
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&FORMAT_EXTENSIBLE.to_le_bytes());
        fmt.extend_from_slice(&1u16.to_le_bytes());
        fmt.extend_from_slice(&8000u32.to_le_bytes());
        fmt.extend_from_slice(&16000u32.to_le_bytes());
        fmt.extend_from_slice(&2u16.to_le_bytes());
        fmt.extend_from_slice(&16u16.to_le_bytes());
        fmt.extend_from_slice(&22u16.to_le_bytes()); // cbSize
        fmt.extend_from_slice(&16u16.to_le_bytes()); // valid bits
        fmt.extend_from_slice(&4u32.to_le_bytes()); // channel mask
        fmt.extend_from_slice(&1u16.to_le_bytes()); // sub-format: PCM
        fmt.extend_from_slice(&[0; 14]);
        let mut file = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        file.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        file.extend_from_slice(&fmt);
        file.extend_from_slice(b"data\x04\0\0\0\x01\0\x02\0");
        assert_eq!(decode(&file).unwrap(), [1, 2]);
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let data = pcm(&[0; 4]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                build(1, 16000, 1, 16, &[], &data),
                "sample rate 16000 Hz, expected 8000",
            ),
            (
                build(1, 8000, 2, 16, &[], &data),
                "2 channels, expected 1 (mono)",
            ),
            (
                build(3, 8000, 1, 32, &[], &data),
                "format code 0x0003, expected 1 (PCM), 6 (A-law) or 7 (µ-law)",
            ),
            (
                build(1, 8000, 1, 8, &[], &data),
                "8 bits per sample for format 1, expected 16",
            ),
            (
                build(7, 8000, 1, 16, &[], &data),
                "16 bits per sample for format 7, expected 8",
            ),
            (
                build(1, 8000, 1, 16, &[], &[0, 0, 0]),
                "`data` chunk of 3 bytes is not a whole number of 16-bit samples",
            ),
            (
                b"RIFX\0\0\0\0WAVE".to_vec(),
                r#"not a RIFF/WAVE file (starts with "RIFX\x00\x00\x00\x00WAVE")"#,
            ),
            (
                b"RIFF\0\0\0\0WAVE".to_vec(),
                "no `fmt ` chunk before the audio",
            ),
            (
                b"RIFF\0\0\0\0WAVEdata\0\0\0\0".to_vec(),
                "no `fmt ` chunk before the audio",
            ),
            (
                b"RIFF\0\0\0\0WAVEfmt \x04\0\0\0\x01\0\x01\0".to_vec(),
                "`fmt ` chunk of 4 bytes, expected at least 16",
            ),
        ];
        for (file, want) in cases {
            assert_eq!(decode(&file).unwrap_err().to_string(), want);
        }
        let ok = build(1, 8000, 1, 16, &[], &data);
        let no_data = &ok[..ok.len() - 16];
        assert_eq!(decode(no_data).unwrap_err(), WavError::NoData);
    }

    #[test]
    fn truncated_files_are_errors() {
        let file = build(1, 8000, 1, 16, &[], &pcm(&[5; 100]));
        let cut = &file[..file.len() - 10];
        assert_eq!(
            decode(cut).unwrap_err().to_string(),
            "truncated `data` chunk: declares 200 bytes, 190 left in the file"
        );
        assert_eq!(
            decode(&file[..40]).unwrap_err(),
            WavError::TruncatedHeader(36)
        );
        // A chunk claiming 4 GiB.
        let mut huge = build(1, 8000, 1, 16, &[], &[]);
        let n = huge.len();
        huge[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&huge).unwrap_err(),
            WavError::Truncated {
                declared: 4294967295,
                available: 0,
                ..
            }
        ));
    }

    #[test]
    fn every_prefix_and_byte_flip_of_a_real_prompt_is_handled() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/prompts/n_7.wav");
        let file = std::fs::read(path).unwrap();
        let full = decode(&file).unwrap();
        assert!(full.len() > 1000);
        for n in 0..file.len().min(200) {
            let _ = decode(&file[..n]);
        }
        for i in 0..64 {
            for flip in [0x01, 0x80, 0xFF] {
                let mut f = file.clone();
                f[i] ^= flip;
                let _ = decode(&f);
            }
        }
    }
}
