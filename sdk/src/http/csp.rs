//! The Content-Security-Policy a tab's responses carry: the host's strict default, a policy of
//! the mode's (a website whose pages need more, from its config), or none at all.
//!
//! Policy: every tab gets [`CONTENT_SECURITY_POLICY`] unless its mode says otherwise through
//! [`crate::Mode::content_security_policy`], and [`super::harden_with`] applies what it says to
//! every response of the tab. A custom policy that is not a valid header value (it should have
//! been refused by [`ContentSecurityPolicy::check_custom`] when the config was read) falls back
//! to the strict default: a weaker policy than asked is never the fallback.

use http::HeaderValue;

/// The Content-Security-Policy of every response unless the mode says otherwise: no inline
/// script, no framing, no foreign resources.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; frame-ancestors 'none'; \
     form-action 'self'; base-uri 'self'";

/// The longest custom policy, in bytes: far more than any real policy needs, and a bound on
/// what goes into every response head.
pub const MAX_CUSTOM_POLICY_BYTES: usize = 4096;

/// Marks a response as a page the host generated (a website's folder listing, an error
/// page), not a file of the user's: [`super::harden_with`] gives it the strict default
/// [`CONTENT_SECURITY_POLICY`] whatever the tab's own policy is. Such a page loads only the
/// sdk's style sheet and logo from its own tab, which the strict default allows, while a
/// custom policy written for the site's files may forbid them (`default-src 'none'`), and
/// `csp = false` is meant for the site's pages, not the host's.
///
/// Put it on a response with [`mark_generated`] (or as a response extension).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeneratedPage;

/// `response`, marked as a page the host generated ([`GeneratedPage`]).
pub fn mark_generated(mut response: axum::response::Response) -> axum::response::Response {
    response.extensions_mut().insert(GeneratedPage);
    response
}

/// Which Content-Security-Policy a tab's responses carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ContentSecurityPolicy {
    /// The host's strict default, [`CONTENT_SECURITY_POLICY`].
    #[default]
    Default,
    /// This policy instead, as the header's value (checked with
    /// [`ContentSecurityPolicy::check_custom`]).
    Custom(String),
    /// No Content-Security-Policy header at all. The mode must say so on the console when the
    /// tab starts: its pages may then run and load anything.
    Off,
}

impl ContentSecurityPolicy {
    /// Checks a custom policy: not empty, at most [`MAX_CUSTOM_POLICY_BYTES`], printable ASCII
    /// only (a header value: no newline or other control character, which could end the header
    /// and start another). The error is a sentence for a config error.
    pub fn check_custom(policy: &str) -> Result<(), String> {
        if policy.trim().is_empty() {
            return Err(
                "is empty; give a policy such as \"default-src 'self'\", or false to send none"
                    .to_owned(),
            );
        }
        if policy.len() > MAX_CUSTOM_POLICY_BYTES {
            return Err(format!(
                "is {} bytes long; a policy may have at most {MAX_CUSTOM_POLICY_BYTES}",
                policy.len()
            ));
        }
        if let Some(bad) = policy.chars().find(|c| !(' '..='~').contains(c)) {
            return Err(format!(
                "holds U+{:04X}, which a Content-Security-Policy cannot: only printable \
                 ASCII (no newlines or other control characters)",
                u32::from(bad)
            ));
        }
        Ok(())
    }

    /// The header's value; `None` for [`ContentSecurityPolicy::Off`]. A custom policy that
    /// does not pass [`ContentSecurityPolicy::check_custom`] gives the strict default.
    pub fn header_value(&self) -> Option<HeaderValue> {
        match self {
            Self::Default => Some(HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
            Self::Custom(policy) => {
                let value = Self::check_custom(policy)
                    .ok()
                    .and_then(|()| HeaderValue::from_str(policy).ok());
                if value.is_none() {
                    tracing::warn!(
                        "a custom Content-Security-Policy is not a valid header value; \
                         the strict default is sent instead"
                    );
                }
                Some(value.unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY)))
            }
            Self::Off => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn custom_policies_are_checked() {
        assert!(ContentSecurityPolicy::check_custom("default-src 'self' 'unsafe-inline'").is_ok());
        for bad in [
            "",
            "   ",
            "default-src 'self'\r\nSet-Cookie: x=1",
            "default-src\t'self'",
            "default-src 'sélf'",
            "a\u{0}b",
        ] {
            assert!(
                ContentSecurityPolicy::check_custom(bad).is_err(),
                "{bad:?} was accepted"
            );
        }
        let long = "a".repeat(MAX_CUSTOM_POLICY_BYTES + 1);
        let err = ContentSecurityPolicy::check_custom(&long).unwrap_err();
        assert!(err.contains("4096"), "{err}");
        assert!(ContentSecurityPolicy::check_custom(&long[1..]).is_ok());
        let err = ContentSecurityPolicy::check_custom("a\nb").unwrap_err();
        assert!(err.contains("U+000A"), "{err}");
    }

    /// A header injection cannot get through by building the variant directly: what is not a
    /// valid policy is sent as the strict default, never as nothing or as something weaker.
    #[test]
    fn an_invalid_custom_policy_falls_back_to_the_strict_default() {
        let injected = ContentSecurityPolicy::Custom("x\r\nSet-Cookie: a=b".into());
        assert_eq!(
            injected.header_value().expect("a policy"),
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(
            ContentSecurityPolicy::Custom("img-src *".into())
                .header_value()
                .expect("a policy"),
            "img-src *"
        );
        assert_eq!(ContentSecurityPolicy::Off.header_value(), None);
        assert_eq!(
            ContentSecurityPolicy::default()
                .header_value()
                .expect("a policy"),
            CONTENT_SECURITY_POLICY
        );
    }
}
