//! Glue between the generated `connector` exports and a [`Connector`].
//!
//! A component instance is single-threaded and the host calls it one export
//! at a time, so the state lives in a thread-local cell.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::bindings::exports::sandport::connector::connector_api::Guest;
use crate::bindings::sandport::connector::types::{ConnectorConfig, ConnectorType, HealthReport};
use crate::{Config, Connector};

struct State {
    config: Config,
    connector: Box<dyn Any>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Implements the generated `Guest` trait for any [`Connector`].
pub struct Shim<T>(PhantomData<T>);

fn with_config<R>(f: impl FnOnce(Option<&Config>) -> R) -> R {
    STATE.with(|state| f(state.borrow().as_ref().map(|s| &s.config)))
}

fn with_connector<T: Connector, R>(f: impl FnOnce(&mut T, &Config) -> R) -> Option<R> {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        let state = state.as_mut()?;
        let connector = state.connector.downcast_mut::<T>()?;
        Some(f(connector, &state.config))
    })
}

impl<T: Connector> Guest for Shim<T> {
    fn id() -> String {
        with_config(|c| c.map(|c| c.id.clone()).unwrap_or_default())
    }

    fn name() -> String {
        with_config(|c| match c {
            Some(c) if !c.name.is_empty() => c.name.clone(),
            _ => T::NAME.to_string(),
        })
    }

    fn connector_type() -> ConnectorType {
        T::TYPE
    }

    fn description() -> String {
        with_config(|c| match c {
            Some(c) if !c.description.is_empty() => c.description.clone(),
            _ => T::DESCRIPTION.to_string(),
        })
    }

    fn initialize(config: ConnectorConfig) -> Result<(), String> {
        let connector = T::new(&config)?;
        STATE.with(|state| {
            *state.borrow_mut() = Some(State {
                config,
                connector: Box::new(connector),
            })
        });
        Ok(())
    }

    fn health_check() -> Result<HealthReport, String> {
        with_connector::<T, _>(|connector, _| match connector.health_check() {
            Ok(report) => report,
            Err(error) => HealthReport::unhealthy(error.to_string()),
        })
        .ok_or_else(|| "health-check called before initialize".to_string())
    }

    fn get_endpoint() -> String {
        with_connector::<T, _>(|connector, config| connector.endpoint(config)).unwrap_or_default()
    }

    fn get_config() -> ConnectorConfig {
        with_config(|c| c.cloned().unwrap_or_else(Config::empty))
    }

    fn close() {
        with_connector::<T, _>(|connector, _| connector.close());
        STATE.with(|state| state.borrow_mut().take());
    }
}
