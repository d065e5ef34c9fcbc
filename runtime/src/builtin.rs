//! The connectors built into the binary, compiled from `connectors/` by
//! `build.rs` and embedded, so `sandport` runs from any directory.

use crate::config::{BuiltinCatalog, ConnectorType};

pub struct Builtin {
    pub name: &'static str,
    pub connector_type: ConnectorType,
    pub default_port: Option<u16>,
    pub component: &'static [u8],
}

macro_rules! embedded {
    ($file:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $file))
    };
}

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "prometheus",
        connector_type: ConnectorType::Observability,
        default_port: Some(9090),
        component: embedded!("prometheus.wasm"),
    },
    Builtin {
        name: "grafana",
        connector_type: ConnectorType::Observability,
        default_port: Some(3000),
        component: embedded!("grafana.wasm"),
    },
    Builtin {
        name: "jaeger",
        connector_type: ConnectorType::Observability,
        default_port: Some(16686),
        component: embedded!("jaeger.wasm"),
    },
    Builtin {
        name: "http",
        connector_type: ConnectorType::Custom,
        default_port: None,
        component: embedded!("http.wasm"),
    },
];

pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The built-ins as the config parser sees them.
pub struct Builtins;

impl BuiltinCatalog for Builtins {
    fn defaults(&self, name: &str) -> Option<(ConnectorType, Option<u16>)> {
        find(name).map(|b| (b.connector_type, b.default_port))
    }

    fn names(&self) -> Vec<&'static str> {
        BUILTINS.iter().map(|b| b.name).collect()
    }
}
