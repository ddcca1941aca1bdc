//! Tests of the dashboard as a whole: keys and actions against a fake
//! `Control`, and snapshots of the screen fed by a fake sample source.

mod fixture;
mod keys;
mod screens;
mod talkers;
