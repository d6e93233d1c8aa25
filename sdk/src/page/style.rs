//! The one style sheet of every page (`sdk/assets/style.css`), and the check that its colours
//! meet WCAG AA in both schemes.

use super::Asset;

/// Where every tab serves [`STYLE`] (one of the sdk's shared files, under
/// [`SHARED_PREFIX`](super::SHARED_PREFIX)); every [`Shell`](super::Shell) links it first.
pub const STYLE_PATH: &str = "/onionhost%2Fstyle.css";

/// onionhost's one look: the shell, type, buttons, fields, notices, cards, tables and the
/// listing pages, light and dark (see the [module's classes](super#the-look)).
pub static STYLE: Asset = Asset::css(include_str!("../../assets/style.css"));

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The custom properties of the first `:root { ... }` block at or after `from`.
    fn palette(css: &str, from: usize) -> BTreeMap<&str, &str> {
        let start = from + css[from..].find(":root {").expect(":root") + ":root {".len();
        let end = start + css[start..].find('}').expect("end of :root");
        css[start..end]
            .split(';')
            .filter_map(|declaration| declaration.trim().split_once(':'))
            .filter(|(name, _)| name.starts_with("--"))
            .map(|(name, value)| (name.trim(), value.trim()))
            .collect()
    }

    fn channel(hex: &str, at: usize) -> f64 {
        let value = u8::from_str_radix(&hex[at..at + 2], 16).expect("hex digits");
        let c = f64::from(value) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }

    /// WCAG 2.1's relative luminance of `#rrggbb`.
    fn luminance(colour: &str) -> f64 {
        let hex = colour.strip_prefix('#').expect("a #rrggbb colour");
        assert_eq!(hex.len(), 6, "{colour}");
        0.2126 * channel(hex, 0) + 0.7152 * channel(hex, 2) + 0.0722 * channel(hex, 4)
    }

    fn contrast(a: &str, b: &str) -> f64 {
        let (a, b) = (luminance(a), luminance(b));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// Every pair of colours the style sheet puts on each other, with WCAG AA's minimum: 4.5
    /// for text, 3 for what shows a control (a field's border, the focus ring), in the light
    /// scheme and in the dark one. A colour changed without looking fails here.
    #[test]
    fn the_palette_meets_wcag_aa() {
        let css = std::str::from_utf8(STYLE.bytes()).expect("text");
        let dark_at = css
            .find("@media (prefers-color-scheme: dark)")
            .expect("a dark scheme");
        let light = palette(css, 0);
        let dark = palette(css, dark_at);
        let text = 4.5;
        let control = 3.0;
        let pairs = [
            ("--fg", "--bg", text),
            ("--fg", "--panel", text),
            ("--fg", "--tint", text),
            ("--muted", "--bg", text),
            ("--muted", "--panel", text),
            ("--muted", "--tint", text),
            ("--link", "--bg", text),
            ("--link", "--panel", text),
            ("--link", "--tint", text),
            ("--on-accent", "--accent", text),
            ("--info-fg", "--info-bg", text),
            ("--success-fg", "--success-bg", text),
            ("--error-fg", "--error-bg", text),
            ("--error-fg", "--panel", text),
            ("--field", "--panel", control),
            ("--field", "--bg", control),
            ("--focus", "--bg", control),
            ("--focus", "--panel", control),
            ("--accent", "--panel", control),
        ];
        for (scheme, colours) in [("light", &light), ("dark", &dark)] {
            for (fg, bg, minimum) in pairs {
                let ratio = contrast(colours[fg], colours[bg]);
                assert!(
                    ratio >= minimum,
                    "{scheme}: {fg} on {bg} is {ratio:.2}:1, under {minimum}:1"
                );
            }
        }
        // The dark scheme redefines every colour, so no light one shows through.
        for name in light.keys().filter(|name| light[*name].starts_with('#')) {
            assert!(dark.contains_key(name), "{name} has no dark value");
        }
    }

    #[test]
    fn contrast_is_computed_as_wcag_says() {
        assert!((contrast("#000000", "#ffffff") - 21.0).abs() < 1e-9);
        assert!((contrast("#777777", "#ffffff") - 4.48).abs() < 0.01);
        assert!((contrast("#123456", "#123456") - 1.0).abs() < 1e-9);
    }

    /// Nothing in the look comes from elsewhere: no `@import`, no `url(` to another site, no
    /// web font.
    #[test]
    fn the_style_sheet_loads_nothing() {
        let css = std::str::from_utf8(STYLE.bytes()).expect("text");
        for forbidden in ["@import", "url(", "@font-face", "http:", "https:"] {
            assert!(!css.contains(forbidden), "style.css holds {forbidden:?}");
        }
    }
}
