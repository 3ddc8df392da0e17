//! The password file as `tern passwd` edits it.
//!
//! Rules:
//! - Every line is read with the broker's own parser
//!   ([`tern_broker::auth::credentials::parse_line`]), so a file `tern passwd` accepts is one
//!   the broker accepts; a bad line is reported with its number and nothing is written.
//! - Lines other than the edited user's (other users, comments, blank lines, `\r\n` endings)
//!   are kept byte for byte and in order. An updated user keeps its place; a new user is
//!   added at the end.
//! - The file is replaced atomically: written to a temporary file beside it (mode 0600),
//!   flushed to disk, then renamed over it, so a reader (the broker starting) sees the old
//!   file or the new one, never a part. A symbolic link is followed, and the old file's owner
//!   and group are given to the new one when the system allows it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tern_broker::auth::credentials::{self, ScramCredentials, DUPLICATE_USER, MARKER};

/// The longest User Name and Password an MQTT CONNECT can carry (two-byte length prefix).
pub(crate) const MAX_FIELD: usize = 65535;

/// A password file in memory: its lines, each with its line ending.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PasswordFile {
    lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    /// The line as read, with its `\n` (the last line may have none).
    raw: String,
    /// The user it holds; `None` for a comment or a blank line.
    user: Option<String>,
}

/// A line the broker would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadLine {
    /// Line number, from 1.
    pub(crate) line: usize,
    /// What is wrong with it.
    pub(crate) reason: String,
}

/// What [`PasswordFile::set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The user was not in the file; its line was added at the end.
    Added,
    /// The user's line was replaced where it was.
    Updated,
}

impl PasswordFile {
    /// Reads the text of a password file; `Err` names the first line the broker would refuse.
    pub(crate) fn parse(bytes: &[u8]) -> Result<PasswordFile, BadLine> {
        let text = std::str::from_utf8(bytes).map_err(|e| BadLine {
            line: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            reason: "not UTF-8 text".to_owned(),
        })?;
        let mut file = PasswordFile::default();
        for (n, raw) in text.split_inclusive('\n').enumerate() {
            let content = raw.strip_suffix('\n').unwrap_or(raw);
            let bad = |reason: &str| BadLine {
                line: n + 1,
                reason: reason.to_owned(),
            };
            let user = match credentials::parse_line(content) {
                Ok(parsed) => parsed.map(|(user, _)| user.to_owned()),
                Err(_) if is_mosquitto_hash(content) => {
                    return Err(bad(
                        "a mosquitto_passwd hash, which cannot be turned into SCRAM-SHA-256 \
                         credentials without the password; delete the line and add the user \
                         again with tern passwd",
                    ))
                }
                Err(reason) => return Err(bad(reason)),
            };
            if user
                .as_ref()
                .is_some_and(|user| file.position(user).is_some())
            {
                return Err(bad(DUPLICATE_USER));
            }
            file.lines.push(Line {
                raw: raw.to_owned(),
                user,
            });
        }
        Ok(file)
    }

    /// The users, in file order.
    #[cfg(test)]
    pub(crate) fn users(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|line| line.user.as_deref())
    }

    fn position(&self, user: &str) -> Option<usize> {
        self.lines
            .iter()
            .position(|line| line.user.as_deref() == Some(user))
    }

    /// Gives `user` these credentials: its line replaced in place, or a new line at the end.
    pub(crate) fn set(&mut self, user: &str, credentials: &ScramCredentials) -> Change {
        let text = format!("{user}:{credentials}");
        match self.position(user) {
            Some(at) => {
                let line = &mut self.lines[at];
                let ending = &line.raw[line.raw.trim_end_matches(['\r', '\n']).len()..];
                line.raw = format!("{text}{ending}");
                Change::Updated
            }
            None => {
                if let Some(last) = self.lines.last_mut() {
                    if !last.raw.ends_with('\n') {
                        last.raw.push('\n');
                    }
                }
                self.lines.push(Line {
                    raw: format!("{text}\n"),
                    user: Some(user.to_owned()),
                });
                Change::Added
            }
        }
    }

    /// Removes `user`'s line; `false` if the file has none.
    pub(crate) fn delete(&mut self, user: &str) -> bool {
        match self.position(user) {
            Some(at) => {
                self.lines.remove(at);
                true
            }
            None => false,
        }
    }

    /// The file's text.
    pub(crate) fn text(&self) -> String {
        self.lines.iter().map(|line| line.raw.as_str()).collect()
    }
}

/// `user:$6$...` or `user:$7$...`: a line mosquitto_passwd wrote.
fn is_mosquitto_hash(line: &str) -> bool {
    line.contains(":$6$") || line.contains(":$7$")
}

/// Why `user` cannot be written to the file, if it cannot.
pub(crate) fn check_user(user: &str) -> Result<(), &'static str> {
    if user.is_empty() {
        return Err("the username is empty.");
    }
    if user.len() > MAX_FIELD {
        return Err("the username is longer than 65535 bytes, the most an MQTT CONNECT can carry.");
    }
    if user.chars().any(char::is_control) {
        return Err("the username must not contain control characters (such as line breaks).");
    }
    if user.starts_with('#') {
        return Err(
            "the username must not start with '#': the broker reads such lines as comments.",
        );
    }
    if user.contains(MARKER) {
        return Err(
            "the username must not contain \":SCRAM-SHA-256$\", which ends the username on a line.",
        );
    }
    Ok(())
}

/// Where the file is written: the target of a symbolic link, else `path` itself.
pub(crate) fn target(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
        }
        _ => path.to_owned(),
    }
}

/// Replaces the file at `path` with `text` atomically (see the module's rules). `Ok` may
/// carry a warning for the user.
pub(crate) fn save(path: &Path, text: &str) -> std::io::Result<Option<String>> {
    let path = target(path);
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map_or_else(
        || "passwd".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let temp = dir.join(format!(".{name}.tern-passwd-{}", std::process::id()));
    let mut file = match create_private(&temp) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Left by an earlier run that had the same process id and was killed.
            fs::remove_file(&temp)?;
            create_private(&temp)?
        }
        other => other?,
    };
    let written = write_and_rename(&mut file, &temp, &path, text);
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    let warning = written?;
    // The rename is durable once the directory is.
    if let Ok(dir) = File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(warning)
}

/// A new file readable and writable by its owner only.
fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn write_and_rename(
    file: &mut File,
    temp: &Path,
    path: &Path,
    text: &str,
) -> std::io::Result<Option<String>> {
    file.write_all(text.as_bytes())?;
    let mut warning = None;
    if let Ok(old) = fs::metadata(path) {
        let new = file.metadata()?;
        if (old.uid(), old.gid()) != (new.uid(), new.gid()) {
            if let Err(e) = std::os::unix::fs::fchown(&*file, Some(old.uid()), Some(old.gid())) {
                warning = Some(format!(
                    "{} was owned by uid {} gid {} and now belongs to uid {} gid {} ({e}); make sure the broker can still read it.",
                    path.display(),
                    old.uid(),
                    old.gid(),
                    new.uid(),
                    new.gid()
                ));
            }
        }
    }
    file.sync_all()?;
    fs::rename(temp, path)?;
    Ok(warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(password: &str) -> ScramCredentials {
        ScramCredentials::derive(password, b"0123456789abcdef", 4096)
    }

    fn line(user: &str, password: &str) -> String {
        format!("{user}:{}", credentials(password))
    }

    #[test]
    fn create_then_add() {
        let mut file = PasswordFile::default();
        assert_eq!(file.set("alice", &credentials("a")), Change::Added);
        assert_eq!(file.text(), format!("{}\n", line("alice", "a")));
        assert_eq!(file.set("bob", &credentials("b")), Change::Added);
        let text = file.text();
        assert_eq!(
            text,
            format!("{}\n{}\n", line("alice", "a"), line("bob", "b"))
        );
        // What is written is what the broker reads.
        let users = credentials::parse_file(&text).unwrap();
        assert_eq!(users["bob"], credentials("b"));
        assert_eq!(PasswordFile::parse(text.as_bytes()).unwrap(), file);
    }

    #[test]
    fn update_keeps_everything_else_byte_for_byte() {
        let text = format!(
            "# users of the plant\r\n{}\r\n\n  \n{}\n# end",
            line("alice", "a"),
            line("bob", "b")
        );
        let mut file = PasswordFile::parse(text.as_bytes()).unwrap();
        assert_eq!(file.set("alice", &credentials("new")), Change::Updated);
        let expected = text.replace(&line("alice", "a"), &line("alice", "new"));
        assert_eq!(
            file.text(),
            expected,
            "only alice's line changed, \\r\\n kept"
        );
        assert_eq!(file.users().collect::<Vec<_>>(), ["alice", "bob"]);
        // A new user after a last line without a newline: that line gets one.
        file.set("carol", &credentials("c"));
        assert_eq!(file.text(), format!("{expected}\n{}\n", line("carol", "c")));
    }

    #[test]
    fn delete_removes_one_line() {
        let text = format!(
            "# c\n{}\n{}\n{}\n",
            line("a", "1"),
            line("b", "2"),
            line("c", "3")
        );
        let mut file = PasswordFile::parse(text.as_bytes()).unwrap();
        assert!(file.delete("b"));
        assert!(!file.delete("b"), "already gone");
        assert!(!file.delete("nobody"));
        assert_eq!(
            file.text(),
            format!("# c\n{}\n{}\n", line("a", "1"), line("c", "3"))
        );
        assert!(file.delete("a") && file.delete("c"));
        assert_eq!(file.text(), "# c\n");
    }

    #[test]
    fn user_names_may_hold_colons_but_not_the_marker() {
        let mut file = PasswordFile::default();
        file.set("plant:7", &credentials("x"));
        let users = credentials::parse_file(&file.text()).unwrap();
        assert!(users.contains_key("plant:7"));
        assert!(check_user("plant:7").is_ok());
        assert!(check_user("a:SCRAM-SHA-256$b").is_err());
        assert!(check_user("#admin").is_err());
        assert!(check_user("two\nlines").is_err());
        assert!(check_user("").is_err());
        assert!(check_user(&"u".repeat(MAX_FIELD + 1)).is_err());
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let good = line("alice", "a");
        let cases = [
            (format!("{good}\nbob:plain\n"), 2, "no :SCRAM-SHA-256$"),
            (format!("# x\n\n{good}\n{good}\n"), 4, "listed twice"),
            (
                format!("{good}\n{}\n", good.replace("$4096:", "$100:")),
                2,
                "at least 4096",
            ),
            (
                "bob:$7$101$L/FMdmy9W7XXyt04$IXrAalejWDeEJxoyWcJJxS==\n".to_owned(),
                1,
                "mosquitto_passwd hash",
            ),
            (":SCRAM-SHA-256$x\n".to_owned(), 1, "user name is empty"),
        ];
        for (text, number, reason) in cases {
            let bad = PasswordFile::parse(text.as_bytes()).unwrap_err();
            assert_eq!(bad.line, number, "{text:?}: {bad:?}");
            assert!(bad.reason.contains(reason), "{text:?}: {bad:?}");
        }
        let mut bytes = format!("{good}\n# caf").into_bytes();
        bytes.push(0xe9);
        let bad = PasswordFile::parse(&bytes).unwrap_err();
        assert_eq!((bad.line, bad.reason.as_str()), (2, "not UTF-8 text"));
    }

    #[test]
    fn save_replaces_atomically_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tern-passwd-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("passwd");
        fs::write(&path, "old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(save(&link, "new\n").unwrap(), None);
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
