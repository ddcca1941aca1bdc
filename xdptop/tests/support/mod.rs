//! Helpers shared by integration tests.

#![allow(dead_code)] // each test file uses a different part

pub mod rotel;
pub mod tls;
