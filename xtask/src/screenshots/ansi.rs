//! Parses what `tmux capture-pane -e -p` prints (text with SGR colour
//! sequences) into a grid of styled cells.

use unicode_width::UnicodeWidthChar as _;

/// A colour as the terminal was told it: default, a palette index, or RGB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Color {
    #[default]
    Default,
    Indexed(u8),
    Rgb(u8, u8, u8),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub fg: Color,
    pub bg: Color,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
    pub reverse: bool,
}

/// One character cell; a wide character's second column holds `'\0'`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub ch: char,
    pub style: Style,
}

impl Default for Cell {
    fn default() -> Self {
        Self {
            ch: ' ',
            style: Style::default(),
        }
    }
}

/// `width` × `height` cells; missing cells are blank with the default style.
pub struct Grid {
    pub width: usize,
    pub height: usize,
    pub cells: Vec<Vec<Cell>>,
}

/// Parses a capture into a grid of the pane's size. Text beyond the size is
/// dropped; sequences other than SGR are ignored.
pub fn parse(capture: &str, width: usize, height: usize) -> Grid {
    let mut cells = vec![vec![Cell::default(); width]; height];
    let mut style = Style::default();
    for (y, line) in capture.lines().take(height).enumerate() {
        let mut x = 0;
        let mut chars = line.chars().peekable();
        while let Some(ch) = chars.next() {
            if ch == '\x1b' {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    let mut params = String::new();
                    let mut last = None;
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            last = Some(c);
                            break;
                        }
                        params.push(c);
                    }
                    if last == Some('m') {
                        apply_sgr(&mut style, &params);
                    }
                }
                continue;
            }
            let w = ch.width().unwrap_or(0);
            if w == 0 || x + w > width {
                continue;
            }
            cells[y][x] = Cell { ch, style };
            if w == 2 {
                cells[y][x + 1] = Cell { ch: '\0', style };
            }
            x += w;
        }
        // Styles do not carry over lines in a capture, but be safe.
        style = Style::default();
    }
    Grid {
        width,
        height,
        cells,
    }
}

fn apply_sgr(style: &mut Style, params: &str) {
    // tmux may write sub-parameters with ':' (38:2::r:g:b); treat them as ';'.
    let nums: Vec<u16> = if params.is_empty() {
        vec![0]
    } else {
        params
            .split([';', ':'])
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let mut i = 0;
    while i < nums.len() {
        match nums[i] {
            0 => *style = Style::default(),
            1 => style.bold = true,
            2 => style.dim = true,
            3 => style.italic = true,
            4 => style.underline = true,
            7 => style.reverse = true,
            22 => {
                style.bold = false;
                style.dim = false;
            }
            23 => style.italic = false,
            24 => style.underline = false,
            27 => style.reverse = false,
            n @ 30..=37 => style.fg = Color::Indexed((n - 30) as u8),
            n @ 40..=47 => style.bg = Color::Indexed((n - 40) as u8),
            n @ 90..=97 => style.fg = Color::Indexed((n - 90 + 8) as u8),
            n @ 100..=107 => style.bg = Color::Indexed((n - 100 + 8) as u8),
            39 => style.fg = Color::Default,
            49 => style.bg = Color::Default,
            38 | 48 => {
                let (color, used) = extended(&nums[i + 1..]);
                if let Some(color) = color {
                    if nums[i] == 38 {
                        style.fg = color;
                    } else {
                        style.bg = color;
                    }
                }
                i += used;
            }
            _ => {}
        }
        i += 1;
    }
}

/// `5;N` or `2;R;G;B` after a 38/48; returns the colour and how many
/// parameters it used.
fn extended(rest: &[u16]) -> (Option<Color>, usize) {
    let byte = |i: usize| rest.get(i).map(|&v| v.min(255) as u8);
    match rest.first() {
        Some(5) => (byte(1).map(Color::Indexed), 2),
        Some(2) => {
            // 38:2::R:G:B carries an empty colour-space id.
            let skip = usize::from(rest.len() >= 5);
            match (byte(1 + skip), byte(2 + skip), byte(3 + skip)) {
                (Some(r), Some(g), Some(b)) => (Some(Color::Rgb(r, g, b)), 4 + skip),
                _ => (None, rest.len()),
            }
        }
        _ => (None, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_attributes_follow_the_sgr_sequences() {
        let grid = parse(
            "\x1b[1m\x1b[38;5;0m\x1b[48;5;6m ab\x1b[0m\x1b[39m\x1b[49mc\x1b[7;91mX\n\x1b[38;2;1;2;3m\u{2800}",
            5,
            3,
        );
        let cyan_bold = Style {
            fg: Color::Indexed(0),
            bg: Color::Indexed(6),
            bold: true,
            ..Style::default()
        };
        assert_eq!(grid.cells[0][1].ch, 'a');
        assert_eq!(grid.cells[0][1].style, cyan_bold);
        assert_eq!(grid.cells[0][3].style, Style::default());
        assert_eq!(
            grid.cells[0][4].style,
            Style {
                fg: Color::Indexed(9),
                reverse: true,
                ..Style::default()
            }
        );
        assert_eq!(grid.cells[1][0].ch, '\u{2800}');
        assert_eq!(grid.cells[1][0].style.fg, Color::Rgb(1, 2, 3));
        assert_eq!(grid.cells[2][0], Cell::default());
    }

    #[test]
    fn wide_characters_take_two_cells_and_long_lines_are_cut() {
        let grid = parse("漢x\nabcdefgh", 4, 2);
        assert_eq!(grid.cells[0][0].ch, '漢');
        assert_eq!(grid.cells[0][1].ch, '\0');
        assert_eq!(grid.cells[0][2].ch, 'x');
        let row: String = grid.cells[1].iter().map(|c| c.ch).collect();
        assert_eq!(row, "abcd");
    }
}
