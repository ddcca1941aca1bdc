//! Frame render time of the real dashboard, for `cargo xtask bench`: the
//! UI drawn to ratatui's `TestBackend` from an `App` fed with the ticks of
//! four busy interfaces (full history, per-CPU and protocol breakdowns), a
//! new tick before every frame as in the running dashboard.
//!
//! Prints `render WxH VIEW FRAMES MEDIAN_US P99_US` lines.

use std::{collections::VecDeque, time::Duration, time::Instant};

use ratatui::{Terminal, backend::TestBackend};
use xdptop::{
    sample::{Detail, Mode, Reading},
    sampler::{CounterSource, FakeSource, Sampler, Tick},
    tui::{App, app::View, history_len, ui},
};

const SEC: u64 = 1_000_000_000;
const FRAMES: usize = 300;

fn main() -> anyhow::Result<()> {
    let interval = Duration::from_secs(1);
    let names: Vec<String> = (0..4).map(|i| format!("eth{i}")).collect();
    let warm = history_len(interval);
    for (w, h) in [(120, 40), (200, 60)] {
        for view in [View::Overview, View::Detail] {
            let mut ticks = ticks(&names, warm + FRAMES).into_iter();
            let mut app = App::new("bench-host", interval, &names);
            // A full history, as after ten minutes.
            for t in ticks.by_ref().take(warm) {
                app.on_tick(t);
            }
            app.view = view;
            let mut term = Terminal::new(TestBackend::new(w, h))?;
            let mut us = Vec::with_capacity(FRAMES);
            for t in ticks.by_ref().take(FRAMES) {
                app.on_tick(t);
                let start = Instant::now();
                term.draw(|f| ui::draw(f, &app))?;
                us.push(start.elapsed().as_secs_f64() * 1e6);
            }
            us.sort_by(f64::total_cmp);
            let q = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
            let name = if view == View::Overview {
                "overview"
            } else {
                "detail"
            };
            println!(
                "render {w}x{h} {name} {FRAMES} {:.1} {:.1}",
                q(0.5),
                q(0.99)
            );
        }
    }
    Ok(())
}

/// Ticks of four interfaces with varying rates and mixed traffic.
fn ticks(names: &[String], n: usize) -> Vec<Tick> {
    let sources = names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let k = k as u64 + 1;
            let mut packets = 0u64;
            let readings: VecDeque<anyhow::Result<Reading>> = (0..n as u64)
                .map(|i| {
                    packets += 5_000 * k + 1_000 * ((i * 7 + k) % 13);
                    let p = packets;
                    Ok(Reading {
                        packets: p,
                        bytes: p * (200 + 300 * k),
                        epoch: 1,
                        detail: Some(Detail {
                            l3: [p / 10 * 9, p / 20, p / 20, 0],
                            l4: [p / 10 * 7, p / 10 * 2, p / 20, p / 20],
                            size_hist: [p / 5, p / 10, p / 10, p / 5, p / 5, p / 5, 0],
                            per_cpu_packets: vec![p / 2, p / 4, p / 8, p / 8],
                        }),
                        actions: None,
                        run: None,
                    })
                })
                .collect();
            Box::new(FakeSource {
                name: name.clone(),
                mode: Mode::Native,
                readings,
            }) as Box<dyn CounterSource>
        })
        .collect();
    let mut sampler = Sampler::new(sources);
    (0..n as u64)
        .map(|i| sampler.sample(1_700_000_000 * SEC + i * SEC, i * SEC))
        .collect()
}
