//! Code sets a deployment licenses or downloads — ICD-10-CM, HCPCS level II,
//! CPT — checked when a partner profile names them, so a well-shaped code
//! that does not exist is set aside here instead of rejected by the payer.
//!
//! A partner profile's `[code_sets]` table names the files (relative to the
//! profile's folder); each is read once, when the profile is loaded, and
//! shared by every claim of the run. A file holds one code per line; only
//! the first word of a line counts (so CMS's `icd10cm_codes_YYYY.txt`, a
//! code then its description, works as it is); blank lines and `#` lines
//! are skipped; dots are ignored and letters upper-cased.

use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum CodeSetError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: holds no code (one code per line expected)", path.display())]
    Empty { path: PathBuf },
}

/// `[code_sets]` as written in a profile: a file per code set, each optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCodeSets {
    pub icd10cm: Option<PathBuf>,
    pub hcpcs: Option<PathBuf>,
    pub cpt: Option<PathBuf>,
}

/// One loaded code set.
#[derive(Debug)]
pub struct CodeSet {
    /// The file's name, for messages (never a code: diagnoses are PHI).
    pub name: String,
    codes: HashSet<String>,
}

impl CodeSet {
    /// Reads a code-set file.
    pub fn load(path: &Path) -> Result<CodeSet, CodeSetError> {
        let text = std::fs::read_to_string(path).map_err(|source| CodeSetError::Io {
            path: path.to_owned(),
            source,
        })?;
        let codes: HashSet<String> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| !w.starts_with('#'))
            .map(normal)
            .collect();
        if codes.is_empty() {
            return Err(CodeSetError::Empty {
                path: path.to_owned(),
            });
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(CodeSet { name, codes })
    }

    /// Whether the set holds `code` (dots and case ignored).
    pub fn contains(&self, code: &str) -> bool {
        self.codes.contains(&normal(code))
    }
}

fn normal(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '.')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The code sets a profile checks against; none by default.
#[derive(Debug, Clone, Default)]
pub struct CodeSets {
    pub icd10cm: Option<Arc<CodeSet>>,
    pub hcpcs: Option<Arc<CodeSet>>,
    pub cpt: Option<Arc<CodeSet>>,
}

impl RawCodeSets {
    /// Loads every named file, relative paths from `base`; the error names
    /// the field (`code_sets.cpt`) and the file.
    pub fn load(&self, base: &Path) -> Result<CodeSets, (&'static str, CodeSetError)> {
        let one = |field: &'static str, path: &Option<PathBuf>| {
            path.as_ref()
                .map(|p| CodeSet::load(&base.join(p)).map(Arc::new))
                .transpose()
                .map_err(|e| (field, e))
        };
        Ok(CodeSets {
            icd10cm: one("code_sets.icd10cm", &self.icd10cm)?,
            hcpcs: one("code_sets.hcpcs", &self.hcpcs)?,
            cpt: one("code_sets.cpt", &self.cpt)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_lists_and_cms_code_files_alike() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("icd.txt");
        std::fs::write(
            &path,
            "# ICD-10-CM 2026\nA000    Cholera due to Vibrio cholerae\n\nu07.1\n",
        )
        .unwrap();
        let set = CodeSet::load(&path).unwrap();
        assert!(set.contains("A000") && set.contains("A00.0"));
        assert!(set.contains("U071") && set.contains("U07.1"));
        assert!(!set.contains("#") && !set.contains("CHOLERA") && !set.contains("A001"));
        assert_eq!(set.name, "icd.txt");

        std::fs::write(&path, "# nothing\n\n").unwrap();
        assert!(matches!(
            CodeSet::load(&path),
            Err(CodeSetError::Empty { .. })
        ));
    }
}
