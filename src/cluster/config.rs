//! `[cluster]` and `[admin]`: who this node is among several sharing one PostgreSQL
//! database, how long its lead lasts without a heartbeat, and the admin listener (drain,
//! and the requests other nodes forward to the leader).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::key_error::KeyError;

/// Shortest lease accepted: below a second, a busy node would lose the lead to scheduling
/// hiccups.
pub const MIN_LEASE_SECS: f64 = 0.5;

/// The `[cluster]` table as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawCluster {
    node_id: Option<String>,
    lease_secs: f64,
}

impl Default for RawCluster {
    fn default() -> Self {
        RawCluster {
            node_id: None,
            lease_secs: 5.0,
        }
    }
}

/// The `[admin]` table as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawAdmin {
    listen: Option<String>,
    allow: Vec<String>,
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            listen: None,
            allow: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }
}

/// Validated cluster settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// This node's id among the nodes of one database (default: the host name).
    pub node_id: String,
    /// How long the lead lasts without a heartbeat: the failover time after a node dies.
    /// The leader renews it every third of it.
    pub lease: Duration,
    /// The admin listener (`POST /admin/drain`, and what other nodes forward to the
    /// leader); `None`: none. Never the public API.
    pub admin_listen: Option<SocketAddr>,
    /// Who may use the admin listener (the other nodes, the operator's hosts).
    pub admin_allow: Vec<ipnet::IpNet>,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "holdless".into())
}

impl RawCluster {
    /// Checks every key, adding an error per problem.
    pub fn validate(&self, admin: &RawAdmin, errors: &mut Vec<KeyError>) -> ClusterSettings {
        let mut err = |key: &str, message: String| {
            errors.push(KeyError {
                key: key.into(),
                message,
            })
        };
        let node_id = match &self.node_id {
            None => host_name(),
            Some(id)
                if id.is_empty()
                    || id.len() > 64
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                err(
                    "cluster.node_id",
                    format!("{id:?}: 1 to 64 letters, digits, '-', '_' or '.'"),
                );
                id.clone()
            }
            Some(id) => id.clone(),
        };
        let lease = if self.lease_secs.is_finite() && self.lease_secs >= MIN_LEASE_SECS {
            Duration::from_secs_f64(self.lease_secs.min(3600.0))
        } else {
            err(
                "cluster.lease_secs",
                format!("must be at least {MIN_LEASE_SECS} (seconds)"),
            );
            Duration::from_secs(5)
        };
        let admin_listen = match admin.listen.as_deref().map(str::parse::<SocketAddr>) {
            None => None,
            Some(Ok(a)) => Some(a),
            Some(Err(e)) => {
                err("admin.listen", format!("not an address:port: {e}"));
                None
            }
        };
        let mut admin_allow = Vec::new();
        for (i, a) in admin.allow.iter().enumerate() {
            match a
                .parse::<ipnet::IpNet>()
                .or_else(|_| a.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            {
                Ok(n) => admin_allow.push(n),
                Err(_) => err(
                    &format!("admin.allow[{i}]"),
                    format!("{a:?} is not a network"),
                ),
            }
        }
        ClusterSettings {
            node_id,
            lease,
            admin_listen,
            admin_allow,
        }
    }
}
