//! The connectors built into Sandport, compiled from `connectors/` by
//! `build.rs` (to `wasm32-wasip2` components) and embedded, so `sandport`
//! runs from any directory. `docs/connectors.md` documents each one.
//!
//! One file: the table of built-ins ([`BUILTINS`]) with the defaults each
//! gives an entry, and the [`catalog`] the config parser consults.
#![forbid(unsafe_code)]

use sandport_config::{BuiltinCatalog, BuiltinDefaults, ConnectorType, Scheme};

pub struct Builtin {
    pub name: &'static str,
    pub defaults: BuiltinDefaults,
    pub component: &'static [u8],
}

macro_rules! embedded {
    ($file:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $file))
    };
}

/// By type, then name. `tempo` shares the `loki` component, `opensearch`
/// the `elasticsearch` one.
pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "prometheus",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Observability,
            port: Some(9090),
            host: None,
            scheme: None,
        },
        component: embedded!("prometheus.wasm"),
    },
    Builtin {
        name: "alertmanager",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Observability,
            port: Some(9093),
            host: None,
            scheme: None,
        },
        component: embedded!("alertmanager.wasm"),
    },
    Builtin {
        name: "grafana",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Observability,
            port: Some(3000),
            host: None,
            scheme: None,
        },
        component: embedded!("grafana.wasm"),
    },
    Builtin {
        name: "jaeger",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Observability,
            port: Some(16686),
            host: None,
            scheme: None,
        },
        component: embedded!("jaeger.wasm"),
    },
    Builtin {
        name: "otel-collector",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Observability,
            port: Some(13133),
            host: None,
            scheme: None,
        },
        component: embedded!("otel-collector.wasm"),
    },
    Builtin {
        name: "loki",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Observability,
            port: Some(3100),
            host: None,
            scheme: None,
        },
        component: embedded!("loki.wasm"),
    },
    Builtin {
        name: "tempo",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Observability,
            port: Some(3200),
            host: None,
            scheme: None,
        },
        component: embedded!("loki.wasm"),
    },
    Builtin {
        name: "elasticsearch",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Observability,
            port: Some(9200),
            host: None,
            scheme: None,
        },
        component: embedded!("elasticsearch.wasm"),
    },
    Builtin {
        name: "opensearch",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Observability,
            port: Some(9200),
            host: None,
            scheme: None,
        },
        component: embedded!("elasticsearch.wasm"),
    },
    Builtin {
        name: "openclaw",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Agent,
            port: Some(3721),
            host: None,
            scheme: None,
        },
        component: embedded!("openclaw.wasm"),
    },
    Builtin {
        name: "mcp",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Agent,
            port: None,
            host: None,
            scheme: None,
        },
        component: embedded!("mcp.wasm"),
    },
    Builtin {
        name: "minio",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Storage,
            port: Some(9000),
            host: None,
            scheme: None,
        },
        component: embedded!("minio.wasm"),
    },
    Builtin {
        name: "s3",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Storage,
            port: Some(443),
            host: None,
            scheme: Some(Scheme::Https),
        },
        component: embedded!("s3.wasm"),
    },
    Builtin {
        name: "slack",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Messaging,
            port: Some(443),
            host: Some("slack.com"),
            scheme: Some(Scheme::Https),
        },
        component: embedded!("slack.wasm"),
    },
    Builtin {
        name: "discord",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Messaging,
            port: Some(443),
            host: Some("discord.com"),
            scheme: Some(Scheme::Https),
        },
        component: embedded!("discord.wasm"),
    },
    Builtin {
        name: "webhook",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Messaging,
            port: None,
            host: None,
            scheme: None,
        },
        component: embedded!("webhook.wasm"),
    },
    Builtin {
        name: "nats",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Messaging,
            port: Some(4222),
            host: None,
            scheme: None,
        },
        component: embedded!("nats.wasm"),
    },
    Builtin {
        name: "mqtt",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Messaging,
            port: Some(1883),
            host: None,
            scheme: None,
        },
        component: embedded!("mqtt.wasm"),
    },
    Builtin {
        name: "rabbitmq",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Messaging,
            port: Some(5672),
            host: None,
            scheme: None,
        },
        component: embedded!("rabbitmq.wasm"),
    },
    Builtin {
        name: "postgresql",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Database,
            port: Some(5432),
            host: None,
            scheme: None,
        },
        component: embedded!("postgresql.wasm"),
    },
    Builtin {
        name: "redis",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Database,
            port: Some(6379),
            host: None,
            scheme: None,
        },
        component: embedded!("redis.wasm"),
    },
    Builtin {
        name: "mysql",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Database,
            port: Some(3306),
            host: None,
            scheme: None,
        },
        component: embedded!("mysql.wasm"),
    },
    Builtin {
        name: "http",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Custom,
            port: None,
            host: None,
            scheme: None,
        },
        component: embedded!("http.wasm"),
    },
    Builtin {
        name: "tcp",
        defaults: BuiltinDefaults {
            connector_type: ConnectorType::Custom,
            port: None,
            host: None,
            scheme: None,
        },
        component: embedded!("tcp.wasm"),
    },
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
        BUILTINS.iter().map(|b| b.name).collect()
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
