//! Draws a cell grid as SVG, the way a terminal would: a fixed cell size,
//! text in DejaVu Sans Mono placed cell by cell, and box-drawing, block and
//! braille characters drawn as shapes, so charts and borders join up
//! whatever fonts the machine has.

use std::fmt::Write as _;

use super::ansi::{Cell, Color, Grid, Style};

const CELL_W: u32 = 9;
const CELL_H: u32 = 19;
const FONT_SIZE: u32 = 15;
const BASELINE: u32 = 14;
const PAD: u32 = 12;
const FONT: &str = "DejaVu Sans Mono, monospace";

const DEFAULT_FG: &str = "#d4d7dd";
const DEFAULT_BG: &str = "#1e2127";
/// The 16 ANSI colours (a dark theme); 16..=255 are computed.
const ANSI: [&str; 16] = [
    "#2c313a", "#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2", "#abb2bf",
    "#5c6370", "#ef7b84", "#a9d48b", "#f0d08f", "#7cc0f5", "#d494ea", "#6fcbd6", "#ffffff",
];

/// Pixel size of the image for a grid.
pub fn size(grid: &Grid) -> (u32, u32) {
    (
        grid.width as u32 * CELL_W + 2 * PAD,
        grid.height as u32 * CELL_H + 2 * PAD,
    )
}

pub fn render(grid: &Grid) -> String {
    let (w, h) = size(grid);
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"{FONT}\" font-size=\"{FONT_SIZE}\">\n\
         <rect width=\"{w}\" height=\"{h}\" fill=\"{DEFAULT_BG}\"/>\n"
    );
    for (y, row) in grid.cells.iter().enumerate() {
        backgrounds(&mut out, row, y);
    }
    for (y, row) in grid.cells.iter().enumerate() {
        foregrounds(&mut out, row, y);
    }
    out.push_str("</svg>\n");
    out
}

fn left(x: usize) -> u32 {
    PAD + x as u32 * CELL_W
}

fn top(y: usize) -> u32 {
    PAD + y as u32 * CELL_H
}

/// (foreground, background) after reverse video and defaults.
fn colors(style: &Style) -> (String, String) {
    let fg = color(style.fg).unwrap_or_else(|| DEFAULT_FG.to_owned());
    let bg = color(style.bg).unwrap_or_else(|| DEFAULT_BG.to_owned());
    if style.reverse { (bg, fg) } else { (fg, bg) }
}

fn color(c: Color) -> Option<String> {
    match c {
        Color::Default => None,
        Color::Indexed(i) if i < 16 => Some(ANSI[usize::from(i)].to_owned()),
        Color::Indexed(i) if i < 232 => {
            let i = i - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
            Some(hex(level(i / 36), level(i / 6 % 6), level(i % 6)))
        }
        Color::Indexed(i) => {
            let v = 8 + 10 * (i - 232);
            Some(hex(v, v, v))
        }
        Color::Rgb(r, g, b) => Some(hex(r, g, b)),
    }
}

fn hex(r: u8, g: u8, b: u8) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Runs of cells with the same non-default background, as rectangles.
fn backgrounds(out: &mut String, row: &[Cell], y: usize) {
    let mut x = 0;
    while x < row.len() {
        let (_, bg) = colors(&row[x].style);
        let start = x;
        while x < row.len() && colors(&row[x].style).1 == bg {
            x += 1;
        }
        if bg != DEFAULT_BG {
            let _ = writeln!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{CELL_H}\" fill=\"{bg}\"/>",
                left(start),
                top(y),
                (x - start) as u32 * CELL_W
            );
        }
    }
}

fn foregrounds(out: &mut String, row: &[Cell], y: usize) {
    let mut x = 0;
    while x < row.len() {
        let cell = row[x];
        let (fg, _) = colors(&cell.style);
        let opacity = if cell.style.dim { 0.6 } else { 1.0 };
        if cell.style.underline {
            let _ = writeln!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{CELL_W}\" height=\"1\" fill=\"{fg}\"/>",
                left(x),
                top(y) + BASELINE + 3
            );
        }
        if shape(out, cell.ch, left(x), top(y), &fg, opacity) || is_blank(cell.ch) {
            x += 1;
            continue;
        }
        // A run of text characters in one style, each at its own cell.
        let start = x;
        let mut xs = String::new();
        let mut text = String::new();
        while x < row.len()
            && row[x].style == cell.style
            && !is_blank(row[x].ch)
            && !is_shape(row[x].ch)
        {
            let _ = write!(xs, "{} ", left(x));
            escape(&mut text, row[x].ch);
            x += 1;
        }
        let mut attrs = String::new();
        if cell.style.bold {
            attrs.push_str(" font-weight=\"bold\"");
        }
        if cell.style.italic {
            attrs.push_str(" font-style=\"italic\"");
        }
        if opacity < 1.0 {
            let _ = write!(attrs, " opacity=\"{opacity}\"");
        }
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"{fg}\"{attrs}>{text}</text>",
            xs.trim_end(),
            top(y) + BASELINE
        );
        debug_assert!(x > start);
    }
}

fn is_blank(ch: char) -> bool {
    ch == ' ' || ch == '\0' || ch == '\u{2800}'
}

fn escape(out: &mut String, ch: char) {
    match ch {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        c => out.push(c),
    }
}

fn is_shape(ch: char) -> bool {
    box_arms(ch).is_some() || ('\u{2580}'..='\u{2595}').contains(&ch) || is_braille(ch)
}

fn is_braille(ch: char) -> bool {
    ('\u{2801}'..='\u{28ff}').contains(&ch)
}

/// Draws `ch` as shapes if it is a box-drawing, block or braille character.
fn shape(out: &mut String, ch: char, x: u32, y: u32, fill: &str, opacity: f64) -> bool {
    let mut rects: Vec<(f64, f64, f64, f64)> = Vec::new();
    let (w, h) = (f64::from(CELL_W), f64::from(CELL_H));
    let (x0, y0) = (f64::from(x), f64::from(y));
    let mut alpha = opacity;
    if let Some(arms) = box_arms(ch) {
        // Arms from the centre to the edges: up, right, down, left.
        let (cx, cy) = (x0 + (w / 2.0).floor(), y0 + (h / 2.0).floor());
        for (i, &weight) in arms.iter().enumerate() {
            if weight == 0 {
                continue;
            }
            let offsets: &[f64] = match weight {
                1 => &[0.0],
                2 => &[-0.5],
                _ => &[-2.0, 2.0],
            };
            let thick = if weight == 2 { 2.0 } else { 1.0 };
            for &o in offsets {
                rects.push(match i {
                    0 => (cx + o, y0, thick, cy - y0 + thick),
                    1 => (cx, cy + o, x0 + w - cx, thick),
                    2 => (cx + o, cy, thick, y0 + h - cy),
                    _ => (x0, cy + o, cx - x0 + thick, thick),
                });
            }
        }
    } else if is_braille(ch) {
        let bits = ch as u32 - 0x2800;
        // Dot n of the 2×4 pattern: (column, row) in Unicode's bit order.
        const DOTS: [(f64, f64); 8] = [
            (0.0, 0.0),
            (0.0, 1.0),
            (0.0, 2.0),
            (1.0, 0.0),
            (1.0, 1.0),
            (1.0, 2.0),
            (0.0, 3.0),
            (1.0, 3.0),
        ];
        for (bit, (col, row)) in DOTS.iter().enumerate() {
            if bits & (1 << bit) != 0 {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"1.3\" fill=\"{fill}\" opacity=\"{opacity}\"/>",
                    x0 + 2.5 + col * 4.0,
                    y0 + 2.5 + row * 4.5
                );
            }
        }
        return true;
    } else {
        let eighth = |n: u32| f64::from(n) / 8.0;
        match ch as u32 {
            0x2580 => rects.push((x0, y0, w, h / 2.0)),
            n @ 0x2581..=0x2588 => {
                let part = h * eighth(n - 0x2580);
                rects.push((x0, y0 + h - part, w, part));
            }
            n @ 0x2589..=0x258f => rects.push((x0, y0, w * eighth(0x2590 - n), h)),
            0x2590 => rects.push((x0 + w / 2.0, y0, w / 2.0, h)),
            n @ 0x2591..=0x2593 => {
                alpha *= f64::from(n - 0x2590) / 4.0;
                rects.push((x0, y0, w, h));
            }
            0x2594 => rects.push((x0, y0, w, h / 8.0)),
            0x2595 => rects.push((x0 + w * 7.0 / 8.0, y0, w / 8.0, h)),
            _ => return false,
        }
    }
    for (rx, ry, rw, rh) in rects {
        let _ = write!(
            out,
            "<rect x=\"{rx}\" y=\"{ry}\" width=\"{rw}\" height=\"{rh}\" fill=\"{fill}\""
        );
        if alpha < 1.0 {
            let _ = write!(out, " opacity=\"{alpha}\"");
        }
        out.push_str("/>\n");
    }
    true
}

/// Line weights of a box-drawing character's arms (up, right, down, left):
/// 0 none, 1 light, 2 heavy, 3 double. Rounded corners draw as square ones.
fn box_arms(ch: char) -> Option<[u8; 4]> {
    Some(match ch {
        '─' => [0, 1, 0, 1],
        '━' => [0, 2, 0, 2],
        '│' => [1, 0, 1, 0],
        '┃' => [2, 0, 2, 0],
        '┌' | '╭' => [0, 1, 1, 0],
        '┐' | '╮' => [0, 0, 1, 1],
        '└' | '╰' => [1, 1, 0, 0],
        '┘' | '╯' => [1, 0, 0, 1],
        '┏' => [0, 2, 2, 0],
        '┓' => [0, 0, 2, 2],
        '┗' => [2, 2, 0, 0],
        '┛' => [2, 0, 0, 2],
        '├' => [1, 1, 1, 0],
        '┤' => [1, 0, 1, 1],
        '┬' => [0, 1, 1, 1],
        '┴' => [1, 1, 0, 1],
        '┼' => [1, 1, 1, 1],
        '═' => [0, 3, 0, 3],
        '║' => [3, 0, 3, 0],
        '╔' => [0, 3, 3, 0],
        '╗' => [0, 0, 3, 3],
        '╚' => [3, 3, 0, 0],
        '╝' => [3, 0, 0, 3],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::ansi::parse;
    use super::*;

    #[test]
    fn text_is_placed_cell_by_cell_and_escaped() {
        let svg = render(&parse("\x1b[1;38;5;1ma<b\x1b[0m x", 5, 1));
        let first = format!(
            "<text x=\"{} {} {}\" y=\"{}\" fill=\"{}\" font-weight=\"bold\">a&lt;b</text>",
            PAD,
            PAD + CELL_W,
            PAD + 2 * CELL_W,
            PAD + BASELINE,
            ANSI[1]
        );
        assert!(svg.contains(&first), "{svg}");
        assert!(svg.contains(">x</text>"), "{svg}");
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn borders_blocks_and_braille_are_shapes_not_text() {
        let svg = render(&parse("┌─█\u{28ff}", 4, 1));
        assert!(!svg.contains("<text"), "{svg}");
        // ┌ two arms, ─ two, █ one full cell, ⣿ eight dots.
        assert_eq!(svg.matches("<rect").count(), 1 + 2 + 2 + 1, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 8, "{svg}");
        let full = format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"",
            PAD + 2 * CELL_W,
            PAD,
            CELL_W,
            CELL_H
        );
        assert!(svg.contains(&full), "{svg}");
    }

    #[test]
    fn reverse_video_swaps_the_default_colours() {
        let svg = render(&parse("\x1b[7mab", 2, 1));
        assert!(
            svg.contains(&format!(
                "width=\"{}\" height=\"{CELL_H}\" fill=\"{DEFAULT_FG}\"",
                2 * CELL_W
            )),
            "{svg}"
        );
        assert!(
            svg.contains(&format!("fill=\"{DEFAULT_BG}\">ab</text>")),
            "{svg}"
        );
    }
}
