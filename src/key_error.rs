//! [`KeyError`]: one problem with one configuration key. Every section's validation
//! reports in it, and the configuration file's errors are a list of them.

/// One problem with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// Dotted key path, e.g. `acl.allow[1]`.
    pub key: String,
    /// What is wrong, for a telephony engineer.
    pub message: String,
}

impl KeyError {
    /// `key` is wrong: `message`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> KeyError {
        KeyError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}
