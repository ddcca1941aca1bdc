//! One render function per screen region, each `render(f, app, area)`,
//! reading `&App` only.

pub mod bars;
pub mod confirm;
pub mod detail;
pub mod footer;
pub mod header;
pub mod help;
pub mod table;
pub mod talkers;
pub mod verdicts;
