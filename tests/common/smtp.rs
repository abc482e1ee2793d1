//! A real SMTP server (aiosmtpd) on 127.0.0.1, started per test; each
//! message it takes lands as a file the test can read.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::root;

pub struct SmtpSink {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// Extra arguments: `--starttls CERT KEY`, `--login USER PASSWORD`.
    args: Vec<String>,
}

impl SmtpSink {
    /// Starts aiosmtpd on a free port (scripts/test installs it; a missing
    /// aiosmtpd fails the test).
    pub fn start() -> SmtpSink {
        let mut sink = SmtpSink {
            port: super::sshd::free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
            args: Vec::new(),
        };
        sink.up();
        sink
    }

    /// Starts aiosmtpd requiring STARTTLS (with this certificate and key)
    /// and, when given, a login.
    pub fn with_tls(
        cert: &std::path::Path,
        key: &std::path::Path,
        login: Option<(&str, &str)>,
    ) -> SmtpSink {
        let mut args = vec![
            "--starttls".to_owned(),
            cert.display().to_string(),
            key.display().to_string(),
        ];
        if let Some((user, password)) = login {
            args.extend(["--login".to_owned(), user.to_owned(), password.to_owned()]);
        }
        let mut sink = SmtpSink {
            port: super::sshd::free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
            args,
        };
        sink.up();
        sink
    }

    /// The logins the server accepted.
    pub fn logins(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("logins.txt"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A port with no server behind it yet: alerts must wait for [`up`](Self::up).
    pub fn down() -> SmtpSink {
        SmtpSink {
            port: super::sshd::free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
            args: Vec::new(),
        }
    }

    pub fn up(&mut self) {
        let mut child = Command::new("python3")
            .arg(root().join("tests/support/smtp_sink.py"))
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/test installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "aiosmtpd did not start (run scripts/test, which installs it)"
        );
        self.child = Some(child);
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned())
            .collect()
    }

    /// Every message received so far as a reader sees it (see [`readable`]).
    pub fn readable_messages(&self) -> Vec<String> {
        self.messages().iter().map(|m| readable(m)).collect()
    }

    /// Messages whose subject contains `text`.
    pub fn with_subject(&self, text: &str) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m.lines()
                    .any(|l| l.starts_with("Subject:") && l.contains(text))
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A message as its reader sees it: headers unfolded, a quoted-printable
/// body decoded (soft line breaks joined, `=XX` made bytes again), so a
/// check that some text is present — or absent — reads what the admin
/// reads. A body in another transfer encoding fails the test rather than
/// let a check for absent text pass unread.
pub fn readable(message: &str) -> String {
    let message = message.replace("\r\n", "\n");
    let (head, body) = message.split_once("\n\n").unwrap_or((&message, ""));
    let head = head.replace("\n ", " ").replace("\n\t", " ");
    let encoding = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Transfer-Encoding:"))
        .map(|e| e.trim().to_ascii_lowercase());
    let body = match encoding.as_deref() {
        None | Some("7bit" | "8bit") => body.to_owned(),
        Some("quoted-printable") => quoted_printable(body),
        Some(other) => panic!("a {other} body; decode it before reading:\n{message}"),
    };
    format!("{head}\n\n{body}")
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'=')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
