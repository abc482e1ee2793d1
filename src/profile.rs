//! Partner profiles (`edi-maps/partners/*.toml`): what one payer or
//! clearinghouse wants in the envelope — ISA/GS ids and qualifiers, usage
//! indicator, delimiters, the submitter id it assigned us, its receiver name —
//! and its companion-guide rules, declared rather than coded.
//!
//! A profile is read raw (serde, unknown fields refused) and then validated
//! into [`Profile`]: delimiters checked, patterns compiled, field paths
//! checked against the claim model, so a typo fails at load time.

use regex::Regex;
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::model::{Claim, ClaimKind, Receiver, Submitter};
use crate::scrub::code_sets::{CodeSets, RawCodeSets};
use crate::x12::{DelimiterError, Delimiters, Envelope, Usage};

/// The built-in sandbox payer's profile, used when no `--partner` is given.
pub const SANDBOX: &str = include_str!("../edi-maps/partners/sandbox.toml");

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Toml {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{path}: {field}: {problem}")]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    description: Option<String>,
    envelope: RawEnvelope,
    #[serde(default)]
    delimiters: RawDelimiters,
    submitter: Submitter,
    receiver: Receiver,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    code_sets: RawCodeSets,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope {
    #[serde(default = "zz")]
    sender_qualifier: String,
    sender_id: String,
    #[serde(default = "zz")]
    receiver_qualifier: String,
    receiver_id: String,
    gs_sender: Option<String>,
    gs_receiver: Option<String>,
    usage: Usage,
    #[serde(default)]
    ack_requested: bool,
    max_claims_per_set: Option<usize>,
}

fn zz() -> String {
    "ZZ".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelimiters {
    element: String,
    component: String,
    repetition: String,
    segment: String,
    #[serde(default)]
    line_break: bool,
}

impl Default for RawDelimiters {
    fn default() -> Self {
        RawDelimiters {
            element: "*".into(),
            component: ":".into(),
            repetition: "^".into(),
            segment: "~".into(),
            line_break: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    /// Dotted path into the claim, e.g. `subscriber.group_number` or
    /// `lines.procedure.modifiers` (lists are looked into).
    field: String,
    #[serde(default)]
    required: bool,
    allowed: Option<Vec<String>>,
    pattern: Option<String>,
    max_length: Option<usize>,
    /// Only for these claim kinds ("837P", "837I"); all when absent.
    kinds: Option<Vec<ClaimKind>>,
    message: Option<String>,
}

/// How a rule checks a value.
#[derive(Debug, Clone)]
pub struct Rule {
    pub field: String,
    path: Vec<String>,
    pub required: bool,
    pub allowed: Option<Vec<String>>,
    pub pattern: Option<Regex>,
    pub max_length: Option<usize>,
    pub kinds: Option<Vec<ClaimKind>>,
    pub message: Option<String>,
}

/// A validated partner profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: Option<String>,
    pub envelope: Envelope,
    pub max_claims_per_set: Option<usize>,
    pub rules: Vec<Rule>,
    /// Code-set files the scrubber checks codes against (`[code_sets]`).
    pub code_sets: CodeSets,
}

/// A rule's verdict on one claim: which value (by path) broke it and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleBreach {
    pub field: String,
    pub message: String,
}

impl Profile {
    /// Loads a profile by path, or by name from `edi-maps/partners/NAME.toml`;
    /// `sandbox` is built in.
    pub fn find(name_or_path: &str) -> Result<Profile, ProfileError> {
        let path = Path::new(name_or_path);
        if path.exists() || name_or_path.ends_with(".toml") {
            return Profile::load(path);
        }
        let named = Path::new("edi-maps/partners").join(format!("{name_or_path}.toml"));
        if named.exists() || name_or_path != "sandbox" {
            return Profile::load(&named);
        }
        Profile::sandbox()
    }

    pub fn sandbox() -> Result<Profile, ProfileError> {
        Profile::parse(SANDBOX, Path::new("<built-in sandbox profile>"))
    }

    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.to_owned(),
            source,
        })?;
        Profile::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Profile, ProfileError> {
        let raw: RawProfile = toml::from_str(text).map_err(|source| ProfileError::Toml {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |field: &str, problem: String| ProfileError::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            problem,
        };
        let d = &raw.delimiters;
        let delimiters =
            Delimiters::for_writing(&d.element, &d.component, &d.repetition, &d.segment)
                .map_err(|e: DelimiterError| invalid("delimiters", e.to_string()))?;
        if raw.submitter.phone.is_none() && raw.submitter.email.is_none() {
            return Err(invalid(
                "submitter",
                "needs a phone or an email (PER in loop 1000A)".into(),
            ));
        }
        let e = raw.envelope;
        for (field, value, max) in [
            ("envelope.sender_qualifier", &e.sender_qualifier, 2),
            ("envelope.sender_id", &e.sender_id, 15),
            ("envelope.receiver_qualifier", &e.receiver_qualifier, 2),
            ("envelope.receiver_id", &e.receiver_id, 15),
        ] {
            if value.is_empty() || value.len() > max || !value.is_ascii() {
                return Err(invalid(
                    field,
                    format!("{value:?} must be 1 to {max} ASCII characters"),
                ));
            }
        }
        if let Some(n) = e.max_claims_per_set {
            if !(1..=crate::x12::write837::MAX_CLAIMS_PER_SET).contains(&n) {
                return Err(invalid(
                    "envelope.max_claims_per_set",
                    format!("{n} is not within 1..=5000"),
                ));
            }
        }
        let rules = raw
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let at = format!("rules[{i}]");
                let pattern = r
                    .pattern
                    .as_deref()
                    .map(|p| Regex::new(&format!("^(?:{p})$")))
                    .transpose()
                    .map_err(|err| invalid(&at, format!("pattern: {err}")))?;
                if !r.required && r.allowed.is_none() && pattern.is_none() && r.max_length.is_none()
                {
                    return Err(invalid(
                        &at,
                        "says nothing: give required, allowed, pattern or max_length".into(),
                    ));
                }
                let path: Vec<String> = r.field.split('.').map(str::to_owned).collect();
                if !crate::model::is_claim_path(&path) {
                    return Err(invalid(
                        &at,
                        format!("field {:?} is not a field of the claim model", r.field),
                    ));
                }
                Ok(Rule {
                    field: r.field,
                    path,
                    required: r.required,
                    allowed: r.allowed,
                    pattern,
                    max_length: r.max_length,
                    kinds: r.kinds,
                    message: r.message,
                })
            })
            .collect::<Result<_, _>>()?;
        let code_sets = raw
            .code_sets
            .load(path.parent().unwrap_or(Path::new(".")))
            .map_err(|(field, e)| invalid(field, e.to_string()))?;
        Ok(Profile {
            name: raw.name,
            description: raw.description,
            envelope: Envelope {
                gs_sender: e.gs_sender.unwrap_or_else(|| e.sender_id.clone()),
                gs_receiver: e.gs_receiver.unwrap_or_else(|| e.receiver_id.clone()),
                sender_qualifier: e.sender_qualifier,
                sender_id: e.sender_id,
                receiver_qualifier: e.receiver_qualifier,
                receiver_id: e.receiver_id,
                usage: e.usage,
                ack_requested: e.ack_requested,
                delimiters,
                line_break: d.line_break,
                submitter: raw.submitter,
                receiver: raw.receiver,
            },
            max_claims_per_set: e.max_claims_per_set,
            rules,
            code_sets,
        })
    }

    /// Checks a claim against the companion-guide rules.
    pub fn check(&self, claim: &Claim) -> Vec<RuleBreach> {
        let mut breaches = Vec::new();
        let applicable = self
            .rules
            .iter()
            .filter(|r| r.kinds.as_ref().is_none_or(|k| k.contains(&claim.kind)));
        let mut json = None;
        for rule in applicable {
            let value = json.get_or_insert_with(|| serde_json::to_value(claim).unwrap_or_default());
            let mut found = Vec::new();
            collect(value, &rule.path, String::new(), &mut found);
            let say = |default: String| rule.message.clone().unwrap_or(default);
            if rule.required && found.iter().all(|(_, v)| v.is_none()) {
                breaches.push(RuleBreach {
                    field: rule.field.clone(),
                    message: say("is required by this partner".into()),
                });
                continue;
            }
            for (field, v) in found {
                let Some(v) = v else { continue };
                let problem = if rule.allowed.as_ref().is_some_and(|a| !a.contains(&v)) {
                    Some("is not one of the codes this partner accepts".to_owned())
                } else if rule.pattern.as_ref().is_some_and(|p| !p.is_match(&v)) {
                    Some("does not have the form this partner requires".to_owned())
                } else if rule.max_length.is_some_and(|m| v.chars().count() > m) {
                    Some(format!(
                        "is longer than the {} characters this partner accepts",
                        rule.max_length.unwrap_or_default()
                    ))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    breaches.push(RuleBreach {
                        field,
                        message: say(problem),
                    });
                }
            }
        }
        breaches
    }
}

/// Follows `path` through objects and into arrays, collecting every leaf as
/// text with its concrete path (`lines[1].procedure.code`). A missing leaf is
/// `None`.
fn collect(
    v: &serde_json::Value,
    path: &[String],
    at: String,
    out: &mut Vec<(String, Option<String>)>,
) {
    use serde_json::Value;
    match (v, path.split_first()) {
        (Value::Array(items), _) => {
            for (i, item) in items.iter().enumerate() {
                collect(item, path, format!("{at}[{}]", i + 1), out);
            }
        }
        (Value::Object(map), Some((key, rest))) => {
            let at = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            match map.get(key) {
                Some(child) => collect(child, rest, at, out),
                None => out.push((at, None)),
            }
        }
        (Value::Null, _) => out.push((at, None)),
        (Value::String(s), None) => out.push((at, Some(s.clone()))),
        (other, None) => out.push((at, Some(other.to_string()))),
        (_, Some(_)) => out.push((at, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_sandbox_profile_is_valid() {
        let p = Profile::sandbox().unwrap();
        assert_eq!(p.envelope.delimiters, Delimiters::STANDARD);
    }

    #[test]
    fn unknown_fields_and_bad_rules_are_refused_at_load() {
        let bad_field =
            SANDBOX.to_owned() + "\n[[rules]]\nfield = \"subscriber.shoe_size\"\nrequired = true\n";
        let err = Profile::parse(&bad_field, Path::new("p.toml")).unwrap_err();
        assert!(err.to_string().contains("shoe_size"), "{err}");
        let typo = SANDBOX.replace("[envelope]", "[envelope]\nsender_idd = \"X\"");
        let err = Profile::parse(&typo, Path::new("p.toml")).unwrap_err();
        assert!(err.to_string().contains("sender_idd"), "{err}");
        let clash = SANDBOX.replace("component = \":\"", "component = \"*\"");
        let err = Profile::parse(&clash, Path::new("p.toml")).unwrap_err();
        assert!(err.to_string().contains("delimiters"), "{err}");
    }
}
