//! Logging into the host's log, tagged with the connector's id.
//!
//! ```ignore
//! sandport_sdk::log::info!("checking {}", url);
//! ```

pub use crate::bindings::sandport::connector::logging::Level;

/// Sends one message to the host's log.
pub fn log(level: Level, message: &str) {
    crate::bindings::sandport::connector::logging::log(level, message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sandport_log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

/// Logs at trace level, with `format!` arguments.
#[macro_export]
macro_rules! trace { ($($arg:tt)+) => { $crate::__sandport_log!(Trace, $($arg)+) }; }
/// Logs at debug level, with `format!` arguments.
#[macro_export]
macro_rules! debug { ($($arg:tt)+) => { $crate::__sandport_log!(Debug, $($arg)+) }; }
/// Logs at info level, with `format!` arguments.
#[macro_export]
macro_rules! info { ($($arg:tt)+) => { $crate::__sandport_log!(Info, $($arg)+) }; }
/// Logs at warn level, with `format!` arguments.
#[macro_export]
macro_rules! warn { ($($arg:tt)+) => { $crate::__sandport_log!(Warn, $($arg)+) }; }
/// Logs at error level, with `format!` arguments.
#[macro_export]
macro_rules! error { ($($arg:tt)+) => { $crate::__sandport_log!(Error, $($arg)+) }; }

pub use crate::{debug, error, info, trace, warn};
