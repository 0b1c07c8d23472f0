//! The `[media]` configuration section: where holdless binds and advertises media, its port
//! range, the media timeouts and the latching policy.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::key_error::KeyError;

/// Which source addresses a stream may latch to (symmetric RTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Latching {
    /// Only packets from the IP address the side's SDP advertised (any port, for NAT port
    /// rewriting). The default: nobody else can take over the stream.
    Strict,
    /// Any source (callers behind NAT whose SDP carries a private address). Blind latching:
    /// whoever sends first, or after the real sender pauses, can hijack or inject into the
    /// stream. Use only where the media path is trusted.
    Any,
}

/// `[media]` as written in the file; [`MediaSettings::validate`] makes it a [`MediaConfig`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MediaSettings {
    /// IP address media sockets bind to, and the one written in SDP unless
    /// `advertised_address` is set.
    pub address: String,
    /// IP address written in SDP `c=` and `o=` when it differs from the bound one (1:1 NAT).
    pub advertised_address: Option<String>,
    /// Lowest port of the media range.
    pub port_min: u16,
    /// Highest port of the media range.
    pub port_max: u16,
    /// Seconds without RTP from a side before the call ends.
    pub timeout_secs: u64,
    /// The same while the call is on hold (any direction other than sendrecv).
    pub hold_timeout_secs: u64,
    /// `strict` or `any`.
    pub latching: Latching,
    /// Media threads relaying packets; 0 (the default) is one per CPU.
    pub threads: usize,
    /// Real-time (`SCHED_FIFO`) priority of the media threads, 1–99; 0 (the default) keeps
    /// the normal scheduler.
    pub realtime_priority: u8,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            address: "127.0.0.1".into(),
            advertised_address: None,
            port_min: 30000,
            port_max: 40000,
            timeout_secs: 30,
            hold_timeout_secs: 3600,
            latching: Latching::Strict,
            threads: 0,
            realtime_priority: 0,
        }
    }
}

/// Highest `SCHED_FIFO` priority (Linux).
pub const MAX_REALTIME_PRIORITY: u8 = 99;

/// Most media threads accepted: more than the CPUs only adds switching.
pub const MAX_MEDIA_THREADS: usize = 64;

/// The validated media configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address the media sockets bind to.
    pub bind: IpAddr,
    /// Address written in SDP.
    pub advertised: IpAddr,
    /// Lowest port of the range.
    pub port_min: u16,
    /// Highest port of the range.
    pub port_max: u16,
    /// No RTP from a side for this long ends the call.
    pub timeout: Duration,
    /// The same while on hold.
    pub hold_timeout: Duration,
    /// The latching policy.
    pub latching: Latching,
    /// Media threads; 0 is one per CPU.
    pub threads: usize,
    /// `SCHED_FIFO` priority of the media threads; 0: the normal scheduler.
    pub realtime_priority: u8,
}

impl MediaConfig {
    /// RTP/RTCP port pairs in the range (even RTP port, RTCP the next).
    pub fn port_pairs(&self) -> usize {
        (u32::from(self.port_max) + 1).saturating_sub(self.first_rtp_port()) as usize / 2
    }

    /// The lowest even port of the range: where the first RTP/RTCP pair starts.
    fn first_rtp_port(&self) -> u32 {
        u32::from(self.port_min) + u32::from(self.port_min % 2)
    }

    /// Engine `index` of `count`'s own slice of the port range: the pairs split evenly,
    /// the last engine taking what is left over. Each engine then allocates without
    /// locking; `count` must not exceed [`MediaConfig::port_pairs`].
    pub fn ports_for_engine(&self, index: usize, count: usize) -> MediaConfig {
        let count = count.clamp(1, self.port_pairs().max(1));
        let per = (self.port_pairs() / count) as u32;
        let min = self.first_rtp_port() + 2 * per * index as u32;
        let max = if index + 1 >= count {
            u32::from(self.port_max)
        } else {
            min + 2 * per - 1
        };
        MediaConfig {
            port_min: u16::try_from(min).unwrap_or(self.port_min),
            port_max: u16::try_from(max).unwrap_or(self.port_max),
            ..self.clone()
        }
    }
}

impl Default for MediaConfig {
    /// Loopback, ports 30000–40000, 30 s / 1 h, strict latching, a media thread per CPU.
    fn default() -> Self {
        let ip = IpAddr::from([127, 0, 0, 1]);
        MediaConfig {
            bind: ip,
            advertised: ip,
            port_min: 30000,
            port_max: 40000,
            timeout: Duration::from_secs(30),
            hold_timeout: Duration::from_secs(3600),
            latching: Latching::Strict,
            threads: 0,
            realtime_priority: 0,
        }
    }
}

/// Lowest port of the media range: below 1024 are privileged, well-known services.
pub const MIN_MEDIA_PORT: u16 = 1024;

impl MediaSettings {
    /// Checks every key, pushing one error per problem (keys `media.*`); the typed
    /// configuration when there was none.
    pub fn validate(&self, errors: &mut Vec<KeyError>) -> Option<MediaConfig> {
        let before = errors.len();
        let mut err = |key: &str, message: String| {
            errors.push(KeyError {
                key: format!("media.{key}"),
                message,
            })
        };
        let bind = parse_ip(&self.address, "address", &mut err);
        let advertised = match &self.advertised_address {
            Some(a) => parse_ip(a, "advertised_address", &mut err),
            None => bind,
        };
        if self.port_min < MIN_MEDIA_PORT {
            err("port_min", format!("must be at least {MIN_MEDIA_PORT}"));
        }
        // One call needs two pairs: an even RTP port and its RTCP port per side.
        let first = u32::from(self.port_min) + u32::from(self.port_min % 2);
        let pairs = (first..u32::from(self.port_max)).step_by(2).count();
        if self.port_max < self.port_min || pairs < 2 {
            err(
                "port_max",
                format!(
                    "the range {}-{} must hold at least 4 ports (2 even/odd pairs, one call)",
                    self.port_min, self.port_max
                ),
            );
        }
        if self.timeout_secs == 0 {
            err("timeout_secs", "must be above 0".into());
        }
        if self.hold_timeout_secs < self.timeout_secs {
            err("hold_timeout_secs", "must be at least timeout_secs".into());
        }
        if self.threads > MAX_MEDIA_THREADS {
            err("threads", format!("at most {MAX_MEDIA_THREADS}"));
        }
        if self.realtime_priority > MAX_REALTIME_PRIORITY {
            err(
                "realtime_priority",
                format!("0 (off) or a SCHED_FIFO priority 1-{MAX_REALTIME_PRIORITY}"),
            );
        }
        if errors.len() > before {
            return None;
        }
        Some(MediaConfig {
            bind: bind?,
            advertised: advertised?,
            port_min: self.port_min,
            port_max: self.port_max,
            timeout: Duration::from_secs(self.timeout_secs),
            hold_timeout: Duration::from_secs(self.hold_timeout_secs),
            latching: self.latching,
            threads: self.threads,
            realtime_priority: self.realtime_priority,
        })
    }
}

fn parse_ip(v: &str, key: &str, err: &mut impl FnMut(&str, String)) -> Option<IpAddr> {
    match v.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
            err(
                key,
                format!("{v} cannot be written in SDP: give the host's unicast address"),
            );
            None
        }
        Ok(ip) => Some(ip),
        Err(_) => {
            err(key, format!("not an IP address: {v:?}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> MediaSettings {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn engines_split_the_port_range_without_overlap() {
        let cfg = MediaConfig {
            port_min: 30001,
            port_max: 30999,
            ..MediaConfig::default()
        };
        assert_eq!(cfg.port_pairs(), 499);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..3 {
            let part = cfg.ports_for_engine(i, 3);
            assert_eq!(part.port_min % 2, 0, "{part:?}");
            let pool = crate::media::pool::PortPool::new(part.port_min, part.port_max, 1);
            for p in (part.port_min..part.port_max).step_by(2) {
                assert!(seen.insert(p), "port {p} given to two engines");
                assert!(p < cfg.port_max);
            }
            assert!(pool.capacity() >= 166, "engine {i}: {}", pool.capacity());
        }
        assert_eq!(seen.len(), 499, "every pair is someone's");
        let whole = MediaConfig::default();
        assert_eq!(whole.ports_for_engine(0, 1), whole);
    }

    #[test]
    fn defaults_are_loopback_and_valid() {
        let mut errors = Vec::new();
        let cfg = MediaSettings::default().validate(&mut errors).unwrap();
        assert!(errors.is_empty());
        assert_eq!(cfg, MediaConfig::default());
    }

    #[test]
    fn settings_read_from_toml() {
        let s = from_toml(
            "address = \"::1\"\nadvertised_address = \"2001:db8::5\"\nport_min = 20000\n\
             port_max = 20099\ntimeout_secs = 10\nlatching = \"any\"\n",
        );
        let cfg = s.validate(&mut Vec::new()).unwrap();
        assert_eq!(cfg.bind, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(cfg.advertised, "2001:db8::5".parse::<IpAddr>().unwrap());
        assert_eq!(cfg.latching, Latching::Any);
        assert_eq!(cfg.timeout, Duration::from_secs(10));
        assert_eq!(cfg.hold_timeout, Duration::from_secs(3600));
    }

    #[test]
    fn every_bad_key_is_named() {
        let s = MediaSettings {
            address: "0.0.0.0".into(),
            advertised_address: Some("media.example.com".into()),
            port_min: 80,
            port_max: 81,
            timeout_secs: 0,
            hold_timeout_secs: 0,
            latching: Latching::Strict,
            threads: 100,
            realtime_priority: 100,
        };
        let mut errors = Vec::new();
        assert_eq!(s.validate(&mut errors), None);
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "media.address",
                "media.advertised_address",
                "media.port_min",
                "media.port_max",
                "media.timeout_secs",
                "media.threads",
                "media.realtime_priority"
            ]
        );
        let s = MediaSettings {
            port_min: 30000,
            port_max: 30002,
            hold_timeout_secs: 5,
            ..MediaSettings::default()
        };
        let mut errors = Vec::new();
        assert_eq!(s.validate(&mut errors), None);
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["media.port_max", "media.hold_timeout_secs"]);
    }

    #[test]
    fn an_unknown_latching_mode_is_a_type_error() {
        assert!(toml::from_str::<MediaSettings>("latching = \"maybe\"").is_err());
    }
}
