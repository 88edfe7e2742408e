//! VERP: the recipient encoded in a bounce address, read back with a pattern such as
//! `bounces+{local}={domain}@example.net`. The pattern compiles to literal pieces around the
//! two placeholders, so decoding is a prefix, an infix and a suffix match: no regex.

const LOCAL: &str = "{local}";
const DOMAIN: &str = "{domain}";

/// A compiled VERP pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerpPattern {
    source: String,
    /// The text before the first placeholder.
    prefix: String,
    /// The text between the placeholders (never empty).
    infix: String,
    /// The text after the second placeholder.
    suffix: String,
    /// Whether `{local}` comes before `{domain}`.
    local_first: bool,
}

/// Why a VERP pattern is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("VERP pattern `{pattern}`: {reason}")]
pub struct VerpError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl VerpPattern {
    /// Compiles a pattern with one `{local}` and one `{domain}` placeholder, separated by
    /// literal text (`bounces+{local}={domain}@example.net`).
    pub fn new(pattern: &str) -> Result<VerpPattern, VerpError> {
        let fail = |reason: &str| VerpError {
            pattern: pattern.to_string(),
            reason: reason.to_string(),
        };
        for placeholder in [LOCAL, DOMAIN] {
            match pattern.matches(placeholder).count() {
                0 => {
                    return Err(fail(&format!(
                        "it has no {placeholder} placeholder (it needs {LOCAL} and {DOMAIN})"
                    )));
                }
                1 => {}
                _ => return Err(fail(&format!("{placeholder} appears more than once"))),
            }
        }
        let (Some(local_at), Some(domain_at)) = (pattern.find(LOCAL), pattern.find(DOMAIN)) else {
            return Err(fail("it needs both {local} and {domain}"));
        };
        let local_first = local_at < domain_at;
        let (first, first_len, second, second_len) = if local_first {
            (local_at, LOCAL.len(), domain_at, DOMAIN.len())
        } else {
            (domain_at, DOMAIN.len(), local_at, LOCAL.len())
        };
        let prefix = pattern.get(..first).unwrap_or("");
        let infix = pattern.get(first + first_len..second).unwrap_or("");
        let suffix = pattern.get(second + second_len..).unwrap_or("");
        if infix.is_empty() {
            return Err(fail(
                "the placeholders are adjacent: put a separator between them (`{local}={domain}`)",
            ));
        }
        if pattern.contains(['{', '}']) && [prefix, infix, suffix].iter().any(|p| p.contains(['{', '}'])) {
            return Err(fail("it has a brace outside the {local} and {domain} placeholders"));
        }
        if !pattern.contains('@') {
            return Err(fail("it is not an address: it has no `@`"));
        }
        Ok(VerpPattern {
            source: pattern.to_string(),
            prefix: prefix.to_string(),
            infix: infix.to_string(),
            suffix: suffix.to_string(),
            local_first,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The recipient encoded in `address` (`bounces+bob=example.com@example.net` →
    /// `bob@example.com`), when it fits the pattern. The literal pieces match without regard
    /// to ASCII case; angle brackets and white space around the address are ignored.
    pub fn decode(&self, address: &str) -> Option<String> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>').trim();
        let rest = strip_prefix_ignore_case(address, &self.prefix)?;
        let middle = strip_suffix_ignore_case(rest, &self.suffix)?;
        // The domain cannot hold the separator, so the split is at the separator nearest it.
        let (first, second) = if self.local_first {
            rsplit_once_ignore_case(middle, &self.infix)?
        } else {
            split_once_ignore_case(middle, &self.infix)?
        };
        let (local, domain) = if self.local_first {
            (first, second)
        } else {
            (second, first)
        };
        let valid = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains(['@', ' '])
            && !local.contains(['@', ' ', '<', '>']);
        valid.then(|| format!("{local}@{domain}"))
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| s.get(..cut)).flatten()
}

fn split_once_ignore_case<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let at = s.to_ascii_lowercase().find(&sep.to_ascii_lowercase())?;
    Some((s.get(..at)?, s.get(at + sep.len()..)?))
}

fn rsplit_once_ignore_case<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let at = s.to_ascii_lowercase().rfind(&sep.to_ascii_lowercase())?;
    Some((s.get(..at)?, s.get(at + sep.len()..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_that_fits_decodes_to_the_recipient() {
        let p = VerpPattern::new("bounces+{local}={domain}@example.net").unwrap();
        assert_eq!(
            p.decode("bounces+bob=example.com@example.net").as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(
            p.decode("<Bounces+bob.smith=mail.example.com@EXAMPLE.net>").as_deref(),
            Some("bob.smith@mail.example.com")
        );
        // A local part holding the separator: the domain cannot, so the last one splits.
        assert_eq!(
            p.decode("bounces+a=b=example.com@example.net").as_deref(),
            Some("a=b@example.com")
        );
    }

    #[test]
    fn an_address_that_does_not_fit_decodes_to_nothing() {
        let p = VerpPattern::new("bounces+{local}={domain}@example.net").unwrap();
        for a in [
            "bob@example.com",
            "bounces+bob@example.net",
            "bounces+=example.com@example.net",
            "bounces+bob=@example.net",
            "bounces+bob=example.com@example.org",
            "",
            "é",
        ] {
            assert_eq!(p.decode(a), None, "{a}");
        }
    }

    #[test]
    fn the_domain_may_come_first() {
        let p = VerpPattern::new("rt-{domain}-{local}@lists.example.net").unwrap();
        assert_eq!(
            p.decode("rt-example.com-bob-x@lists.example.net").as_deref(),
            Some("bob-x@example.com")
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let reason = |p: &str| VerpPattern::new(p).unwrap_err().reason;
        assert!(reason("bounces+{local}@example.net").contains("no {domain}"));
        assert!(reason("bounces+{domain}@example.net").contains("no {local}"));
        assert!(reason("b+{local}{domain}@example.net").contains("adjacent"));
        assert!(reason("b+{local}={domain}={local}@x.net").contains("more than once"));
        assert!(reason("b+{local}={domain}{x}@x.net").contains("brace"));
        assert!(reason("{local}={domain}").contains("no `@`"));
        let e = VerpPattern::new("nothing").unwrap_err();
        assert!(e.to_string().starts_with("VERP pattern `nothing`:"));
    }
}
