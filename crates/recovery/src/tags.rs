//! Transaction tags (paper §3.1): how a transaction is handled at recovery.
//! A [`TagTable`] maps method + path pattern to [`Tags`]; requests no rule
//! matches get the table's default, by default the conservative
//! [`Tags::CONSERVATIVE`] (non-deterministic update, not idempotent).
//!
//! The configuration is plain data ([`TagRuleSpec`]) so a daemon can read it
//! from TOML with serde on its side; [`TagTable::new`] validates it. Rules
//! are tried in order; the first match wins. Path patterns are globs over the
//! request path (query string excluded) where `*` matches any run of bytes,
//! including `/`.

use thiserror::Error;

/// The attributes of one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tags {
    /// Replaying it on the alternate backend gives the same response and
    /// side effects.
    pub deterministic: bool,
    /// It changes no application state (so it need not be replayed).
    pub read_only: bool,
    /// Running it twice has the effect of running it once.
    pub idempotent: bool,
}

impl Tags {
    /// What an unknown request is assumed to be.
    pub const CONSERVATIVE: Tags = Tags {
        deterministic: false,
        read_only: false,
        idempotent: false,
    };

    /// Whether the transaction must be replayed on the alternate backend
    /// when its state is not there (update transactions only, §4.3).
    pub fn needs_replay(&self) -> bool {
        !self.read_only
    }
}

impl Default for Tags {
    fn default() -> Self {
        Tags::CONSERVATIVE
    }
}

/// Which rule tagged a request; the failure detector keeps its statistics
/// per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Matched the rule with this index.
    Rule(usize),
    /// Matched no rule.
    Default,
}

/// One configured rule, as written in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRuleSpec {
    /// A method (`GET`, `POST`, ...) or `*` for any.
    pub method: String,
    /// A path glob starting with `/` (e.g. `/static/*`, `/api/*/read`), or `*`.
    pub path: String,
    pub deterministic: bool,
    pub read_only: bool,
    pub idempotent: bool,
}

/// A rule that failed validation.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("tag rule {index} ({method} {path}): {reason}")]
pub struct TagError {
    pub index: usize,
    pub method: String,
    pub path: String,
    pub reason: &'static str,
}

#[derive(Clone, Debug)]
struct Rule {
    method: Option<String>,
    path: String,
    tags: Tags,
}

/// The validated rule table.
#[derive(Clone, Debug)]
pub struct TagTable {
    rules: Vec<Rule>,
    default: Tags,
}

impl Default for TagTable {
    fn default() -> Self {
        TagTable::conservative()
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl TagTable {
    /// No rules: every request gets [`Tags::CONSERVATIVE`].
    pub fn conservative() -> Self {
        TagTable {
            rules: Vec::new(),
            default: Tags::CONSERVATIVE,
        }
    }

    /// Validates `specs`; unmatched requests get `default`.
    pub fn new(specs: &[TagRuleSpec], default: Tags) -> Result<Self, TagError> {
        let mut rules = Vec::with_capacity(specs.len());
        for (index, s) in specs.iter().enumerate() {
            let err = |reason| TagError {
                index,
                method: s.method.clone(),
                path: s.path.clone(),
                reason,
            };
            if s.method.is_empty() || !s.method.bytes().all(is_tchar) {
                return Err(err("method must be an HTTP token such as GET, or *"));
            }
            if s.path != "*" && !s.path.starts_with('/') {
                return Err(err("path pattern must start with / (or be *)"));
            }
            if s.path.bytes().any(|b| b.is_ascii_whitespace() || b == b'?') {
                return Err(err("path pattern must not contain spaces or a query"));
            }
            if s.read_only && !s.idempotent {
                return Err(err(
                    "a read-only transaction has no side effects, so it is idempotent",
                ));
            }
            rules.push(Rule {
                method: (s.method != "*").then(|| s.method.clone()),
                path: s.path.clone(),
                tags: Tags {
                    deterministic: s.deterministic,
                    read_only: s.read_only,
                    idempotent: s.idempotent,
                },
            });
        }
        Ok(TagTable { rules, default })
    }

    /// The kind and tags of a request.
    pub fn lookup(&self, method: &str, target: &str) -> (Kind, Tags) {
        let path = request_path(target);
        for (i, r) in self.rules.iter().enumerate() {
            if r.method.as_deref().is_none_or(|m| m == method) && glob(r.path.as_bytes(), path) {
                return (Kind::Rule(i), r.tags);
            }
        }
        (Kind::Default, self.default)
    }
}

/// The path of a request target: origin-form without query, or the path
/// part of an absolute-form target; `*` for asterisk-form.
fn request_path(target: &str) -> &[u8] {
    let t = target.as_bytes();
    let t = match target.find("://") {
        Some(i) => {
            let rest = &t[i + 3..];
            rest.iter()
                .position(|&b| b == b'/')
                .map_or(&b"/"[..], |j| &rest[j..])
        }
        None => t,
    };
    let end = t
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(t.len());
    &t[..end]
}

/// Glob match where `*` matches any (possibly empty) run of bytes.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if p < pat.len() && pat[p] == s[i] {
            p += 1;
            i += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(method: &str, path: &str, det: bool, ro: bool, idem: bool) -> TagRuleSpec {
        TagRuleSpec {
            method: method.into(),
            path: path.into(),
            deterministic: det,
            read_only: ro,
            idempotent: idem,
        }
    }

    fn webmail() -> TagTable {
        TagTable::new(
            &[
                spec("GET", "/static/*", true, true, true),
                spec("GET", "/*.php", true, true, true),
                spec("POST", "/login.php", true, false, false),
                spec("*", "/time", false, true, true),
            ],
            Tags::CONSERVATIVE,
        )
        .unwrap()
    }

    #[test]
    fn first_matching_rule_wins_and_default_is_conservative() {
        let t = webmail();
        assert_eq!(t.lookup("GET", "/static/app.js").0, Kind::Rule(0));
        assert_eq!(t.lookup("GET", "/index.php?_task=mail").0, Kind::Rule(1));
        assert_eq!(t.lookup("GET", "/a/b/index.php").0, Kind::Rule(1));
        let (k, tags) = t.lookup("POST", "/login.php");
        assert_eq!(k, Kind::Rule(2));
        assert!(tags.deterministic && !tags.read_only && tags.needs_replay());
        assert_eq!(t.lookup("HEAD", "/time").0, Kind::Rule(3));
        let (k, tags) = t.lookup("POST", "/send.php");
        assert_eq!((k, tags), (Kind::Default, Tags::CONSERVATIVE));
        assert!(tags.needs_replay() && !tags.deterministic && !tags.idempotent);
    }

    #[test]
    fn absolute_form_targets_match_by_path() {
        let t = webmail();
        assert_eq!(
            t.lookup("GET", "http://mail.example/static/x.css").0,
            Kind::Rule(0)
        );
        assert_eq!(t.lookup("GET", "http://mail.example").0, Kind::Default);
    }

    #[test]
    fn glob_matches_runs_including_slashes() {
        assert!(glob(b"/a/*/c", b"/a/b/x/c"));
        assert!(glob(b"*", b""));
        assert!(glob(b"/x*", b"/x"));
        assert!(!glob(b"/x*y", b"/xyz"));
        assert!(glob(b"/x*y*", b"/xyz"));
        assert!(!glob(b"/a", b"/ab"));
    }

    #[test]
    fn invalid_rules_are_rejected_with_a_reason() {
        let bad = [
            spec("", "/", true, true, true),
            spec("GE T", "/", true, true, true),
            spec("GET", "static", true, true, true),
            spec("GET", "/a?b=1", true, true, true),
            spec("GET", "/a", true, true, false),
        ];
        for (i, s) in bad.into_iter().enumerate() {
            let e = TagTable::new(
                &[spec("GET", "/ok", true, true, true), s],
                Tags::CONSERVATIVE,
            )
            .unwrap_err();
            assert_eq!(e.index, 1, "case {i}");
            assert!(e.to_string().starts_with("tag rule 1 ("), "{e}");
        }
    }
}
