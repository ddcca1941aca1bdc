//! Helpers shared by the integration tests (each test crate uses a part).
#![allow(dead_code)]

pub mod grafana;
pub mod http;
pub mod netns;
pub mod prometheus;
pub mod rotel;
pub mod ticks;
pub mod tls;
