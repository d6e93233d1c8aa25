//! QR codes drawn with text, so that a phone can scan a tab's address (or client key) off the
//! terminal. Only the console draws them: they carry what they encode, so never the log.
//!
//! Two rows of modules per line (`▀`, `▄`, `█`, space). The light modules are the drawn ones
//! and the quiet zone is drawn too: on the usual light-on-dark terminal the code then shows
//! dark on light, as scanners expect (qrencode's `-t UTF8` does the same).

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// `text` as QR code lines; `None` if it is too long for a QR code.
pub(super) fn render(text: &str) -> Option<Vec<String>> {
    // Medium error correction: scans well off a screen, and an onion URL still fits in a
    // small code.
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let drawn = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    Some(drawn.lines().map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The modules the lines show, dark = `true`, quiet zone included (undoing the drawing:
    /// each character is two modules, upper and lower, and a drawn half is a light module).
    fn modules(lines: &[String]) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in lines {
            let (mut upper, mut lower) = (Vec::new(), Vec::new());
            for c in line.chars() {
                let (u, l) = match c {
                    '█' => (false, false),
                    '▀' => (false, true),
                    '▄' => (true, false),
                    ' ' => (true, true),
                    other => panic!("unexpected {other:?} in a QR line"),
                };
                upper.push(u);
                lower.push(l);
            }
            rows.push(upper);
            rows.push(lower);
        }
        rows
    }

    /// Decodes what the lines show with an independent decoder (rqrr), from an image of
    /// 4×4 pixels per module.
    fn decode(lines: &[String]) -> String {
        let grid = modules(lines);
        let scale = 4;
        let (h, w) = (grid.len() * scale, grid[0].len() * scale);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
            if grid[y / scale][x / scale] { 0 } else { 255 }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the picture");
        let (_, content) = grids[0].decode().expect("the QR code decodes");
        content
    }

    #[test]
    fn the_printed_code_decodes_back_to_the_address_and_the_key() {
        let address = "http://zjtec6lywsglfhlsvmkg2ou5wtox6eqpxggkyz642dh47vnmncxfphid.onion/";
        assert_eq!(decode(&render(address).expect("fits")), address);
        let key = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRST";
        assert_eq!(decode(&render(key).expect("fits")), key);
    }

    #[test]
    fn the_printed_modules_are_the_qrcode_crates() {
        let text = "http://127.0.0.1:8080/";
        let code = QrCode::with_error_correction_level(text, EcLevel::M).expect("code");
        let width = code.width();
        let shown = modules(&render(text).expect("fits"));
        // Dense1x2's quiet zone is 4 modules on each side (rounded up to whole lines).
        let quiet = 4;
        for y in 0..width {
            for x in 0..width {
                assert_eq!(
                    shown[y + quiet][x + quiet],
                    code[(x, y)] == qrcode::Color::Dark,
                    "module ({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn text_too_long_for_a_qr_code_is_refused() {
        assert!(render(&"x".repeat(5000)).is_none());
    }
}
