//! The connectors built into Sandport, compiled from `connectors/` by
//! `build.rs` (to `wasm32-wasip2` components) and embedded, so `sandport`
//! runs from any directory. `docs/connectors.md` documents each one.
//!
//! One file: the table of built-ins ([`BUILTINS`]) with the defaults each
//! gives an entry, and the [`catalog`] the config parser consults.
#![forbid(unsafe_code)]

use sandport_config::ConnectorType::{
    self, Agent, Custom, Database, Messaging, Observability, Storage,
};
use sandport_config::{BuiltinCatalog, BuiltinDefaults, Scheme};

pub struct Builtin {
    pub name: &'static str,
    pub defaults: BuiltinDefaults,
    pub component: &'static [u8],
}

/// A built-in reached over plain HTTP or TCP on `port`, on the entry's host.
const fn builtin(
    name: &'static str,
    connector_type: ConnectorType,
    port: Option<u16>,
    component: &'static [u8],
) -> Builtin {
    Builtin {
        name,
        defaults: BuiltinDefaults {
            connector_type,
            port,
            host: None,
            scheme: None,
        },
        component,
    }
}

impl Builtin {
    /// Over HTTPS, on `host` unless the entry names one.
    const fn https(mut self, host: Option<&'static str>) -> Builtin {
        self.defaults.scheme = Some(Scheme::Https);
        self.defaults.host = host;
        self
    }
}

macro_rules! embedded {
    ($file:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $file))
    };
}

/// By type, then name. `tempo` shares the `loki` component, `opensearch`
/// the `elasticsearch` one.
#[rustfmt::skip]
pub static BUILTINS: &[Builtin] = &[
    builtin("prometheus", Observability, Some(9090), embedded!("prometheus.wasm")),
    builtin("alertmanager", Observability, Some(9093), embedded!("alertmanager.wasm")),
    builtin("grafana", Observability, Some(3000), embedded!("grafana.wasm")),
    builtin("jaeger", Observability, Some(16686), embedded!("jaeger.wasm")),
    builtin("otel-collector", Observability, Some(13133), embedded!("otel-collector.wasm")),
    builtin("loki", Observability, Some(3100), embedded!("loki.wasm")),
    builtin("tempo", Observability, Some(3200), embedded!("loki.wasm")),
    builtin("elasticsearch", Observability, Some(9200), embedded!("elasticsearch.wasm")),
    builtin("opensearch", Observability, Some(9200), embedded!("elasticsearch.wasm")),
    builtin("openclaw", Agent, Some(3721), embedded!("openclaw.wasm")),
    builtin("mcp", Agent, None, embedded!("mcp.wasm")),
    builtin("minio", Storage, Some(9000), embedded!("minio.wasm")),
    builtin("s3", Storage, Some(443), embedded!("s3.wasm")).https(None),
    builtin("slack", Messaging, Some(443), embedded!("slack.wasm")).https(Some("slack.com")),
    builtin("discord", Messaging, Some(443), embedded!("discord.wasm")).https(Some("discord.com")),
    builtin("webhook", Messaging, None, embedded!("webhook.wasm")),
    builtin("nats", Messaging, Some(4222), embedded!("nats.wasm")),
    builtin("mqtt", Messaging, Some(1883), embedded!("mqtt.wasm")),
    builtin("rabbitmq", Messaging, Some(5672), embedded!("rabbitmq.wasm")),
    builtin("postgresql", Database, Some(5432), embedded!("postgresql.wasm")),
    builtin("redis", Database, Some(6379), embedded!("redis.wasm")),
    builtin("mysql", Database, Some(3306), embedded!("mysql.wasm")),
    builtin("http", Custom, None, embedded!("http.wasm")),
    builtin("tcp", Custom, None, embedded!("tcp.wasm")),
];

/// Built-ins that speak TCP protocols the host cannot authenticate for
/// them: they read the entry's credentials (`credentials.get`) without
/// `auth.share_with_connector`. They are Sandport's own code.
pub fn shares_credentials(name: &str) -> bool {
    ["nats", "mqtt", "rabbitmq", "postgresql", "redis", "mysql"].contains(&name)
}

pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The built-ins as the config parser sees them.
pub fn catalog() -> &'static dyn BuiltinCatalog {
    &Builtins
}

/// Names of the built-in components.
pub fn names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.name).collect()
}

struct Builtins;

impl BuiltinCatalog for Builtins {
    fn defaults(&self, name: &str) -> Option<BuiltinDefaults> {
        find(name).map(|b| b.defaults)
    }

    fn names(&self) -> Vec<&'static str> {
        names()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sandport_config::{DEFAULT_CONFIG, parse};

    #[test]
    fn the_shipped_default_config_loads_with_the_real_builtins() {
        let loaded = parse(
            DEFAULT_CONFIG,
            "connectors.yaml",
            Path::new("."),
            super::catalog(),
        )
        .expect("the shipped config parses");
        assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
        let ids: Vec<&str> = loaded.connectors.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["prometheus", "grafana", "jaeger"]);
    }

    #[test]
    fn every_builtin_embeds_a_component() {
        for builtin in super::BUILTINS {
            assert!(
                builtin.component.starts_with(b"\0asm"),
                "{} is not a WebAssembly binary",
                builtin.name
            );
        }
    }
}
