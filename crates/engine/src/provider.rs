//! Providers: who sent a reply, told by the remote host, the recipient's domain or text markers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{RuleError, RuleErrorKind};
use crate::model::{Located, RuleFile};
use crate::pattern::TextMatcherBuilder;
use crate::reply::Reply;

/// A provider that replies can be attributed to.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The remote-host globs that attribute a reply to it (`*.google.com`), as written.
    pub hosts: Vec<String>,
    /// The text markers that attribute a reply to it, as written.
    pub markers: Vec<String>,
}

/// Every provider of a rule set and the lookups that detect them.
#[derive(Default)]
pub(crate) struct ProviderIndex {
    providers: Vec<Provider>,
    ids: HashMap<String, u16>,
    host_globs: GlobSet,
    host_owner: Vec<u16>,
    domains: HashMap<String, u16>,
    /// The longest of `domains`, in bytes: no longer suffix of a recipient's domain can be one.
    longest_domain: usize,
}

impl ProviderIndex {
    /// Collects the `providers:` sections; text markers go into the shared text matcher.
    pub(crate) fn build(
        parsed: &[(PathBuf, RuleFile)],
        text: &mut TextMatcherBuilder,
        errors: &mut Vec<RuleError>,
    ) -> ProviderIndex {
        let mut index = ProviderIndex::default();
        let mut first_at: Vec<String> = Vec::new();
        let mut globs = GlobSetBuilder::new();
        for (path, file) in parsed {
            for Located { value: p, line } in &file.providers {
                let item = Some(format!("provider `{}`", p.id));
                let mut fail = |kind| errors.push(RuleError::new(path, Some(*line), item.clone(), kind));
                if let Some(&i) = index.ids.get(&p.id) {
                    fail(RuleErrorKind::DuplicateId {
                        what: "provider",
                        first: first_at[usize::from(i)].clone(),
                    });
                    continue;
                }
                let Ok(idx) = u16::try_from(index.providers.len()) else {
                    fail(RuleErrorKind::Missing("more than 65535 providers".into()));
                    continue;
                };
                index.ids.insert(p.id.clone(), idx);
                first_at.push(format!("{}:{line}", path.display()));
                index.providers.push(Provider {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    hosts: p.hosts.clone(),
                    markers: p.markers.clone(),
                });
                for glob in &p.hosts {
                    match GlobBuilder::new(&glob.to_ascii_lowercase())
                        .literal_separator(false)
                        .build()
                    {
                        Ok(g) => {
                            globs.add(g);
                            index.host_owner.push(idx);
                        }
                        Err(e) => fail(RuleErrorKind::BadGlob {
                            glob: glob.clone(),
                            message: e.to_string(),
                        }),
                    }
                }
                for domain in &p.domains {
                    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
                    index.longest_domain = index.longest_domain.max(domain.len());
                    index.domains.entry(domain).or_insert(idx);
                }
                for marker in &p.markers {
                    if marker.trim().is_empty() {
                        fail(RuleErrorKind::BadCondition {
                            field: "markers",
                            message: "empty marker".into(),
                        });
                    } else {
                        text.add_marker(marker, idx);
                    }
                }
            }
        }
        match globs.build() {
            Ok(set) => index.host_globs = set,
            Err(e) => errors.push(RuleError::new(
                Path::new("."),
                None,
                None,
                RuleErrorKind::BadGlob {
                    glob: String::new(),
                    message: e.to_string(),
                },
            )),
        }
        index
    }

    pub(crate) fn all(&self) -> &[Provider] {
        &self.providers
    }

    pub(crate) fn id_of(&self, id: &str) -> Option<u16> {
        self.ids.get(id).copied()
    }

    pub(crate) fn get(&self, idx: u16) -> &Provider {
        &self.providers[usize::from(idx)]
    }

    /// The remote host first, then the recipient's domain (and its parents), then a text marker.
    /// `looked_up` counts the bytes of the domains looked up.
    pub(crate) fn detect(
        &self,
        reply: &Reply,
        marker: Option<u16>,
        looked_up: &mut usize,
    ) -> Option<(u16, &'static str)> {
        if !reply.remote_host.is_empty() && !self.host_owner.is_empty() {
            let mut matches = Vec::new();
            self.host_globs.matches_into(reply.remote_host.as_str(), &mut matches);
            if let Some(&first) = matches.iter().min() {
                return Some((self.host_owner[first], "remote_host"));
            }
        }
        let mut domain = self.longest_possible_domain(&reply.recipient_domain);
        while !domain.is_empty() {
            *looked_up = looked_up.saturating_add(domain.len());
            if let Some(&p) = self.domains.get(domain) {
                return Some((p, "recipient_domain"));
            }
            domain = domain.split_once('.').map_or("", |(_, parent)| parent);
        }
        marker.map(|m| (m, "text marker"))
    }

    /// The longest parent of `domain` (or itself) that is no longer than the longest configured
    /// domain, or `""`. Looking up every parent of a long domain would hash its length once per
    /// label, its square in all; the parents that can be one are few, and short.
    fn longest_possible_domain<'d>(&self, domain: &'d str) -> &'d str {
        let Some(skip) = domain.len().checked_sub(self.longest_domain).filter(|&skip| skip > 0) else {
            return domain;
        };
        // A parent starts after a dot; the first one at `skip` or later is the longest that fits.
        // The dot is ASCII, so the byte after it starts a char.
        match domain.as_bytes()[skip - 1..].iter().position(|&b| b == b'.') {
            Some(dot) => &domain[skip + dot..],
            None => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_parents_as_short_as_the_longest_domain_are_looked_up() {
        let index = ProviderIndex {
            longest_domain: "gmail.com".len(),
            ..ProviderIndex::default()
        };
        for (domain, first_looked_up) in [
            ("gmail.com", "gmail.com"),
            ("com", "com"),
            ("x.gmail.com", "gmail.com"),
            ("xgmail.com", "com"),
            ("mx.é.gmail.com", "gmail.com"),
            ("ééééé.com", "com"),
            ("éééééééééé", ""),
            ("", ""),
        ] {
            assert_eq!(index.longest_possible_domain(domain), first_looked_up, "{domain:?}");
        }
    }
}
