//! `credentials.txt`: one `username password` pair per line.
//!
//! Permissioned systems keep their users in a plain text file next to the server. A line must hold
//! exactly two whitespace-separated fields; the originals crashed at start-up on anything else, so
//! here a bad line is skipped and reported by number (the caller prints the warning), and the
//! server still starts with every good line. Blank lines carry nothing and are skipped silently.
//! A username listed twice keeps its last password (as a Python dict built line by line would).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Usernames and their passwords.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    passwords: HashMap<String, String>,
}

/// The answer to "may this user log in with this password?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    UnknownUser,
    WrongPassword,
    Valid,
}

/// A line that did not hold exactly two fields (1-based line number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadLine(pub usize);

/// Why the credentials file could not be read at all.
#[derive(Debug)]
pub enum CredentialsError {
    Missing(PathBuf),
    Unreadable(PathBuf, io::Error),
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsError::Missing(p) => write!(f, "{} does not exist", p.display()),
            CredentialsError::Unreadable(p, e) => write!(f, "{} cannot be read: {e}", p.display()),
        }
    }
}

impl std::error::Error for CredentialsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CredentialsError::Unreadable(_, e) => Some(e),
            CredentialsError::Missing(_) => None,
        }
    }
}

impl Credentials {
    /// Parses the file's text; returns the good pairs and the lines that were skipped.
    pub fn parse(text: &str) -> (Credentials, Vec<BadLine>) {
        let mut passwords = HashMap::new();
        let mut bad = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [] => {}
                [user, password] => {
                    passwords.insert(user.to_string(), password.to_string());
                }
                _ => bad.push(BadLine(i + 1)),
            }
        }
        (Credentials { passwords }, bad)
    }

    /// Reads and parses the file at `path` (invalid UTF-8 is replaced, so it only spoils its line).
    pub fn load(path: &Path) -> Result<(Credentials, Vec<BadLine>), CredentialsError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Credentials::parse(&String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(CredentialsError::Missing(path.to_path_buf()))
            }
            Err(e) => Err(CredentialsError::Unreadable(path.to_path_buf(), e)),
        }
    }

    pub fn check(&self, user: &str, password: &str) -> Check {
        match self.passwords.get(user) {
            None => Check::UnknownUser,
            Some(p) if p != password => Check::WrongPassword,
            Some(_) => Check::Valid,
        }
    }

    pub fn len(&self) -> usize {
        self.passwords.len()
    }

    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty()
    }
}

impl FromIterator<(String, String)> for Credentials {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Credentials {
            passwords: pairs.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_and_bad_lines_are_reported_by_number() {
        let (c, bad) = Credentials::parse(
            "hans falcon*solo\n\nbroken\nyoda wise@!man extra\nleia  $blasterpistol$ \n",
        );
        assert_eq!(bad, vec![BadLine(3), BadLine(4)]);
        assert_eq!(c.len(), 2);
        assert_eq!(c.check("hans", "falcon*solo"), Check::Valid);
        assert_eq!(c.check("leia", "$blasterpistol$"), Check::Valid);
        assert_eq!(c.check("hans", "falcon"), Check::WrongPassword);
        assert_eq!(c.check("yoda", "wise@!man"), Check::UnknownUser);
    }

    #[test]
    fn a_repeated_user_keeps_the_last_password() {
        let (c, bad) = Credentials::parse("a one\r\na two\r\n");
        assert!(bad.is_empty());
        assert_eq!(c.check("a", "two"), Check::Valid);
    }

    #[test]
    fn a_missing_file_is_its_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Credentials::load(&dir.path().join("nope.txt")).unwrap_err();
        assert!(matches!(err, CredentialsError::Missing(_)));
        std::fs::write(dir.path().join("c.txt"), b"u p\n").unwrap();
        let (c, _) = Credentials::load(&dir.path().join("c.txt")).unwrap();
        assert_eq!(c.check("u", "p"), Check::Valid);
    }
}
