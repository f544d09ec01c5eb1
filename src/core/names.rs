//! The only place a name from the network (or a user) becomes a path.
//!
//! Every file peershare opens on behalf of a peer goes through [`resolve`]: a name is a single
//! path component, so `../x`, `/etc/passwd`, `a/b`, `a\b`, NUL bytes and empty names are refused
//! before any file system call sees them.

use std::fmt;
use std::path::{Path, PathBuf};

/// Longest file name we accept (the common file system limit).
pub const MAX_NAME_BYTES: usize = 255;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    Separator,
    Dots,
    Nul,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "the file name is empty"),
            NameError::TooLong => write!(f, "the file name is longer than {MAX_NAME_BYTES} bytes"),
            NameError::Separator => write!(f, "the file name contains a path separator"),
            NameError::Dots => write!(f, "the file name is '.' or '..'"),
            NameError::Nul => write!(f, "the file name contains a NUL byte"),
        }
    }
}

impl std::error::Error for NameError {}

/// Checks that `name` is one plain path component.
pub fn check(name: &str) -> Result<&str, NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.len() > MAX_NAME_BYTES {
        Err(NameError::TooLong)
    } else if name.contains('\0') {
        Err(NameError::Nul)
    } else if name.contains('/') || name.contains('\\') {
        Err(NameError::Separator)
    } else if name == "." || name == ".." {
        Err(NameError::Dots)
    } else {
        Ok(name)
    }
}

/// The path of `name` inside `dir`, after [`check`].
pub fn resolve(dir: &Path, name: &str) -> Result<PathBuf, NameError> {
    check(name).map(|n| dir.join(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_resolve_inside_the_directory() {
        assert_eq!(
            resolve(Path::new("d"), "a.txt").unwrap(),
            Path::new("d/a.txt")
        );
        assert_eq!(check("..a").unwrap(), "..a");
        assert_eq!(check("chunk_1").unwrap(), "chunk_1");
    }

    #[test]
    fn traversal_and_odd_names_are_refused() {
        for (bad, why) in [
            ("", NameError::Empty),
            ("..", NameError::Dots),
            (".", NameError::Dots),
            ("../../etc/passwd", NameError::Separator),
            ("/etc/passwd", NameError::Separator),
            ("a/b", NameError::Separator),
            ("a\\b", NameError::Separator),
            ("a\0b", NameError::Nul),
        ] {
            assert_eq!(check(bad), Err(why), "{bad:?}");
        }
        assert_eq!(check(&"x".repeat(256)), Err(NameError::TooLong));
    }
}
