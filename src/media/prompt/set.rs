//! The prompt set: every clip of a prompt folder, loaded once at start-up and kept encoded in
//! both G.711 laws as shared `Arc<[u8]>` payload bytes, so rendering a sentence for a call
//! copies no audio — a [`Clip`] is a short list of shared slices and silences.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::speak::{self, Piece};
use super::wav::{self, WavError};
use super::{names, Say};
use crate::media::g711;
use crate::media::sdp::Codec;

/// Largest prompt file read (about 10 minutes of 8 kHz 16-bit audio); bigger is a mistake.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Samples a millisecond at 8000 Hz.
const SAMPLES_PER_MS: usize = 8;

/// The G.711 law a clip is encoded in. The SDP [`Codec`] also has telephone-event, which
/// carries no audio, so prompts use this two-law enum ([`Law::from_codec`] converts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// G.711 µ-law (PCMU, static payload type 0).
    Pcmu,
    /// G.711 A-law (PCMA, static payload type 8).
    Pcma,
}

impl Law {
    /// The law of an SDP codec; `None` for telephone-event.
    pub fn from_codec(codec: Codec) -> Option<Law> {
        match codec {
            Codec::Pcmu => Some(Law::Pcmu),
            Codec::Pcma => Some(Law::Pcma),
            Codec::TelephoneEvent => None,
        }
    }

    /// The SDP codec of this law.
    pub fn codec(self) -> Codec {
        match self {
            Law::Pcmu => Codec::Pcmu,
            Law::Pcma => Codec::Pcma,
        }
    }

    /// The static RTP payload type (RFC 3551): 0 or 8.
    pub fn static_pt(self) -> u8 {
        match self {
            Law::Pcmu => 0,
            Law::Pcma => 8,
        }
    }

    /// The byte of a silent sample: 0xFF (µ-law) or 0xD5 (A-law).
    pub fn silence(self) -> u8 {
        match self {
            Law::Pcmu => 0xFF,
            Law::Pcma => 0xD5,
        }
    }

    /// Encodes one linear sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Pcmu => g711::linear_to_ulaw(sample),
            Law::Pcma => g711::linear_to_alaw(sample),
        }
    }
}

/// One run of a [`Clip`]: shared encoded audio, or silence of a number of samples.
#[derive(Clone)]
pub enum Segment {
    /// Encoded audio, one byte a sample, shared with the prompt set and other calls.
    Audio(Arc<[u8]>),
    /// This many samples of silence.
    Silence(usize),
}

impl Segment {
    /// Its length in samples (= bytes).
    pub fn len(&self) -> usize {
        match self {
            Segment::Audio(a) => a.len(),
            Segment::Silence(n) => *n,
        }
    }

    /// Whether it holds no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Audio(a) => write!(f, "Audio({} samples)", a.len()),
            Segment::Silence(n) => write!(f, "Silence({n} samples)"),
        }
    }
}

/// A rendered sentence in one law: shared audio slices and silences, cheap to clone and to
/// hand to a [`Player`](super::Player). Its length is known up front.
#[derive(Debug, Clone)]
pub struct Clip {
    law: Law,
    segments: Vec<Segment>,
    samples: usize,
}

impl Clip {
    /// A clip with nothing in it.
    pub fn empty(law: Law) -> Clip {
        Clip {
            law,
            segments: Vec::new(),
            samples: 0,
        }
    }

    /// Appends shared encoded audio (already in this clip's law).
    pub fn push_audio(&mut self, audio: Arc<[u8]>) {
        if !audio.is_empty() {
            self.samples += audio.len();
            self.segments.push(Segment::Audio(audio));
        }
    }

    /// Appends `samples` samples of silence.
    pub fn push_silence(&mut self, samples: usize) {
        if samples > 0 {
            self.samples += samples;
            self.segments.push(Segment::Silence(samples));
        }
    }

    /// The law its audio is encoded in.
    pub fn law(&self) -> Law {
        self.law
    }

    /// Its runs, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Its length in samples.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Its length as time (8000 samples a second).
    pub fn duration(&self) -> Duration {
        Duration::from_micros((self.samples as u64).saturating_mul(125))
    }

    /// The frames of `frame_samples` it takes, the last one padded with silence.
    pub fn frames(&self, frame_samples: usize) -> usize {
        self.samples.div_ceil(frame_samples.max(1))
    }
}

/// Why a prompt folder cannot be loaded. Each names the file and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// A prompt the set needs has no file.
    #[error("prompt file {} is missing", .path.display())]
    Missing {
        /// The file looked for.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("prompt file {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("prompt file {}: {size} bytes, more than the {MAX_FILE_BYTES} a prompt may hold", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file is not a WAV holdless can play.
    #[error("prompt file {}: {problem}", .path.display())]
    Wav {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: WavError,
    },
    /// The file holds no samples.
    #[error("prompt file {}: holds no audio", .path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// One prompt in both laws.
#[derive(Clone)]
struct Encoded {
    pcmu: Arc<[u8]>,
    pcma: Arc<[u8]>,
}

impl Encoded {
    fn get(&self, law: Law) -> &Arc<[u8]> {
        match law {
            Law::Pcmu => &self.pcmu,
            Law::Pcma => &self.pcma,
        }
    }
}

/// Every prompt of a folder, encoded once per law. Shared by all calls (wrap it in an `Arc`).
pub struct PromptSet {
    dir: PathBuf,
    clips: HashMap<&'static str, Encoded>,
}

impl fmt::Debug for PromptSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromptSet")
            .field("dir", &self.dir)
            .field("clips", &self.clips.len())
            .field("duration", &self.total_duration())
            .finish()
    }
}

impl PromptSet {
    /// Loads `<dir>/<name>.wav` for every name of [`names::ALL`]. Every file must exist and be
    /// an 8 kHz mono WAV (16-bit PCM, µ-law or A-law) holding some audio.
    pub fn load(dir: &Path) -> Result<PromptSet, PromptError> {
        let mut clips = HashMap::with_capacity(names::ALL.len());
        for name in names::ALL {
            let path = dir.join(format!("{name}.wav"));
            let samples = read_samples(&path)?;
            let encode =
                |law: Law| -> Arc<[u8]> { samples.iter().map(|&s| law.encode(s)).collect() };
            clips.insert(
                name,
                Encoded {
                    pcmu: encode(Law::Pcmu),
                    pcma: encode(Law::Pcma),
                },
            );
        }
        Ok(PromptSet {
            dir: dir.to_path_buf(),
            clips,
        })
    }

    /// The folder it was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many clips it holds.
    pub fn len(&self) -> usize {
        self.clips.len()
    }

    /// Whether it holds no clips (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.clips.is_empty()
    }

    /// The encoded audio of one prompt in one law, if the set has it.
    pub fn get(&self, name: &str, law: Law) -> Option<&Arc<[u8]>> {
        self.clips.get(name).map(|e| e.get(law))
    }

    /// The length of all its clips together.
    pub fn total_duration(&self) -> Duration {
        let samples: usize = self.clips.values().map(|e| e.pcmu.len()).sum();
        Duration::from_micros((samples as u64).saturating_mul(125))
    }

    /// Renders a sentence in one law: each clip shared, each pause as silence. A
    /// [`Say::Prompt`] naming a clip the set does not hold is skipped (and logged).
    pub fn render(&self, say: &[Say], law: Law) -> Clip {
        let mut clip = Clip::empty(law);
        for piece in speak::pieces(say) {
            match piece {
                Piece::Clip(name) => match self.clips.get(name) {
                    Some(e) => clip.push_audio(Arc::clone(e.get(law))),
                    None => tracing::warn!(prompt = name, "no such prompt; skipped"),
                },
                Piece::Pause(ms) => {
                    clip.push_silence((ms as usize).saturating_mul(SAMPLES_PER_MS));
                }
            }
        }
        clip
    }
}

fn read_samples(path: &Path) -> Result<Vec<i16>, PromptError> {
    let read_err = |error: std::io::Error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            PromptError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            PromptError::Read {
                path: path.to_path_buf(),
                error,
            }
        }
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_FILE_BYTES {
        return Err(PromptError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    let samples = wav::decode(&bytes).map_err(|problem| PromptError::Wav {
        path: path.to_path_buf(),
        problem,
    })?;
    if samples.is_empty() {
        return Err(PromptError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/prompts")
    }

    #[test]
    fn loads_the_real_set_and_encodes_both_laws() {
        let set = PromptSet::load(&real_dir()).unwrap();
        assert_eq!(set.len(), names::ALL.len());
        let bytes = std::fs::read(real_dir().join("welcome.wav")).unwrap();
        let samples = wav::decode(&bytes).unwrap();
        let u = set.get(names::WELCOME, Law::Pcmu).unwrap();
        let a = set.get(names::WELCOME, Law::Pcma).unwrap();
        assert_eq!(u.len(), samples.len());
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(u[i], g711::linear_to_ulaw(*s));
            assert_eq!(a[i], g711::linear_to_alaw(*s));
        }
        let dbg = format!("{set:?}");
        assert!(dbg.starts_with("PromptSet { dir: "), "{dbg}");
        assert!(dbg.contains("clips: 81"), "{dbg}");
        assert!(dbg.len() < 300, "{dbg}");
    }

    #[test]
    fn the_prompt_list_matches_the_names() {
        let list = std::fs::read_to_string(real_dir().join("prompts.txt")).unwrap();
        let stems: Vec<&str> = list
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.split('|').next().unwrap())
            .collect();
        assert_eq!(stems, names::ALL);
    }

    #[test]
    fn render_shares_the_audio() {
        let set = PromptSet::load(&real_dir()).unwrap();
        let say = [
            Say::Prompt(names::WAIT_IS_ABOUT),
            Say::Number(25),
            Say::Pause(250),
            Say::Prompt(names::MINUTES),
            Say::Prompt("no_such_prompt"),
        ];
        let clip = set.render(&say, Law::Pcma);
        let parts: Vec<String> = clip.segments().iter().map(|s| format!("{s:?}")).collect();
        let len = |n| set.get(n, Law::Pcma).unwrap().len();
        assert_eq!(
            parts,
            [
                format!("Audio({} samples)", len(names::WAIT_IS_ABOUT)),
                format!("Audio({} samples)", len("n_20")),
                format!("Audio({} samples)", len("n_5")),
                "Silence(2000 samples)".to_string(),
                format!("Audio({} samples)", len(names::MINUTES)),
            ]
        );
        let Segment::Audio(first) = &clip.segments()[0] else {
            panic!("audio first")
        };
        assert!(Arc::ptr_eq(
            first,
            set.get(names::WAIT_IS_ABOUT, Law::Pcma).unwrap()
        ));
        let total = len(names::WAIT_IS_ABOUT) + len("n_20") + len("n_5") + 2000 + len("minutes");
        assert_eq!(clip.samples(), total);
        assert_eq!(clip.duration(), Duration::from_micros(total as u64 * 125));
        assert_eq!(clip.law(), Law::Pcma);
    }

    #[test]
    fn load_errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        for name in names::ALL {
            std::fs::copy(
                real_dir().join(format!("{name}.wav")),
                dir.path().join(format!("{name}.wav")),
            )
            .unwrap();
        }
        assert!(PromptSet::load(dir.path()).is_ok());

        let oh = dir.path().join("oh.wav");
        std::fs::remove_file(&oh).unwrap();
        let e = PromptSet::load(dir.path()).unwrap_err().to_string();
        assert_eq!(e, format!("prompt file {} is missing", oh.display()));

        let stereo = wav::build(1, 8000, 2, 16, &[], &[0; 8]);
        std::fs::write(&oh, stereo).unwrap();
        let e = PromptSet::load(dir.path()).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "prompt file {}: 2 channels, expected 1 (mono)",
                oh.display()
            )
        );

        std::fs::write(&oh, wav::build(7, 8000, 1, 8, &[], &[])).unwrap();
        let e = PromptSet::load(dir.path()).unwrap_err().to_string();
        assert_eq!(e, format!("prompt file {}: holds no audio", oh.display()));

        // A µ-law file is accepted and re-encoded to A-law.
        std::fs::write(&oh, wav::build(7, 8000, 1, 8, &[], &[0x80, 0xFF])).unwrap();
        let set = PromptSet::load(dir.path()).unwrap();
        assert_eq!(&set.get("oh", Law::Pcmu).unwrap()[..], [0x80, 0xFF]);
        assert_eq!(
            &set.get("oh", Law::Pcma).unwrap()[..],
            [g711::ULAW_TO_ALAW[0x80], g711::ULAW_TO_ALAW[0xFF]]
        );
    }

    #[test]
    fn law_helpers() {
        assert_eq!(Law::from_codec(Codec::Pcmu), Some(Law::Pcmu));
        assert_eq!(Law::from_codec(Codec::TelephoneEvent), None);
        assert_eq!(Law::Pcma.codec(), Codec::Pcma);
        assert_eq!(Law::Pcma.static_pt(), 8);
        assert_eq!(g711::ulaw_to_linear(Law::Pcmu.silence()), 0);
        assert_eq!(Law::Pcma.encode(0), Law::Pcma.silence());
        let mut c = Clip::empty(Law::Pcmu);
        c.push_silence(161);
        assert_eq!(c.frames(160), 2);
        c.push_silence(0);
        c.push_audio(Arc::from(Vec::new()));
        assert_eq!(c.segments().len(), 1);
    }
}
