//! Job files (`jobs_dir/*.toml`, one job each): what the daemon runs and
//! when. Read raw with serde (unknown fields refused), then validated: the
//! cron expression parses (with a seconds field) and has a next time in
//! the job's time zone, the time zone exists, the partner is configured,
//! names are unique.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Toml {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{}: {field}: {problem}", path.display())]
    Invalid {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
    #[error("no job named {0:?} in the jobs folder")]
    Unknown(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: String,
    kind: JobKind,
    /// Cron with seconds: `sec min hour day-of-month month day-of-week`
    /// (six fields: croner has no year field).
    schedule: String,
    #[serde(default = "utc")]
    timezone: String,
    partner: Option<String>,
    /// The input map for submit-claims (default: the partner's).
    map: Option<String>,
    /// Run once at start when a tick was missed while the daemon was down.
    #[serde(default)]
    catch_up: bool,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    SubmitClaims,
    CollectResponses,
    CheckDeadlines,
    Digest,
    /// Removes plain and sealed copies past their retention (`[archive]`).
    Purge,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::SubmitClaims => "submit-claims",
            JobKind::CollectResponses => "collect-responses",
            JobKind::CheckDeadlines => "check-deadlines",
            JobKind::Digest => "digest",
            JobKind::Purge => "purge",
        }
    }
}

/// Whether `schedule`, read in `timezone`, has a time strictly after `after`.
pub fn fires_after(schedule: &Cron, timezone: Tz, after: DateTime<Utc>) -> bool {
    schedule
        .find_next_occurrence(&after.with_timezone(&timezone), false)
        .is_ok()
}

/// A validated job.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub kind: JobKind,
    pub schedule: Cron,
    pub schedule_text: String,
    pub timezone: Tz,
    /// Required for submit and collect; check-deadlines without one checks every partner.
    pub partner: Option<String>,
    pub map: Option<String>,
    pub catch_up: bool,
    pub file: PathBuf,
}

impl Job {
    pub fn parse(text: &str, path: &Path, config: &Config) -> Result<Job, JobError> {
        let raw: RawJob = toml::from_str(text).map_err(|source| JobError::Toml {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |field, problem: String| JobError::Invalid {
            path: path.to_owned(),
            field,
            problem,
        };
        if raw.name.is_empty()
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "name",
                "use letters, digits, '-', '_' and '.' only".into(),
            ));
        }
        let schedule = Cron::new(&raw.schedule)
            .with_seconds_required()
            .parse()
            .map_err(|e| {
                invalid(
                    "schedule",
                    format!("{e} (cron with seconds: sec min hour day month weekday)"),
                )
            })?;
        let timezone: Tz = raw.timezone.parse().map_err(|_| {
            invalid(
                "timezone",
                format!("{:?} is not an IANA time zone", raw.timezone),
            )
        })?;
        // A schedule that parses may still never fire (30 February, 31
        // April): refused like one that does not parse, not found out by
        // a daemon whose job then never runs. Judged in the job's zone.
        if !fires_after(&schedule, timezone, Utc::now()) {
            return Err(invalid(
                "schedule",
                format!(
                    "{:?} never fires: no time in {} matches it (a day its month does not have?)",
                    raw.schedule,
                    timezone.name()
                ),
            ));
        }
        match (&raw.partner, raw.kind) {
            (Some(p), _) if config.partner(p).is_none() => {
                return Err(invalid(
                    "partner",
                    format!("{p:?} is not a partner in {}", config.origin.display()),
                ))
            }
            (None, JobKind::SubmitClaims | JobKind::CollectResponses) => {
                return Err(invalid(
                    "partner",
                    "this kind of job needs a partner".into(),
                ))
            }
            _ => {}
        }
        Ok(Job {
            name: raw.name,
            kind: raw.kind,
            schedule,
            schedule_text: raw.schedule,
            timezone,
            partner: raw.partner,
            map: raw.map,
            catch_up: raw.catch_up,
            file: path.to_owned(),
        })
    }

    /// Every `*.toml` in the config's jobs folder, sorted by file name. A
    /// missing folder holds no jobs.
    pub fn load_all(config: &Config) -> Result<Vec<Job>, JobError> {
        let dir = &config.paths.jobs_dir;
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(JobError::Io {
                    path: dir.clone(),
                    source,
                })
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        let mut jobs: Vec<Job> = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| JobError::Io {
                path: path.clone(),
                source,
            })?;
            let job = Job::parse(&text, &path, config)?;
            if let Some(other) = jobs.iter().find(|j| j.name == job.name) {
                return Err(JobError::Invalid {
                    path,
                    field: "name",
                    problem: format!(
                        "{:?} is also the name of {}",
                        job.name,
                        other.file.display()
                    ),
                });
            }
            jobs.push(job);
        }
        Ok(jobs)
    }

    /// The job called `name`.
    pub fn find(config: &Config, name: &str) -> Result<Job, JobError> {
        Job::load_all(config)?
            .into_iter()
            .find(|j| j.name == name)
            .ok_or_else(|| JobError::Unknown(name.to_owned()))
    }
}
