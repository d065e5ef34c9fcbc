//! Tests of the whole store through the public API.
