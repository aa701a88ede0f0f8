//! The settings collected from the `--config` file and `--override`: each key checked against
//! the table when it is read, and remembered with where it came from, so that errors can point
//! at the file and line or at `--override`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::keys::broker_key;
use super::properties::{parse_properties, PropertyEntry};
use super::value::Value;
use super::{invalid, invalid_value, one_line, ConfigError};

/// Where a setting came from, so that errors can point at it.
#[derive(Clone, Debug)]
pub(super) enum Origin {
    File { path: PathBuf, line: usize },
    Override,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(
                f,
                "in {} line {line}",
                one_line(&path.display().to_string())
            ),
            Origin::Override => f.write_str("--override"),
        }
    }
}

/// One key's winning value and where it came from.
#[derive(Clone, Debug)]
pub(super) struct Setting {
    pub(super) value: String,
    pub(super) origin: Origin,
}

/// Keys set by the file and `--override`, later ones replacing earlier ones; each checked on entry.
#[derive(Default, Debug)]
pub(super) struct Settings {
    map: BTreeMap<String, Setting>,
}

impl Settings {
    /// Records one key, rejecting unknown keys and malformed values at once, so that a bad entry
    /// is reported even when a later layer replaces it.
    pub(super) fn set(
        &mut self,
        key: &str,
        value: &str,
        origin: Origin,
    ) -> Result<(), ConfigError> {
        if key.is_empty() {
            return Err(invalid(format!(
                "empty config key ({origin}): expected KEY=VALUE"
            )));
        }
        let known = broker_key(key).ok_or_else(|| {
            invalid(format!(
                "unknown config key '{}' ({origin}): see README 'Config keys'",
                one_line(key)
            ))
        })?;
        known
            .ty
            .parse(value)
            .map_err(|expected| invalid_value(key, value, &origin, &expected))?;
        self.map.insert(
            key.to_string(),
            Setting {
                value: value.to_string(),
                origin,
            },
        );
        Ok(())
    }

    /// Reads a properties file and records every entry in it.
    pub(super) fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let shown = one_line(&path.display().to_string());
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read config file '{shown}': {e}")))?;
        let entries = parse_properties(&text)
            .map_err(|(line, problem)| invalid(format!("{problem} (in {shown} line {line})")))?;
        for PropertyEntry { line, key, value } in entries {
            self.set(
                &key,
                &value,
                Origin::File {
                    path: path.to_path_buf(),
                    line,
                },
            )?;
        }
        Ok(())
    }

    /// Records one `--override KEY=VALUE`.
    pub(super) fn apply_override(&mut self, raw: &str) -> Result<(), ConfigError> {
        let (key, value) = raw.split_once('=').ok_or_else(|| {
            invalid(format!(
                "invalid --override '{}': expected KEY=VALUE",
                one_line(raw)
            ))
        })?;
        self.set(key.trim(), value.trim(), Origin::Override)
    }

    /// The setting of `key`, if the file or an `--override` set it.
    pub(super) fn get(&self, key: &str) -> Option<&Setting> {
        self.map.get(key)
    }

    /// The checked value of `key` and its setting, if set.
    pub(super) fn value(&self, key: &str) -> Option<(Value, &Setting)> {
        let setting = self.get(key)?;
        // Every setting was checked on entry, so this parse only repeats that check.
        let value = broker_key(key)?.ty.parse(&setting.value).ok()?;
        Some((value, setting))
    }

    /// Every key set, with its winning value as given.
    /// Where each key set came from ("/etc/shardlog/server.properties line 4", "--override").
    pub(super) fn origins(&self) -> BTreeMap<String, String> {
        self.map
            .iter()
            .map(|(key, setting)| {
                let origin = match &setting.origin {
                    Origin::File { path, line } => {
                        format!("{} line {line}", one_line(&path.display().to_string()))
                    }
                    Origin::Override => "--override".to_string(),
                };
                (key.clone(), origin)
            })
            .collect()
    }

    pub(super) fn explicit(&self) -> BTreeMap<String, String> {
        self.map
            .iter()
            .map(|(key, setting)| (key.clone(), setting.value.clone()))
            .collect()
    }
}
