//! Broker configuration: Kafka's property names, from built-in defaults, a TOML file,
//! `STROM_*` environment variables and `-o key=value` overrides, in that order.
//!
//! - [`settings`]: the table of every setting (default, type, documentation).
//! - [`listeners`]: `listeners`, `advertised.listeners` and the security protocol map.
//! - [`topic`]: topic-level configs and how they resolve against broker defaults.

pub mod listeners;
pub mod settings;
pub mod topic;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

pub use listeners::Listener;
pub use settings::{Kind, Setting, SETTINGS};

/// Where an effective setting came from (DescribeConfigs reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Environment,
    CommandLine,
}

/// The validated configuration of a broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    values: BTreeMap<&'static str, (String, Source)>,
    pub node_id: i32,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    pub controller_listener_names: Vec<String>,
    pub log_dir: PathBuf,
    /// `listener.name.<name>.<setting>` values, by (lowercase listener name, setting).
    listener_overrides: BTreeMap<(String, &'static str), String>,
    /// `plugin.<name>.<key>` values for broker-wide plugins (SASL mechanisms), by plugin
    /// name, as topic configs give them to the plugins a topic attaches.
    plugin_configs: BTreeMap<String, BTreeMap<String, String>>,
}

impl BrokerConfig {
    /// Builds the configuration from an optional TOML file, the process environment and
    /// command-line overrides.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> anyhow::Result<BrokerConfig> {
        let mut raw: Vec<(String, String, Source)> = Vec::new();
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
            for (k, v) in parse_toml(&text).with_context(|| format!("in config file {}", path.display()))? {
                raw.push((k, v, Source::File));
            }
        }
        for (key, value) in std::env::vars() {
            if let Some(name) = env_to_setting(&key) {
                raw.push((name, value, Source::Environment));
            }
        }
        for item in overrides {
            let (k, v) = item
                .split_once('=')
                .with_context(|| format!("override {item:?} is not of the form key=value"))?;
            raw.push((k.trim().to_string(), v.trim().to_string(), Source::CommandLine));
        }
        BrokerConfig::from_values(raw)
    }

    /// Builds and validates a configuration from (name, value, source) triples; later
    /// entries win.
    pub fn from_values(raw: Vec<(String, String, Source)>) -> anyhow::Result<BrokerConfig> {
        let mut values: BTreeMap<&'static str, (String, Source)> = SETTINGS
            .iter()
            .map(|s| (s.name, (s.default.to_string(), Source::Default)))
            .collect();
        let mut listener_overrides = BTreeMap::new();
        let mut plugin_configs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (name, value, source) in raw {
            if name.starts_with(topic::PLUGIN_CONFIG_PREFIX) {
                let (plugin, key) = topic::plugin_config_key(&name)
                    .with_context(|| format!("{name:?} is not plugin.<name>.<key> (from {source:?})"))?;
                plugin_configs
                    .entry(plugin.to_string())
                    .or_default()
                    .insert(key.to_string(), value);
                continue;
            }
            if let Some(rest) = name.strip_prefix("listener.name.") {
                let (listener, setting_name) = rest
                    .split_once('.')
                    .with_context(|| format!("{name:?} is not listener.name.<listener>.<setting>"))?;
                let Some(setting) = settings::PER_LISTENER
                    .iter()
                    .find_map(|n| settings::find(n).filter(|s| s.name == setting_name))
                else {
                    bail!(
                        "{name:?}: {setting_name} cannot be set per listener (these can: {})",
                        settings::PER_LISTENER.join(", ")
                    );
                };
                settings::validate(setting, &value).map_err(anyhow::Error::msg)?;
                listener_overrides.insert((listener.to_ascii_lowercase(), setting.name), value);
                continue;
            }
            let Some(setting) = settings::find(&name) else {
                bail!("unknown setting {name:?} (from {source:?}); `strom config defaults` lists every setting");
            };
            settings::validate(setting, &value).map_err(anyhow::Error::msg)?;
            values.insert(setting.name, (value, source));
        }
        let get = |name: &str| values[name].0.clone();
        let protocol_map = listeners::parse_protocol_map(&get("listener.security.protocol.map"))?;
        let listeners = listeners::parse_listeners(&get("listeners"), &protocol_map).context("in listeners")?;
        if listeners.is_empty() {
            bail!("listeners is empty: the broker needs at least one listener");
        }
        let advertised_raw = get("advertised.listeners");
        let advertised_listeners = if advertised_raw.trim().is_empty() {
            listeners.iter().map(Listener::advertised_default).collect()
        } else {
            listeners::parse_listeners(&advertised_raw, &protocol_map).context("in advertised.listeners")?
        };
        for advertised in &advertised_listeners {
            if !listeners.iter().any(|l| l.name == advertised.name) {
                bail!("advertised listener {} names no listener in listeners", advertised.name);
            }
        }
        let controller_listener_names: Vec<String> = get("controller.listener.names")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let inter_broker = get("inter.broker.listener.name");
        if !listeners.iter().any(|l| l.name == inter_broker) {
            bail!("inter.broker.listener.name {inter_broker} names no listener in listeners");
        }
        if listeners.iter().all(|l| controller_listener_names.contains(&l.name)) {
            bail!("every listener is a controller listener: clients would have nowhere to connect");
        }
        for (listener, setting) in listener_overrides.keys() {
            if !listeners.iter().any(|l| l.name.eq_ignore_ascii_case(listener)) {
                bail!("listener.name.{listener}.{setting} names no listener in listeners");
            }
        }
        Ok(BrokerConfig {
            listener_overrides,
            plugin_configs,
            node_id: get("node.id").parse()?,
            log_dir: PathBuf::from(get("log.dirs").split(',').next().unwrap_or("./data").trim()),
            listeners,
            advertised_listeners,
            controller_listener_names,
            values,
        })
    }

    /// The `plugin.<plugin>.<key>` settings of a broker-wide plugin, by key.
    pub fn plugin_config(&self, plugin: &str) -> BTreeMap<String, String> {
        self.plugin_configs.get(plugin).cloned().unwrap_or_default()
    }

    /// The effective value of a setting, as text.
    pub fn get(&self, name: &str) -> &str {
        &self
            .values
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not a setting"))
            .0
    }

    /// The value of a per-listener setting for `listener`: its `listener.name.<listener>.`
    /// override, else the broker-wide value.
    pub fn listener_get(&self, listener: &str, name: &'static str) -> &str {
        self.listener_overrides
            .get(&(listener.to_ascii_lowercase(), name))
            .map(String::as_str)
            .unwrap_or_else(|| self.get(name))
    }

    pub fn source(&self, name: &str) -> Source {
        self.values[name].1
    }

    pub fn i64(&self, name: &str) -> i64 {
        self.get(name)
            .parse()
            .unwrap_or_else(|_| panic!("{name} was validated as an integer"))
    }

    pub fn bool(&self, name: &str) -> bool {
        self.get(name) == "true"
    }

    /// Settings with their values and sources, in name order.
    pub fn entries(&self) -> impl Iterator<Item = (&'static Setting, &str, Source)> {
        SETTINGS.iter().map(|s| {
            let (v, src) = &self.values[s.name];
            (s, v.as_str(), *src)
        })
    }

    /// The advertised address for clients that came in on `listener_name`.
    /// Controller listeners are never advertised: clients do not talk to the quorum.
    pub fn advertised_for(&self, listener_name: &str) -> Option<&Listener> {
        if self.is_controller_listener(listener_name) {
            return None;
        }
        self.advertised_listeners.iter().find(|l| l.name == listener_name)
    }

    pub fn is_controller_listener(&self, name: &str) -> bool {
        self.controller_listener_names.iter().any(|n| n == name)
    }
}

/// `STROM_LOG_DIRS` -> `log.dirs`, for names that are settings.
fn env_to_setting(var: &str) -> Option<String> {
    let rest = var.strip_prefix("STROM_")?;
    let name = rest.to_ascii_lowercase().replace('_', ".");
    settings::find(&name).map(|s| s.name.to_string())
}

/// Flattens a TOML document into dotted names: `log.dirs = "x"` (which TOML reads as a
/// nested table) becomes `("log.dirs", "x")`. Arrays become comma-separated lists.
pub fn parse_toml(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = text.parse().context("not valid TOML")?;
    let mut out = Vec::new();
    flatten("", &toml::Value::Table(table), &mut out)?;
    Ok(out)
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) -> anyhow::Result<()> {
    let scalar = |v: &toml::Value| -> anyhow::Result<String> {
        Ok(match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!("{prefix}: unsupported value {other}"),
        })
    };
    match value {
        toml::Value::Table(table) => {
            for (k, v) in table {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out)?;
            }
        }
        toml::Value::Array(items) => {
            let parts: anyhow::Result<Vec<String>> = items.iter().map(scalar).collect();
            out.push((prefix.to_string(), parts?.join(",")));
        }
        other => out.push((prefix.to_string(), scalar(other)?)),
    }
    Ok(())
}

/// The documented default configuration file: every setting, its default and its doc.
pub fn defaults_toml() -> String {
    let mut out = String::from(
        "# Strom broker configuration: every setting with its default.\n\
         # Names are Kafka's. Each can also be set as STROM_<NAME> in the environment (dots\n\
         # become underscores: STROM_LOG_DIRS) or with `strom serve -o name=value`; the command\n\
         # line wins over the environment, which wins over this file. A name that extends another\n\
         # (partitioner.mode) is quoted: TOML would otherwise read it as a table.\n\
         # Generated by `strom config defaults`; a test keeps it in step with the code.\n",
    );
    for setting in SETTINGS {
        out.push('\n');
        for line in wrap(setting.doc, 88) {
            out.push_str(&format!("# {line}\n"));
        }
        let value = match setting.kind {
            Kind::Boolean | Kind::Int | Kind::Short | Kind::Long | Kind::Double => setting.default.to_string(),
            _ => format!("{:?}", setting.default),
        };
        // TOML reads `a.b` as a table `a`: a name that extends another setting's name (like
        // `partitioner.mode` and `partitioner`) must be quoted to stay one key.
        let extends_another = SETTINGS
            .iter()
            .any(|other| setting.name.starts_with(&format!("{}.", other.name)));
        let key = if extends_another {
            format!("{:?}", setting.name)
        } else {
            setting.name.to_string()
        };
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

/// Every setting as a Markdown table, for the README's configuration reference.
pub fn defaults_markdown() -> String {
    let mut out = String::from("| setting | default | topic config | meaning |\n|---|---|---|---|\n");
    for s in SETTINGS {
        let default = if s.default.is_empty() { "(empty)" } else { s.default };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            s.name,
            default,
            s.topic_config.map(|t| format!("`{t}`")).unwrap_or_default(),
            s.doc
        ));
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().unwrap();
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_kafka_where_it_matters() {
        let config = BrokerConfig::from_values(vec![]).unwrap();
        assert_eq!(config.i64("message.max.bytes"), 1_048_588);
        assert_eq!(config.i64("socket.request.max.bytes"), 100 * 1024 * 1024);
        assert!(config.bool("auto.create.topics.enable"));
        assert_eq!(config.listeners[0].port, 9092);
        assert_eq!(config.advertised_for("PLAINTEXT").unwrap().host, "127.0.0.1");
    }

    #[test]
    fn the_shipped_config_file_documents_every_setting_with_its_default() {
        let shipped = include_str!("../../../../config/strom.toml");
        assert_eq!(
            shipped,
            defaults_toml(),
            "regenerate with `strom config defaults > config/strom.toml`"
        );
        let parsed = parse_toml(shipped).unwrap();
        assert_eq!(parsed.len(), SETTINGS.len());
        for (name, value) in parsed {
            assert_eq!(settings::find(&name).unwrap().default, value, "{name}");
        }
    }

    #[test]
    fn plugin_settings_are_kept_per_plugin() {
        let config = BrokerConfig::from_values(vec![
            (
                "plugin.hmac.session.lifetime.ms".into(),
                "60000".into(),
                Source::CommandLine,
            ),
            ("plugin.hmac.other".into(), "x".into(), Source::File),
        ])
        .unwrap();
        let hmac = config.plugin_config("hmac");
        assert_eq!(hmac.get("session.lifetime.ms").map(String::as_str), Some("60000"));
        assert_eq!(hmac.len(), 2);
        assert!(config.plugin_config("other").is_empty());
        let bad = BrokerConfig::from_values(vec![("plugin.hmac".into(), "1".into(), Source::CommandLine)]);
        assert!(format!("{:#}", bad.unwrap_err()).contains("plugin.<name>.<key>"));
    }

    #[test]
    fn bad_settings_are_refused_with_the_name() {
        let err = |k: &str, v: &str| {
            format!(
                "{:#}",
                BrokerConfig::from_values(vec![(k.into(), v.into(), Source::CommandLine)]).unwrap_err()
            )
        };
        assert!(err("no.such.thing", "1").contains("unknown setting \"no.such.thing\""));
        assert!(err("num.partitions", "many").contains("num.partitions"));
        assert!(err("listeners", "PLAINTEXT://127.0.0.1:x").contains("port"));
        let e = format!(
            "{:#}",
            BrokerConfig::from_values(vec![("listeners".into(), "FOO://:1".into(), Source::File)]).unwrap_err()
        );
        assert!(e.contains("FOO"), "{e}");
    }

    #[test]
    fn toml_dotted_keys_flatten_and_later_sources_win() {
        let parsed = parse_toml(
            "log.dirs = \"/x\"\nnum.partitions = 3\nlisteners = [\"PLAINTEXT://:1\", \"CONTROLLER://:2\"]\n",
        )
        .unwrap();
        let mut raw: Vec<_> = parsed.into_iter().map(|(k, v)| (k, v, Source::File)).collect();
        raw.push(("num.partitions".into(), "5".into(), Source::CommandLine));
        let config = BrokerConfig::from_values(raw).unwrap();
        assert_eq!(config.log_dir, PathBuf::from("/x"));
        assert_eq!(config.i64("num.partitions"), 5);
        assert_eq!(config.source("num.partitions"), Source::CommandLine);
        assert_eq!(config.listeners.len(), 2);
        assert!(config.is_controller_listener("CONTROLLER"));
    }

    #[test]
    fn env_names_map_to_settings() {
        assert_eq!(env_to_setting("STROM_LOG_DIRS").as_deref(), Some("log.dirs"));
        assert_eq!(env_to_setting("STROM_BOOTSTRAP_SERVER"), None);
    }
}
